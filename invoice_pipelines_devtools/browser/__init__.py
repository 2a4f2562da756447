"""A local Dagster UI in a headless browser, for the browser tests and the UI measurements."""
