"""Fixtures that run real Celery processes against the test's database and Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import CeleryProcess, beat, worker


@pytest.fixture
def celery_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of worker subprocesses: short leases so recovery is quick."""
    return {
        **env,
        "MARKETSCAN_LEASE_SECONDS": "4",
        "MARKETSCAN_RECOVERY_INTERVAL_SECONDS": "1",
        "MARKETSCAN_RETRY_BACKOFF_SECONDS": "0.05",
        "MARKETSCAN_RETRY_BACKOFF_MAX_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_worker(
    celery_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., CeleryProcess]]:
    """Start workers that are always stopped at teardown, whatever the test did to them."""
    started: list[CeleryProcess] = []

    def start(hostname: str = "w1@test", **kwargs: object) -> CeleryProcess:
        log_path = tmp_path / f"{hostname}-{len(started)}.log"
        process = worker(celery_env, log_path, hostname=hostname, **kwargs)  # type: ignore[arg-type]
        started.append(process.start())
        process.wait_for_log("ready.")
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_beat(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], CeleryProcess]]:
    """Start a beat (recovery every second) that is stopped at teardown."""
    started: list[CeleryProcess] = []

    def start() -> CeleryProcess:
        process = beat(celery_env, tmp_path / f"beat-{len(started)}.log", tmp_path)
        started.append(process.start())
        process.wait_for_log("beat started")
        return process

    yield start
    for process in started:
        process.stop()
