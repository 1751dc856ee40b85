"""Planning and running batches."""
