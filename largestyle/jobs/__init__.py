"""Job directories on disk: layout, lock, record, status, events, checkpoints in files, batches and the HTML report."""
