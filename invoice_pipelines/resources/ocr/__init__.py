"""The OCR edge: local Tesseract or Google Cloud Vision in plain Python (`readers`), and the
`ocr_engine` resource that hands a run the reader (`engines`)."""
