"""Writers of the demo's supplier documents: CII and UBL e-invoices, text PDFs (not production documents)."""
