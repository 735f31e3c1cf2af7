"""The upstream module's error counter, pause and emergency shutdown, written once for every
state manager (PostgreSQL, files, memory; sync and asyncio).

Per process, as upstream: a manager counts the consecutive errors its own program reports
and holds its own pause; nothing is stored. It is not a chain scan's pause, which is a row's
status (`marketscan scan pause`, `client.pause`) seen by every worker. The sync face
(`SyncErrorGuard`) and the asyncio face (`AsyncErrorGuard`) differ only in how they wait
for an awaitable shutdown callback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from worker.domain import validation
from worker.errors import InvalidInput

log = logging.getLogger(__name__)

# A sync or async callable taking the reason; an awaitable result is awaited.
ShutdownCallback = Callable[[str], Any]


class ErrorGuard:
    """Counts consecutive errors, pauses the program's own operations, and runs one callback
    on an emergency shutdown. The attribute names are upstream's, so code (and tests) that
    read them keep working."""

    max_consecutive_errors: int
    _consecutive_errors: int
    _is_paused: bool
    _shutdown_callback: ShutdownCallback | None

    def _init_error_guard(self, max_consecutive_errors: int) -> None:
        self.max_consecutive_errors = validation.max_consecutive_errors_of(max_consecutive_errors)
        self._consecutive_errors = 0
        self._is_paused = False
        self._shutdown_callback = None

    @property
    def consecutive_errors(self) -> int:
        """Errors recorded since the last reset, resume or start."""
        return self._consecutive_errors

    @property
    def is_paused(self) -> bool:
        """True from pause_operations (or an emergency shutdown) until resume_operations."""
        return self._is_paused

    def record_error(self) -> bool:
        """Count one more consecutive error; True once the count reaches the maximum."""
        self._consecutive_errors += 1
        reached = self._consecutive_errors >= self.max_consecutive_errors
        log.warning(
            "consecutive error %d of %d", self._consecutive_errors, self.max_consecutive_errors
        )
        return reached

    def reset_error_counter(self) -> None:
        """Back to 0 errors: the operation succeeded."""
        self._consecutive_errors = 0

    def pause_operations(self) -> None:
        """Set is_paused; pausing a paused manager changes nothing."""
        if not self._is_paused:
            log.warning("operations paused")
        self._is_paused = True

    def resume_operations(self) -> None:
        """Clear is_paused and the error counter."""
        self._is_paused = False
        self._consecutive_errors = 0
        log.info("operations resumed")

    def set_shutdown_callback(self, callback: ShutdownCallback | None) -> None:
        """The callable an emergency shutdown calls with its reason; None clears it."""
        if callback is not None and not callable(callback):
            raise InvalidInput(
                f"callback must be a callable taking the reason, or None, got {callback!r}"
            )
        self._shutdown_callback = callback

    def _start_emergency_shutdown(self, reason: str) -> Awaitable[Any] | None:
        """Pause, then call the callback once; its awaitable result is left to the face."""
        log.critical("emergency shutdown: %s", reason)
        self.pause_operations()
        callback = self._shutdown_callback
        if callback is None:
            return None
        try:
            result = callback(reason)
        except Exception:
            # As upstream: the shutdown goes on (the pause stands) whatever the callback does.
            log.exception("shutdown callback failed")
            return None
        return result if inspect.isawaitable(result) else None


class SyncErrorGuard(ErrorGuard):
    """ErrorGuard for sync managers: the shutdown returns when the callback has finished."""

    def trigger_emergency_shutdown(self, reason: str) -> None:
        """Pause, then call the shutdown callback with `reason`; an async callback runs to its
        end on an event loop of its own. A failing callback is logged, never raised."""
        pending = self._start_emergency_shutdown(reason)
        if pending is not None:
            _run_to_end(pending)


class AsyncErrorGuard(ErrorGuard):
    """ErrorGuard for asyncio managers: the shutdown is awaited, as upstream's."""

    async def trigger_emergency_shutdown(self, reason: str) -> None:
        """Pause, then call the shutdown callback with `reason`, awaiting an awaitable result.
        A failing callback is logged, never raised."""
        pending = self._start_emergency_shutdown(reason)
        if pending is None:
            return
        try:
            await pending
        except Exception:
            log.exception("shutdown callback failed")


def _run_to_end(pending: Awaitable[Any]) -> None:
    async def wait() -> None:
        await pending

    def run() -> None:
        try:
            asyncio.run(wait())
        except Exception:
            log.exception("shutdown callback failed")

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    # A sync manager called from a coroutine: this thread's loop is busy running the caller,
    # so the callback gets a loop (and a thread) of its own, and the caller waits for it.
    worker = threading.Thread(target=run, name="emergency-shutdown-callback")
    worker.start()
    worker.join()
