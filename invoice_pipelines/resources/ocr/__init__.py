"""The OCR edge in plain Python: local RapidOCR (`rapid`, the default) or Tesseract, or Google
Cloud Vision (`readers`), and the `ocr_engine` resource that hands a run the reader (`engines`)."""
