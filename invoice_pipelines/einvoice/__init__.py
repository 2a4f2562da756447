"""EN 16931 e-invoices written by us: CII (Factur-X/ZUGFeRD, XRechnung) and UBL XML from the
normalized invoice model, and the human-readable layout of an invoice (de/en). Used by the sales
invoice documents and by the demo's supplier documents."""
