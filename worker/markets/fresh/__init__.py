"""Fresh watches' market side: one walk of the newest listings, shared, judged by watermark."""
