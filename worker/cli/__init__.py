"""The `marketscan` command line (`worker.cli:run`, `python -m worker.cli`)."""

from worker.cli.main import main, run

__all__ = ["main", "run"]
