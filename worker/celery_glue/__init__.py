"""The Celery-facing room, the only one that imports celery: signal handlers, the drain
flag, the publisher of page messages and beat's clocks (recovery, watches, alerts)."""
