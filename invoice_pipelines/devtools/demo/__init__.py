"""The demo's QuickBooks Online (`quickbooks.py`): the demo organizations connected to the local
QBO simulator that `make run` starts."""
