"""Shutdown signals beyond Celery's own: a pool child's SIGTERM drains its page, a second one
(or a cold shutdown's) ends it now.

A SIGTERM sent to the whole process group (systemd's default `KillMode=control-group`,
`kill -TERM -- -PGID`) reaches the prefork children as well as the main process. billiard
answers it in a child by unwinding the running task at once, so the page dies mid-way
(`WorkerLostError`) and its judged items are judged again by the redelivery. Here a
child's first SIGTERM asks its page to drain instead, like the main process's warm
shutdown does; the main process closes the pool once the page has handed over.

"Now" still means now: a second SIGTERM to the child, or any SIGTERM once the main
process has begun a cold shutdown (SIGQUIT; billiard then SIGTERMs every child to end it),
goes to billiard's own handler and the child exits as before.

billiard installs its handler after `worker_process_init` has run, over whatever the
initializer set, so ours is wrapped around it when the child's first task starts.

Celery's cold shutdown SIGTERMs the children (cancelling their requests) before it sends
`worker_shutting_down`, so the main process notes "stop now" earlier, by wrapping the
handlers of the signals that start one: SIGQUIT, and SIGINT once a warm shutdown began.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from worker.celery_glue import drain

log = logging.getLogger(__name__)

# The process that imported the glue: the worker's main process, which forks the pool.
# The solo pool sends `worker_process_init` too, in this very process.
_MAIN_PID = os.getpid()
_in_pool_child = [False]
_installed = [False]
_COLD_MARK = "_marketscan_notes_cold_shutdown"


def arm_main_process() -> None:
    """Wrap the main process's cold-shutdown signal handlers (call when the worker is ready,
    and again after each shutdown signal, as Celery swaps handlers as it goes)."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; Celery's are set there too
    for signum in (signal.SIGQUIT, signal.SIGINT):
        handler = signal.getsignal(signum)
        if callable(handler) and not getattr(handler, _COLD_MARK, False):
            signal.signal(signum, _noting_cold_shutdown(signum, handler))


def _noting_cold_shutdown(signum: int, handler: Any) -> Any:
    def on_signal(received: int, frame: FrameType | None) -> None:
        # A first SIGINT is Celery's warm shutdown; a SIGQUIT, or a SIGINT during one, cold.
        if signum == signal.SIGQUIT or drain.worker_draining():
            drain.request_stop_now()
        handler(received, frame)

    setattr(on_signal, _COLD_MARK, True)
    return on_signal


def mark_pool_child() -> None:
    """Note whether this process is a prefork pool child (call from `worker_process_init`)."""
    _in_pool_child[0] = os.getpid() != _MAIN_PID
    _installed[0] = False
    drain.clear_drain_here()


def arm_pool_child() -> None:
    """Wrap this pool child's SIGTERM handler, once (call as each task starts)."""
    if not _in_pool_child[0] or _installed[0]:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if drain.stop_now_requested() or drain.drain_here_requested():
            _exit_now(previous, signum, frame)
            return
        log.info("SIGTERM in pool child: the running page will commit and hand over")
        drain.request_drain_here()

    signal.signal(signal.SIGTERM, on_sigterm)
    _installed[0] = True


def task_done() -> None:
    """After a task: a child SIGTERM that the main process did not share is spent.

    A stray SIGTERM to one child (not a shutdown of the worker) drained one page; the
    child goes on with the next one instead of handing every page over at once.
    """
    if drain.drain_here_requested() and not drain.worker_draining():
        drain.clear_drain_here()


def _exit_now(previous: Any, signum: int, frame: FrameType | None) -> None:
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
