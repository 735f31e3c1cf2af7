"""What `marketscan dev` and `marketscan demo` run, and the tests and the bench with them:
embedded PostgreSQL and Redis (and a Sentinel group), the dev stack, Celery processes, the
demo and the uninterrupted walk it judges a scan against; and `make lint`'s import-cycle
check (import_cycles). Fakes of the outside world live in worker.testing."""
