"""What a StarPunk schema is: the names in a SQLite schema, its triggers, views and virtual
tables, and what the releases were called. Knows nothing of revisions."""
