"""Thin Celery tasks: decode arguments, open a session, call the runtime, commit."""
