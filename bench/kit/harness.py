"""The bench's surroundings: embedded servers, a fresh database per figure, worker processes.

Workers and beat are real `celery` subprocesses (worker.devtools.processes), each in its own
process group, stopped or SIGKILLed by pid; never by name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2  # type: ignore[import-untyped]  # no stubs installed
from sqlalchemy.engine import make_url

from bench.kit.database import POLL_SECONDS, plain_url
from worker import broker_redis
from worker.db.migrate import upgrade
from worker.devtools.embedded import EmbeddedServices
from worker.devtools.processes import CeleryProcess, beat, worker
from worker.settings import DEFAULT_SENTINEL_MASTER

if TYPE_CHECKING:
    from bench.kit.breakdown import PageBreakdown
    from bench.kit.report import Table

TEMPLATE_DATABASE = "bench_template"
READY_LINE = " ready."


def say(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """One run of the bench: its servers, its size, and what figure 1 measured for the others."""

    services: EmbeddedServices
    root: Path
    quick: bool
    chain_s_per_page: float | None = None
    update_commit_s: float | None = None
    page_breakdown: PageBreakdown | None = None
    # Tables a figure adds beside the main one (title, then rows), e.g. the hop's settings.
    tables: list[Table] = field(default_factory=list)
    _started: list[CeleryProcess] = field(default_factory=list)
    _processes_started: int = 0

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def broker_url(self) -> str:
        return self.services.broker_url

    def prepare(self) -> None:
        """Create and migrate the template every figure's database is cloned from."""
        self._admin(f'DROP DATABASE IF EXISTS "{TEMPLATE_DATABASE}"')
        self._admin(f'CREATE DATABASE "{TEMPLATE_DATABASE}"')
        upgrade(self.url_of(TEMPLATE_DATABASE))

    def url_of(self, database: str) -> str:
        url = make_url(self.services.database_url).set(database=database)
        return url.render_as_string(hide_password=False)

    @contextlib.contextmanager
    def database(self, figure: str) -> Iterator[str]:
        """A fresh migrated database for one figure, and an empty Redis; dropped after."""
        name = f"bench_{figure.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
        self.flush_redis()
        try:
            yield self.url_of(name)
        finally:
            self.stop_all()
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def flush_redis(self) -> None:
        client = broker_redis.new_client(self.broker_url, DEFAULT_SENTINEL_MASTER)
        try:
            client.flushall()
        finally:
            client.close()

    def worker_env(self, database_url: str, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }

    def start_worker(
        self,
        env: dict[str, str],
        hostname: str,
        *,
        concurrency: int = 1,
        pool: str = "prefork",
        wait: bool = True,
        app: str = "worker",
    ) -> CeleryProcess:
        """A worker of `app`, stopped when its figure's database goes; the project's worker
        (the default app) also runs bench.kit.tasks."""
        log_path = self._log_path(hostname)
        process = worker(
            env,
            log_path,
            hostname=hostname,
            pool=pool,
            concurrency=concurrency,
            extra=("--include", "bench.kit.tasks") if app == "worker" else (),
            app=app,
        )
        self._started.append(process.start())
        if wait:
            wait_ready(process)
        return process

    def start_beat(self, env: dict[str, str]) -> CeleryProcess:
        log_path = self._log_path("beat")
        schedule_dir = log_path.with_suffix("")
        schedule_dir.mkdir(parents=True, exist_ok=True)
        process = beat(env, log_path, schedule_dir)
        self._started.append(process.start())
        process.wait_for_log("beat started")
        return process

    def _log_path(self, name: str) -> Path:
        # Never reused: a log that already says "ready." would fool wait_ready.
        self._processes_started += 1
        return self.root / "logs" / f"{self._processes_started:03d}-{name.replace('@', '_')}.log"

    def stop(self, process: CeleryProcess) -> None:
        """Stop one worker before its figure ends (warm, then by force)."""
        process.stop()
        self._started.remove(process)

    def stop_all(self) -> None:
        # All warm shutdowns at once: each is about 2 s of Celery's own teardown.
        for process in self._started:
            process.terminate()
        while self._started:
            self._started.pop().stop()

    def _admin(self, statement: str) -> None:
        connection = psycopg2.connect(plain_url(self.services.database_url))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()


def wait_ready(process: CeleryProcess, timeout_s: float = 90.0, after: int = 0) -> float:
    """Block until the worker logs `<hostname> ready.`; the monotonic time it was seen.

    Celery logs that line right after the `worker_ready` handlers (restart recovery) ran.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if READY_LINE in process.log()[after:]:
            return time.monotonic()
        if process.process is not None and process.process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.process.returncode}:\n{process.log()}")
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"worker not ready after {timeout_s}s:\n{process.log()[-4000:]}")
