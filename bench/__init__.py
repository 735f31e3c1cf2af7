"""Benchmarks of marketscan: each figure is a ratio to a floor measured in the same run.

`python -m bench` (or `make bench`) starts embedded PostgreSQL and Redis in a temporary
directory, runs every figure against real Celery worker subprocesses, prints the table and
rewrites BENCHMARKS.md. See bench/__main__.py for the options. Each figure is a module here
(with its notes beside it, where it has any); what the figures share is bench/kit/.
"""
