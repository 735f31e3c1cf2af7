"""Tools for development, the demo, tests and the bench: embedded PostgreSQL and Redis,
the dev stack, the demo, the reference walk of a catalog."""
