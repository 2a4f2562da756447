"""invoice_pipelines: Dagster pipelines for the invoice work of many organizations."""

__version__ = "0.1.0"
