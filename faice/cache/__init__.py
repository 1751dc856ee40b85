"""Results of earlier batches, reused when nothing that decides a batch's result has changed (issue 11)."""
