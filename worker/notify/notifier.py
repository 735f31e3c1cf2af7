"""Tells a scan's user how the scan goes, on Telegram, without ever slowing a page down.

A page task only puts an event on a bounded in-process queue and returns. A daemon thread
per process, started on first use (and again in a forked child), does the Redis and HTTP
work through ProgressMessages. With no bot token the notifier does nothing at all.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import threading
import time
import uuid
import weakref
from dataclasses import dataclass

import redis

from worker import broker_redis
from worker.domain.progress import ScanProgress
from worker.errors import ConfigError
from worker.notify.messages import (
    ProgressMessages,
    completed_text,
    failed_text,
    forget_scan,
)
from worker.notify.telegram import TelegramClient, TelegramError
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Events waiting for the sender; progress stops being queued at PROGRESS_QUEUE_SIZE so
# that the rest of the queue is kept for summaries.
QUEUE_SIZE = 256
PROGRESS_QUEUE_SIZE = 192
# How long a process on its way out waits for its pending notifications.
EXIT_FLUSH_SECONDS = 2.0
REDIS_TIMEOUT_SECONDS = 5.0
SENDER_THREAD_NAME = "marketscan-telegram"


@dataclass(frozen=True)
class _Event:
    progress: ScanProgress
    # None for a progress update; the final text for a completion or failure.
    summary: str | None = None


class Notifier:
    """The notifier while Telegram is off: every call does nothing and starts nothing."""

    def progress(self, progress: ScanProgress) -> None:
        """Report a page's progress; may be skipped (throttle, same text, full queue)."""

    def completed(self, progress: ScanProgress) -> None:
        """Report that the scan completed."""

    def failed(self, progress: ScanProgress, error_message: str) -> None:
        """Report that the scan failed, and why."""

    def scan_resumed(self, scan_id: uuid.UUID) -> None:
        """Forget the scan's final summary, so that its progress shows again (in a new message).

        Call it when a finished scan (failed, say) is resumed; never raises.
        """

    def flush(self, timeout_seconds: float) -> bool:
        """Wait up to `timeout_seconds` for pending notifications; True if none is left."""
        return True

    def close(self, timeout_seconds: float = EXIT_FLUSH_SECONDS) -> None:
        """Send what is pending (waiting at most `timeout_seconds`), then stop the sender."""


