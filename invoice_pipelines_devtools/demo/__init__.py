"""Demo data for `make run` and the benchmarks: organizations, customers, orders and supplier
invoices (`seed.py`, `invoices.py`, the text-PDF writer in `writers/`), and the demo's QuickBooks
Online (`quickbooks.py`: the demo organizations connected to the local QBO simulator)."""
