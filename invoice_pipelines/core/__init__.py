"""The invoice domain in plain Python: no Dagster, no SQL, no network."""
