"""A whole marketscan on one machine: embedded PostgreSQL and Redis, worker, beat, Flower.

Children run in their own process groups, so Ctrl-C reaches only this process, which then
stops them in order (warm first, then by force) and stops the servers last.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from worker.db.migrate import upgrade
from worker.devtools.embedded import EmbeddedServices, embedded_services, free_port
from worker.redaction import redacted

STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class Child:
    """One child process whose output is copied to ours, each line prefixed with its name."""

    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, echo: bool = True) -> Child:
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = threading.Thread(
            target=_copy_lines, args=(self.name, self.process.stdout, echo), daemon=True
        )
        self._pump.start()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the child and its whole process group (a prefork pool included)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL the group if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        # Pool children that outlived their parent go with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)


def _copy_lines(name: str, stream: IO[bytes] | None, echo: bool) -> None:
    if stream is None:
        return
    for raw in stream:
        if echo:
            sys.stdout.write(f"[{name}] {redacted(raw.decode(errors='replace'))}")
            sys.stdout.flush()


@dataclass
class DevStack:
    """Embedded services plus the Celery processes that run against them."""

    services: EmbeddedServices
    directory: Path
    children: list[Child] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.services.database_url,
            "CELERY_BROKER_URL": self.services.broker_url,
            "PYTHONUNBUFFERED": "1",
        }

    def celery(
        self, name: str, args: Sequence[str], echo: bool = True, env: dict[str, str] | None = None
    ) -> Child:
        child = Child(
            name,
            [sys.executable, "-m", "celery", "-A", "worker", *args],
            {**self.env, **(env or {})},
        )
        self.children.append(child.start(echo))
        return child

    def worker(self, hostname: str = "dev-worker@marketscan", echo: bool = True) -> Child:
        return self.celery(
            "worker",
            ["worker", "--loglevel=INFO", f"--hostname={hostname}", "--concurrency=2"],
            echo,
        )

    def beat(self, echo: bool = True) -> Child:
        schedule = self.directory / "celerybeat-schedule"
        return self.celery("beat", ["beat", "--loglevel=INFO", f"--schedule={schedule}"], echo)

    def flower(self, port: int, basic_auth: str, echo: bool = True) -> Child:
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
