"""The application database's edge: the `database` and `system_database` resources (`engines`),
over the engines of db/engine.py."""
