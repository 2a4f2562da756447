"""Documents we write: CII and UBL e-invoices, text PDFs, and demo/benchmark supplier invoices."""
