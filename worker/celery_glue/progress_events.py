"""Page tasks' `task-progress` events, sent through one event dispatcher per process.

`Task.send_event` builds its sending path anew for every event: a connection taken from the
pool, a kombu producer and an EventDispatcher, all dropped again; a profile of figure 1's
time slices put that at a sixth of a page task's time. Here a process keeps one dispatcher
on a connection of its own, made on first use in the process that sends: a prefork pool
child never inherits its parent's (a pid check drops whatever was made before a fork,
without closing it: those sockets are the parent's), and it is closed when the process
shuts down (worker.celery_glue.signals; atexit where a process leaves normally).

An event is the one Task.send_event sends: the same type, fields, task uuid and hostname,
published with the app's task_publish_retry_policy, so kombu re-establishes a lost Redis
connection. A send that still fails drops the dispatcher and its connection, so the next
event makes them anew (a broker that restarted is reached again). The threads pool runs
several tasks in one process, and a kombu connection is not thread-safe: a lock keeps
them to one send at a time.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
from typing import Any, Protocol

from celery import Celery

PROGRESS_EVENT = "task-progress"
# The name the dispatcher's connection gives itself in Redis (CLIENT LIST), with its pid:
# which process holds which connection, for an operator and for the tests.
CLIENT_NAME_PREFIX = "marketscan-progress-"


class TaskRequest(Protocol):
    """What an event takes from the task's request (celery.app.task.Context)."""

    id: str | None
    hostname: str | None


class ProcessDispatcher:
    """One process's event dispatcher and the broker connection it alone uses."""

    def __init__(self, app: Celery, hostname: str | None) -> None:
        self.app = app
        self.hostname = hostname
        self.pid = os.getpid()
        self.connection: Any = app.connection_for_write(
            transport_options={"client_name": client_name(self.pid)}
        )
        # Not buffered while offline, as Task.send_event's is not: a failed send raises.
        self.dispatcher: Any = app.events.Dispatcher(
            self.connection, hostname=hostname, enabled=True, buffer_while_offline=False
        )

    def serves(self, app: Celery, hostname: str | None) -> bool:
        return self.app is app and self.hostname == hostname and self.pid == os.getpid()

    def send(self, request: TaskRequest, fields: dict[str, Any]) -> None:
        self.dispatcher.send(
            PROGRESS_EVENT,
            uuid=request.id,
            retry=True,
            retry_policy=self.app.conf.task_publish_retry_policy,
            **fields,
        )

    def close(self) -> None:
        self.dispatcher.close()
        self.connection.release()

    def discard(self) -> None:
        """Let go of a connection that failed, ignoring its socket's errors."""
        self.dispatcher.close()
        with contextlib.suppress(*self.connection.connection_errors, OSError):
            self.connection.collect()


_lock = threading.Lock()
_current: ProcessDispatcher | None = None


def client_name(pid: int) -> str:
    """The Redis client name of process `pid`'s dispatcher connection."""
    return f"{CLIENT_NAME_PREFIX}{pid}"


def send_progress(app: Celery, request: TaskRequest, **fields: Any) -> None:
    """Send `task-progress` with `fields` for the task of `request`, as Task.send_event would.

    Raises what kombu raises when the broker stays unreachable past the retry policy; the
    next call then starts over on a new connection.
    """
    global _current
    with _lock:
        dispatcher = _current
        if dispatcher is not None and not dispatcher.serves(app, request.hostname):
            if dispatcher.pid == os.getpid():
                dispatcher.close()
            dispatcher = _current = None  # a parent's is dropped, never closed
        if dispatcher is None:
            dispatcher = _current = ProcessDispatcher(app, request.hostname)
            _close_at_exit()
        try:
            dispatcher.send(request, fields)
        except Exception:
            _current = None
            dispatcher.discard()
            raise


def close() -> None:
    """Close this process's dispatcher, if it made one (at shutdown; tests start afresh)."""
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            _current.close()
        _current = None


@functools.cache
def _close_at_exit() -> None:
    """Once per process, with its first dispatcher (pool children leave through os._exit,
    which skips atexit: worker.celery_glue.signals closes theirs)."""
    atexit.register(close)
