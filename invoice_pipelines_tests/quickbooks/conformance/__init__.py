"""Conformance suite: the same QBO scenarios through node-quickbooks (npm), python-quickbooks (PyPI)
and our own client, against the simulator."""
