"""Markets a scan can walk, by name."""
