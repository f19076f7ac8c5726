"""The embedded store: stdlib sqlite3 on one dedicated thread."""
