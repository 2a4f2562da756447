"""Writers of the demo's supplier documents that production does not need: text PDFs (the
XML writers are in `invoice_pipelines.einvoice`)."""
