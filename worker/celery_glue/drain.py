"""The drain flag: set by the worker's main process on warm shutdown, read by every task.

Celery's `worker_shutting_down` signal fires only in the main process, while prefork
tasks run in children. A `RawValue` lives in shared memory created at import, before the
pool forks, so children, threads and the solo pool all see the same byte.

The byte has three levels: running, draining (a warm shutdown: pages commit what they
judged and hand over), and stopping now (a cold shutdown: the main process is about to
SIGTERM its pool children, which must then die rather than drain). A pool child that got
a SIGTERM of its own also drains its page (worker.celery_glue.child_signals), through a
flag of that process alone, so a stray SIGTERM to one child never drains the others.
"""

from __future__ import annotations

import multiprocessing

_RUNNING, _DRAINING, _STOPPING_NOW = 0, 1, 2

_drain = multiprocessing.RawValue("b", _RUNNING)
# This process alone was asked to drain (a SIGTERM to a pool child); not shared.
_drain_here = [False]


def request_drain() -> None:
    """Ask every running page to commit what it has done and hand over."""
    _drain.value = max(_drain.value, _DRAINING)


def request_stop_now() -> None:
    """Note a cold shutdown: a SIGTERM a pool child gets from now on means "die now"."""
    _drain.value = _STOPPING_NOW


def drain_requested() -> bool:
    return _drain.value != _RUNNING or _drain_here[0]


def stop_now_requested() -> bool:
    return bool(_drain.value == _STOPPING_NOW)


def worker_draining() -> bool:
    """Whether the whole worker (its main process) is shutting down."""
    return bool(_drain.value != _RUNNING)


def request_drain_here() -> None:
    """Ask the page running in this process only to commit and hand over."""
    _drain_here[0] = True


def drain_here_requested() -> bool:
    return _drain_here[0]


def clear_drain_here() -> None:
    _drain_here[0] = False


def clear_drain() -> None:
    """Reset the flag (a worker process that is starting anew)."""
    _drain.value = _RUNNING
    _drain_here[0] = False
