"""A whole marketscan on one machine: embedded PostgreSQL and Redis, worker, beat, Flower,
and the Telegram bot when a bot token is set.

Children are worker.devtools.processes' Celery processes, in their own process groups, so
Ctrl-C reaches only this process, which then stops them in order (warm first, then by
force) and stops the servers last.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from worker.db.migrate import upgrade
from worker.devtools import processes
from worker.devtools.embedded import EmbeddedServices, embedded_services, free_port
from worker.devtools.processes import CeleryProcess, metrics_exporter
from worker.settings import DEV_MODE_VARIABLE


@dataclass
class DevStack:
    """Embedded services plus the Celery processes that run against them."""

    services: EmbeddedServices
    directory: Path
    children: list[CeleryProcess] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.services.database_url,
            "CELERY_BROKER_URL": self.services.broker_url,
            # A development fleet: scans may inject faults (the demo's latencies, a crash).
            DEV_MODE_VARIABLE: "1",
            "PYTHONUNBUFFERED": "1",
        }

    def celery(
        self, name: str, args: Sequence[str], echo: bool = True, env: dict[str, str] | None = None
    ) -> CeleryProcess:
        """A Celery process of this stack; its output in `<directory>/logs/<name>.log`, and
        on our stdout too with `echo`."""
        child = CeleryProcess(
            list(args),
            {**self.env, **(env or {})},
            self.directory / "logs" / f"{name}.log",
            echo_as=name if echo else None,
        )
        self.children.append(child.start())
        return child

    def worker(self, hostname: str = "dev-worker@marketscan", echo: bool = True) -> CeleryProcess:
        return self.celery(
            "worker",
            ["worker", "--loglevel=INFO", f"--hostname={hostname}", "--concurrency=2"],
            echo,
        )

    def beat(self, echo: bool = True) -> CeleryProcess:
        schedule = self.directory / "celerybeat-schedule"
        return self.celery("beat", ["beat", "--loglevel=INFO", f"--schedule={schedule}"], echo)

    def flower(self, port: int, basic_auth: str, echo: bool = True) -> CeleryProcess:
        return self.celery(
            "flower",
            [
                "flower",
                f"--port={port}",
                "--address=127.0.0.1",
                f"--db={self.directory / 'flower.db'}",
                "--persistent=True",
            ],
            echo,
            # From the environment, so the password does not show in `ps`.
            env={"FLOWER_BASIC_AUTH": basic_auth},
        )

    def metrics(self, port: int) -> CeleryProcess:
        """The metrics exporter; its log in `<directory>/logs/metrics.log`."""
        child = metrics_exporter(self.env, self.directory / "logs" / "metrics.log", port)
        self.children.append(child.start())
        return child

    def bot(self, echo: bool = True) -> CeleryProcess:
        """`marketscan bot`, for a stack whose environment carries a Telegram bot token."""
        child = processes.bot(
            self.env, self.directory / "logs" / "bot.log", echo_as="bot" if echo else None
        )
        self.children.append(child.start())
        return child

    def stop_children(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


@contextlib.contextmanager
def dev_stack(directory: Path) -> Iterator[DevStack]:
    """Start the servers under `directory`, migrate, and stop everything on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    with embedded_services(directory) as services:
        upgrade(services.database_url)
        stack = DevStack(services, directory)
        try:
            yield stack
        finally:
            stack.stop_children()


def flower_credentials() -> tuple[int, str]:
    """A free port and a fresh `user:password` for this run's Flower."""
    return free_port(), f"marketscan:{secrets.token_urlsafe(12)}"


def stop_on_signals() -> None:
    """Make SIGINT (even if inherited as ignored) and SIGTERM raise KeyboardInterrupt."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
