"""The page chain: the page runner and its time slices, the scan lifecycle (start, pause,
resume, cancel), and recovery of orphaned scans. No Celery and no SQL here."""
