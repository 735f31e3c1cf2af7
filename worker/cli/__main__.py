"""`python -m worker.cli`."""

from worker.cli.main import run

run()
