"""The drain flag: set by the worker's main process on warm shutdown, read by every task.

Celery's `worker_shutting_down` signal fires only in the main process, while prefork
tasks run in children. A `RawValue` lives in shared memory created at import, before the
pool forks, so children, threads and the solo pool all see the same byte.
"""

from __future__ import annotations

import multiprocessing

_drain = multiprocessing.RawValue("b", 0)


def request_drain() -> None:
    """Ask every running page to commit what it has done and hand over."""
    _drain.value = 1


def drain_requested() -> bool:
    return bool(_drain.value)


def clear_drain() -> None:
    """Reset the flag (a worker process that is starting anew)."""
    _drain.value = 0
