"""QuickBooks Online: the production client (client.py), tokens, rate limits, the sync of customers,
items, invoices and payments (sync/) and their Dagster objects (defs.py). The local stand-in of
the QBO API for tests, benchmarks and the demo is development tooling: devtools/qbo_simulator/."""
