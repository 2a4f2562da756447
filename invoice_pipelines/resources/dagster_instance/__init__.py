"""The Dagster instance as an edge: its storage on PostgreSQL with one kept connection
(`instance_storage`, named in deploy/dagster.yaml), what a command tells the UI it changed
(`dagster_ui`), and where the Dagster of `make run` is (`local_dagster`)."""
