"""The examples in examples/ run as written against a real worker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.support.processes import CeleryProcess
from tests.support.scans import expected_opportunities, wait_for_status
from worker.db import driver_url
from worker.db.scan_queries import top_opportunities
from worker.domain.scan_params import ScanParams

ROOT = Path(__file__).resolve().parents[2]


def test_the_scan_bot_example_starts_follows_and_prints_the_top_opportunities(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a worker, and the example's environment pointing where the worker's does
    start_worker()
    scan_id = uuid.uuid4()
    # When the example bot runs a 700-item scan to its end
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "scan_bot.py"), "--items", "700",
         "--seed", "8", "--top", "3", "--scan-id", str(scan_id)],
        env=celery_env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    # Then it exits 0 having followed the scan to completion
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"started scan {scan_id}"
    assert lines.index("completed: 700/700 items") == lines.index("top 3 opportunities:") - 1
    # And the scan it followed found exactly the reference walk's opportunities
    row = wait_for_status(database_url, scan_id)
    params = ScanParams.from_json(row.params)
    assert len(expected_opportunities(params)) >= 3
    # And it printed the scan's three best, best first
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        best = top_opportunities(session, scan_id, 3)
    engine.dispose()
    printed = lines[lines.index("top 3 opportunities:") + 1 :]
    assert [line.split()[4] for line in printed] == [hit["item_id"] for hit in best]
