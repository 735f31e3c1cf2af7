"""What Flower sees: a real `celery -A worker flower` subprocess, and the events it consumes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import READY_TIMEOUT_SECONDS, CeleryProcess

T = TypeVar("T")

POLL_SECONDS = 0.1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Flower:
    """A Flower process on 127.0.0.1:`port`, and a client of its HTTP endpoints."""

    def __init__(self, process: CeleryProcess, port: int) -> None:
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(
        cls,
        env: Mapping[str, str],
        log_path: Path,
        options: tuple[str, ...] = (),
        flower_env: Mapping[str, str] | None = None,
    ) -> Flower:
        """Start Flower with `options` on a free loopback port; FLOWER_* come from `flower_env`."""
        # A FLOWER_* variable of the test runner's own environment (FLOWER_UNAUTHENTICATED_API,
        # say) would change what is being tested: only the caller's `flower_env` counts.
        own_env = {k: v for k, v in env.items() if not k.startswith("FLOWER_")}
        port = free_port()
        args = ["flower", *options, f"--port={port}", "--address=127.0.0.1"]
        process = CeleryProcess(args, {**own_env, **(flower_env or {})}, log_path)
        return cls(process.start(), port)

    def get(self, path: str, auth: tuple[str, str] | None = None) -> httpx.Response:
        return httpx.get(self.base_url + path, auth=auth, timeout=10)

    def wait_until_serving(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until the HTTP server answers /healthcheck."""

        def healthy() -> bool:
            try:
                return self.get("/healthcheck").status_code == 200
            except httpx.TransportError:
                return False

        self.poll(healthy, "Flower never answered /healthcheck", timeout)

    def wait_until_worker_online(
        self, hostname: str, timeout: float = READY_TIMEOUT_SECONDS
    ) -> None:
        """Wait until Flower has received an event from `hostname` (its receiver is live)."""
        self.poll(
            lambda: self.metric("flower_worker_online", worker=hostname) == 1.0,
            f"Flower never saw worker {hostname} online",
            timeout,
        )

    def metrics(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """(name, labels, value) of every sample of /metrics."""
        response = self.get("/metrics")
        response.raise_for_status()
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                yield sample.name, sample.labels, sample.value

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of the sample `name` whose labels include `labels`, or None."""
        for sample_name, sample_labels, value in self.metrics():
            if sample_name == name and labels.items() <= sample_labels.items():
                return value
        return None

    def poll(
        self,
        check: Callable[[], T | None],
        message: str | Callable[[], str],
        timeout: float = READY_TIMEOUT_SECONDS,
    ) -> T:
        """The first truthy result of `check`, polled until `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            exited = self.process.process is not None and self.process.process.poll() is not None
            if exited or time.monotonic() > deadline:
                text = message if isinstance(message, str) else message()
                raise AssertionError(
                    f"{text} (after {timeout}s)\nFlower log:\n{self.process.log()}"
                )
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self.process.stop()


class EventRecorder:
    """Receives the cluster's Celery events in a thread, as Flower does, and keeps them."""

    def __init__(self, broker_url: str) -> None:
        self._app = Celery("event-recorder", broker=broker_url, set_as_current=False)
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._receive, name="event-recorder", daemon=True)

    def __enter__(self) -> EventRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def _receive(self) -> None:
        with self._app.connection_for_read() as connection:
            self._receiver = self._app.events.Receiver(connection, handlers={"*": self._keep})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def _keep(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)

    def events(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self._events if event.get("type") == event_type]

    def wait_for_worker(self, hostname: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait for an event from `hostname` (a heartbeat comes every 2 s): the receiver is live."""
        deadline = time.monotonic() + timeout
        while not any(event.get("hostname") == hostname for event in self._snapshot()):
            assert self._thread.is_alive(), "the event receiver stopped"
            assert time.monotonic() < deadline, f"no event from {hostname} after {timeout}s"
            time.sleep(POLL_SECONDS)

    def _snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)
