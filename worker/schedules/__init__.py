"""Watches: recurring scans fired by beat's clock, and the alerts of their finds."""
