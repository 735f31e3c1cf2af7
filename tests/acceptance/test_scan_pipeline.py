"""A real worker runs whole scans started from the real CLI."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_status,
)
from worker.domain.scan_params import ScanParams


def test_cli_scan_of_5000_items_completes_with_exactly_the_expected_opportunities(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a running worker
    start_worker()
    # When a 5,000-item simulated scan is started from the CLI
    scan_id = start_scan_cli(celery_env, "--market-opt", "items=5000", "--market-opt", "seed=7")
    # Then it completes with every item processed once, in 50 pages
    done = wait_for_status(database_url, scan_id)
    assert (done.processed_items, done.total_items, done.page_seq) == (5000, 5000, 50)
    assert done.cursor is None and done.error_message is None
    # And its opportunities are exactly those a direct computation finds
    params = ScanParams.from_json(row(database_url, scan_id).params)
    expected = expected_opportunities(params)
    assert expected, "the catalog must hold some opportunities for this test to mean anything"
    assert stored_opportunities(database_url, scan_id) == expected


def test_scan_watch_follows_a_running_scan_to_its_end(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    from tests.support.scans import cli

    start_worker()
    scan_id = start_scan_cli(celery_env, "--market-opt", "items=800", "--market-opt",
                             "item_latency_ms=2")  # fmt: skip
    watched = cli(["scan", "watch", str(scan_id)], celery_env, timeout=120)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.strip().endswith(f"scan {scan_id} completed: 800 items of 800")
    assert row(database_url, scan_id).status == "completed"


def test_the_start_task_stores_and_runs_a_scan_and_refuses_bad_params(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    import uuid

    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from models import ScanCheckpoint
    from worker.app import app
    from worker.db import driver_url

    worker = start_worker()
    good = app.send_task(
        "marketscan.scan.start",
        args=[{"game": "csgo", "market_options": {"items": 250}, "user_id": 5}],
    )
    bad = app.send_task("marketscan.scan.start", args=[{"game": "csgo", "page_size": 0}])
    worker.wait_for_log(f"Task marketscan.scan.start[{bad.id}] raised unexpected: InvalidInput")
    worker.wait_for_log(f"Task marketscan.scan.start[{good.id}] succeeded")
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ScanCheckpoint)) == 1
        scan_id = session.scalars(select(ScanCheckpoint.scan_id)).one()
    engine.dispose()
    done = wait_for_status(database_url, uuid.UUID(str(scan_id)))
    assert (done.processed_items, done.user_id) == (250, 5)


def test_the_cleanup_task_deletes_old_terminal_scans_on_a_worker(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    import uuid

    from sqlalchemy import create_engine, func, select, update
    from sqlalchemy.orm import Session

    from models import ScanCheckpoint
    from worker.app import app
    from worker.db import checkpoints as store
    from worker.db import driver_url

    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        old, live = uuid.uuid4(), uuid.uuid4()
        store.create_checkpoint(session, old, 1, "market_scan")
        store.mark_checkpoint_completed(session, old)
        store.create_checkpoint(session, live, 1, "market_scan")
        session.execute(
            update(ScanCheckpoint).values(updated_at=func.now() - func.make_interval(0, 0, 0, 30))
        )
        session.commit()
    worker = start_worker()
    result = app.send_task("marketscan.maintenance.cleanup")
    worker.wait_for_log(f"Task marketscan.maintenance.cleanup[{result.id}] succeeded")
    with Session(engine) as session:
        assert list(session.scalars(select(ScanCheckpoint.scan_id))) == [live]
    engine.dispose()
