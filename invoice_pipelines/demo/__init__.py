"""Demo data for `make run` and the benchmarks: organizations, customers, orders and supplier invoices."""
