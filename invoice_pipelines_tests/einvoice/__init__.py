"""Tests of the e-invoice library (invoice_pipelines/einvoice/)."""
