"""Overdue invoices and dunning notices (issue 12)."""
