"""Real Celery subprocesses (worker, beat, Flower) and the bot, killed by pid, never by name:
the one wrapper the acceptance tests, bench/ and the dev stack (`marketscan dev`, the demo)
use.

Each process runs in its own process group, so Ctrl-C reaches only its parent and a
SIGKILL of the group takes a prefork pool with it. Its output goes to a log file, and,
with `echo_as`, also to our stdout, each line prefixed with that name (credentials
redacted).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from worker.redaction import redacted

READY_TIMEOUT_SECONDS = 60.0


class CeleryProcess:
    """One Celery process with its log in a file, started in its own process group."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        log_path: Path,
        app: str = "worker",
        echo_as: str | None = None,
        module: str = "celery",
    ) -> None:
        self.args = args
        self.app = app
        # `python -m celery -A app ...`, or another of our commands (`worker.cli metrics`).
        self.command = [sys.executable, "-m", module, *(["-A", app] if module == "celery" else [])]
        self.env = dict(env)
        self.log_path = log_path
        self.echo_as = echo_as
        self.process: subprocess.Popen[bytes] | None = None
        self._terminated = False
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> CeleryProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child or the pump
        self.process = subprocess.Popen(
            [*self.command, *self.args],
            env=self.env,
            stdout=log if self.echo_as is None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.echo_as is None:
            log.close()
        else:
            self._pump = threading.Thread(
                target=_copy_lines, args=(self.echo_as, self.process.stdout, log), daemon=True
            )
            self._pump.start()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(
        self, text: str, timeout: float = READY_TIMEOUT_SECONDS, after: int = 0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"celery exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the celery log after {timeout}s:\n{self.log()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def kill_group(self) -> None:
        """SIGKILL the process and every child of its group (the prefork pool)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def terminate(self) -> None:
        """SIGTERM once (Celery's warm shutdown), so several processes can shut down at once."""
        if self.process is not None and self.process.poll() is None and not self._terminated:
            self.process.terminate()
            self._terminated = True

    def stop(self) -> None:
        """Warm shutdown, then force: used at test teardown."""
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill_group()
        else:
            # The pool children die with the main process; make sure of it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._pump is not None:
            self._pump.join(timeout=2)


def _copy_lines(name: str, stream: IO[bytes] | None, log: IO[bytes]) -> None:
    """Copy the child's output to its log, and to our stdout prefixed with `name`."""
    if stream is None:
        return
    with log:
        for raw in stream:
            log.write(raw)
            log.flush()
            sys.stdout.write(f"[{name}] {redacted(raw.decode(errors='replace'))}")
            sys.stdout.flush()


def worker(
    env: Mapping[str, str],
    log_path: Path,
    hostname: str = "w1@test",
    pool: str = "prefork",
    concurrency: int = 2,
    extra: tuple[str, ...] = (),
    app: str = "worker",
) -> CeleryProcess:
    """A `celery worker` of `app` (the -A argument: a module, or `module:attribute`)."""
    return CeleryProcess(
        [
            "worker",
            "--loglevel=INFO",
            f"--hostname={hostname}",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-mingle",
            "--without-gossip",
            *extra,
        ],
        env,
        log_path,
        app,
    )


def bot(env: Mapping[str, str], log_path: Path, echo_as: str | None = None) -> CeleryProcess:
    """`marketscan bot`, as `python -m worker.bot`, with the same process handling."""
    return CeleryProcess([], env, log_path, echo_as=echo_as, module="worker.bot")


def beat(env: Mapping[str, str], log_path: Path, schedule_dir: Path) -> CeleryProcess:
    return CeleryProcess(
        [
            "beat",
            "--loglevel=INFO",
            f"--schedule={schedule_dir / 'celerybeat-schedule'}",
        ],
        env,
        log_path,
    )


def metrics_exporter(env: Mapping[str, str], log_path: Path, port: int) -> CeleryProcess:
    """`marketscan metrics` on 127.0.0.1:`port`, stopped like the Celery processes."""
    return CeleryProcess(["metrics", "--port", str(port)], env, log_path, module="worker.cli")
