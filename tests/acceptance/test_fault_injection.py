"""A production worker (MARKETSCAN_DEV_MODE off) refuses a start message, as a bot or Flower
sends one, that would inject faults: nothing is stored, no page runs, the worker lives."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from celery import Celery
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.support.processes import CeleryProcess
from worker.db import driver_url

START_TASK = "marketscan.scan.start"


@pytest.fixture
def sender(redis_url: str) -> Iterator[Celery]:
    """A bare Celery app, as a bot or a web backend builds one: broker, queue, JSON."""
    app = Celery("sender", broker=redis_url, set_as_current=False)
    app.conf.update(task_default_queue="marketscan", task_serializer="json")
    yield app
    app.close()


def _stored(database_url: str) -> int:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(ScanCheckpoint)) or 0
    engine.dispose()
    return count


def test_a_production_worker_refuses_a_start_that_would_crash_it_and_stores_nothing(
    celery_env: dict[str, str],
    database_url: str,
    sender: Celery,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a worker of a production fleet: development off
    celery_env["MARKETSCAN_DEV_MODE"] = "0"
    worker = start_worker()
    # When a start message asks for a scan whose fifth item kills the process inspecting it
    scan_id = uuid.uuid4()
    params = {"game": "csgo", "market_options": {"items": 200, "crash_item": 5}}
    sender.send_task(START_TASK, args=[params], task_id=str(scan_id))
    # Then the start is refused, naming the option and the variable, and nothing is stored
    worker.wait_for_log(f"Task {START_TASK}[{scan_id}] raised unexpected: InvalidInput")
    assert "option crash_item injects faults" in worker.log()
    assert "MARKETSCAN_DEV_MODE=1" in worker.log()
    assert _stored(database_url) == 0
    # And the worker is alive and takes the next start
    plain_id = uuid.uuid4()
    sender.send_task(
        START_TASK, args=[{"game": "csgo", "market_options": {"items": 50}}], task_id=str(plain_id)
    )
    worker.wait_for_log(f"Task {START_TASK}[{plain_id}] succeeded")
    assert worker.process is not None and worker.process.poll() is None