class TelegramNotifier(Notifier):
    """Hands every report to this process's sender thread and returns at once."""

    def __init__(self, settings: Settings) -> None:
        if not settings.telegram_bot_token:
            raise ConfigError("the Telegram notifier needs MARKETSCAN_TELEGRAM_BOT_TOKEN")
        self._settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._events: queue.Queue[_Event | None] | None = None
        self._thread: threading.Thread | None = None
        _notifiers.add(self)
        _install_process_hooks()

    @property
    def sender_running(self) -> bool:
        """Whether this process has a live sender thread."""
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

    def progress(self, progress: ScanProgress) -> None:
        self._offer(_Event(progress))

    def completed(self, progress: ScanProgress) -> None:
        self._offer(_Event(progress, completed_text(progress)))

    def failed(self, progress: ScanProgress, error_message: str) -> None:
        self._offer(_Event(progress, failed_text(progress, error_message)))

    def scan_resumed(self, scan_id: uuid.UUID) -> None:
        # Done at once, not queued: the caller (a resume command) has no sender thread, and the
        # flag must be gone before the resumed chain's first progress.
        try:
            with broker_redis.new_client(
                self._settings.broker_url,
                self._settings.sentinel_master,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            ) as connection:
                forget_scan(connection, scan_id)
        except redis.RedisError as exc:
            log.warning("telegram state of resumed scan %s not cleared: %s", scan_id, exc)

    def flush(self, timeout_seconds: float) -> bool:
        events = self._events if self._pid == os.getpid() else None
        if events is None:
            return True
        deadline = time.monotonic() + timeout_seconds
        with events.all_tasks_done:
            while events.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                events.all_tasks_done.wait(left)
        return True

    def close(self, timeout_seconds: float = EXIT_FLUSH_SECONDS) -> None:
        with self._lock:
            events, thread = self._events, self._thread
            if self._pid != os.getpid() or events is None or thread is None:
                return
            self._pid = self._events = self._thread = None
        try:
            events.put(None, timeout=timeout_seconds)
        except queue.Full:
            return
        thread.join(timeout_seconds)

    def _offer(self, event: _Event) -> None:
        if event.progress.user_id == 0 or not event.progress.tell_user:
            return  # a scan for nobody (the CLI default), or a watch's pass not asked to tell
        events = self._queue()
        if events is None:
            return
        if event.summary is None and events.qsize() >= PROGRESS_QUEUE_SIZE:
            log.debug("telegram queue is busy; progress of scan %s dropped", event.progress.scan_id)
            return
        try:
            events.put_nowait(event)
        except queue.Full:
            log.debug("telegram queue is full; summary of scan %s dropped", event.progress.scan_id)

    def _queue(self) -> queue.Queue[_Event | None] | None:
        """This process's queue, with its sender started on first use; None if it cannot run."""
        pid = os.getpid()
        if self._pid == pid and self._events is not None:
            return self._events
        with self._lock:
            if self._pid != pid or self._events is None:
                events: queue.Queue[_Event | None] = queue.Queue(maxsize=QUEUE_SIZE)
                thread = threading.Thread(
                    target=_Sender(self._settings, events).run,
                    name=SENDER_THREAD_NAME,
                    daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError:
                    log.warning("cannot start the telegram sender thread; reports are dropped")
                    return None
                self._pid, self._events, self._thread = pid, events, thread
            return self._events

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held by one of its threads at the fork.
        self._lock = threading.Lock()


class _Sender:
    """The body of a sender thread: one Redis connection, one HTTP client, event by event."""

    def __init__(self, settings: Settings, events: queue.Queue[_Event | None]) -> None:
        self._settings = settings
        self._events = events

    def run(self) -> None:
        settings = self._settings
        assert settings.telegram_bot_token is not None
        connection = broker_redis.new_client(
            settings.broker_url,
            settings.sentinel_master,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        client = TelegramClient(
            settings.telegram_api_url, settings.telegram_bot_token, settings.http_timeout_seconds
        )
        messages = ProgressMessages(
            connection,
            client,
            settings.telegram_min_interval_seconds,
            # An edit may take a connect and a read timeout; past that its holder is gone.
            edit_slot_seconds=2 * settings.http_timeout_seconds + 1,
        )
        try:
            while True:
                event = self._events.get()
                try:
                    if event is None:
                        return
                    _deliver(messages, event)
                finally:
                    self._events.task_done()
        finally:
            client.close()
            connection.close()


def _deliver(messages: ProgressMessages, event: _Event) -> None:
    scan_id = event.progress.scan_id
    try:
        if event.summary is None:
            messages.show_progress(event.progress)
        else:
            messages.show_summary(event.progress, event.summary)
    except (TelegramError, redis.RedisError) as exc:
        log.warning("telegram report of scan %s not delivered: %s", scan_id, exc)
    except Exception:
        # The sender serves every scan of the process for its whole life; no report is
        # worth losing it. Nothing here is a task's control flow.
        log.exception("telegram report of scan %s failed", scan_id)


_notifiers: weakref.WeakSet[TelegramNotifier] = weakref.WeakSet()


class _ProcessNotifier:
    """The one notifier of the process; replacing it (new settings) stops the old sender.
    (Not an lru_cache: an evicted notifier would keep its thread and clients for life.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[Settings, Notifier] | None = None

    def __call__(self, settings: Settings) -> Notifier:
        """The process's notifier for `settings`: Telegram if a bot token is set, else a no-op."""
        with self._lock:
            previous = self._current
            if previous is not None and previous[0] == settings:
                return previous[1]
            made = TelegramNotifier(settings) if settings.telegram_bot_token else Notifier()
            self._current = (settings, made)
        if previous is not None:
            previous[1].close()
        return made

    def cache_clear(self) -> None:
        """Forget the current notifier, stopping its sender."""
        with self._lock:
            previous, self._current = self._current, None
        if previous is not None:
            previous[1].close()


notifier_for = _ProcessNotifier()


def get_notifier() -> Notifier:
    return notifier_for(get_settings())


def flush_all(timeout_seconds: float = EXIT_FLUSH_SECONDS) -> None:
    """Give every notifier of this process, together, `timeout_seconds` to send its queue."""
    deadline = time.monotonic() + timeout_seconds
    for notifier in list(_notifiers):
        notifier.flush(max(deadline - time.monotonic(), 0.0))


def _renew_locks_in_child() -> None:
    notifier_for._lock = threading.Lock()
    for notifier in list(_notifiers):
        notifier._after_fork_in_child()


@functools.cache
def _install_process_hooks() -> None:
    """Once per process, with its first notifier: send what is queued at exit, and renew
    the locks a fork copies. A prefork pool child leaves through os._exit, which skips
    atexit: worker.celery_glue.signals flushes there at `worker_process_shutdown`."""
    atexit.register(flush_all)
    os.register_at_fork(after_in_child=_renew_locks_in_child)
