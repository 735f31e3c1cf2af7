"""PostgreSQL goes away mid-scan and comes back: the scan finishes, nothing lost or doubled."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import commit_log
from tests.support.processes import worker
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_progress,
)
from worker.db.migrate import upgrade
from worker.devtools.embedded import EmbeddedPostgres
from worker.domain.scan_params import ScanParams


def test_a_postgres_outage_mid_scan_is_waited_out(
    celery_env: dict[str, str], tmp_path: Path
) -> None:
    # Given a scan running on a PostgreSQL of its own
    postgres = EmbeddedPostgres(tmp_path / "own-postgres")
    postgres.start()
    running = None
    try:
        database_url = postgres.url
        upgrade(database_url)
        commit_log.install(database_url)
        env = {**celery_env, "DATABASE_URL": database_url}
        running = worker(env, tmp_path / "worker.log", concurrency=1).start()
        running.wait_for_log("ready.")
        scan_id = start_scan_cli(env, "--market-opt", "items=2000", "--market-opt",
                                 "item_latency_ms=2")  # fmt: skip
        wait_for_progress(database_url, scan_id, 300)
        # When the database stops for a few seconds
        postgres.stop()
        time.sleep(4)
        postgres.start()
        back = time.monotonic()
        stopped_at = row(database_url, scan_id).processed_items
        # Then the scan goes on (the page task retries with backoff) and completes exactly
        deadline = time.monotonic() + 180
        while (current := row(database_url, scan_id)).status != "completed":
            assert time.monotonic() < deadline, f"{current.status} at {current.processed_items}"
            time.sleep(0.2)
            if current.processed_items > stopped_at and back:
                print(f"\nfirst commit {time.monotonic() - back:.2f}s after PostgreSQL was back")
                back = 0.0
        assert current.processed_items == 2000

        params = ScanParams.from_json(current.params)
        assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
        commit_log.assert_each_position_committed_once(database_url, scan_id, 2000)
        assert "OperationalError" in running.log() or "retry" in running.log().lower()
    finally:
        if running is not None:
            running.stop()
        postgres.stop()
