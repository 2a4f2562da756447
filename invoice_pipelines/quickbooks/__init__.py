"""QuickBooks Online: the production client (client.py), tokens, rate limits, the sync of customers,
items, invoices and payments (sync/), their Dagster objects (defs.py) and, in simulator/, a local
stand-in of the QBO API for tests, benchmarks and the demo."""
