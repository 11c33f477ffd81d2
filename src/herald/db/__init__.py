"""Database plumbing: metadata, engine, sessions, migrations."""
