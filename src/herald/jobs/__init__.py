"""A durable job queue in the database: work queued in the caller's transaction, run by the worker."""
