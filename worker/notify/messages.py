"""The Telegram message of each scan: sent at the first progress, edited, ended by a summary.

Every pool process of every worker reports on the same scans, so what a scan's message is
(its id, its text) and when it may change next live in Redis, under its prefix in
worker.redis_keys, for a day. The summary is final: a progress call must hold the scan's
edit slot, which Redis grants only while the final marker is absent (one Lua script), and a
summary sets the marker and then waits for a slot still held, so no progress can land after
it.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Mapping

import redis
from redis.typing import EncodableT

from worker import redis_keys
from worker.domain import progress as scan_total
from worker.domain.progress import ScanProgress
from worker.notify.telegram import TelegramClient, TelegramError, TelegramRateLimited
from worker.redaction import redacted

log = logging.getLogger(__name__)

# A scan's keys outlive any sensible scan and then go away by themselves.
KEY_TTL_SECONDS = 24 * 3600
# A summary is retried this many times when Telegram answers 429...
SUMMARY_ATTEMPTS = 3
# ...unless Telegram asks for a wait longer than this: the sender serves every scan of
# the process, and one summary is not worth stalling all of them.
MAX_RETRY_AFTER_SECONDS = 60.0
# Telegram refuses a text longer than 4096 characters.
MAX_ERROR_CHARS = 3000
# How long a progress call may hold a scan's edit slot: past it, a dead holder's slot frees.
DEFAULT_EDIT_SLOT_SECONDS = 30.0
# How often a summary looks again whether a progress call still holds the slot.
EDIT_SLOT_POLL_SECONDS = 0.05

# The slot is granted only while the scan is not final: one step, so a summary that sets
# the marker in between cannot be missed.
_CLAIM_EDIT_SLOT = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('set', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""
# Free the slot only if it is still ours (it may have run out and gone to another caller).
_RELEASE_EDIT_SLOT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

# Fields of a scan's hash.
MESSAGE_ID = "message_id"
LAST_TEXT = "last_text"
STARTING = "starting"
FINAL = "final"
# Set when `marketscan bot` sent the scan's message (worker.notify.bot_messages): the chat
# it is in (a group's, not the user's own) and the inline buttons progress edits keep.
CHAT_ID = "chat_id"
REPLY_MARKUP = "reply_markup"


def state_key(scan_id: uuid.UUID) -> str:
    """Hash: the scan's message_id, the last text shown, and the start/final markers."""
    return f"{redis_keys.TELEGRAM_PREFIX}{scan_id}"


def throttle_key(scan_id: uuid.UUID) -> str:
    """Present while the scan's message must not take another progress edit."""
    return f"{redis_keys.TELEGRAM_PREFIX}{scan_id}:throttle"


def edit_slot_key(scan_id: uuid.UUID) -> str:
    """Present while a progress call may send or edit the scan's message."""
    return f"{redis_keys.TELEGRAM_PREFIX}{scan_id}:editing"


def forget_scan(connection: redis.Redis, scan_id: uuid.UUID) -> None:
    """Drop the scan's message state: a resumed scan's progress shows in a new message.

    A message the bot sent (it has buttons to steer the scan with) is kept and only opened
    to progress again, so the user goes on steering from the same message.
    """
    if connection.hexists(state_key(scan_id), CHAT_ID):
        connection.hdel(state_key(scan_id), FINAL)
        connection.delete(throttle_key(scan_id))
        return
    connection.delete(state_key(scan_id), throttle_key(scan_id))


def backoff_key(chat_id: int) -> str:
    """Present while Telegram's last 429 for this chat has not run out."""
    return f"{redis_keys.TELEGRAM_PREFIX}chat:{chat_id}:backoff"


def progress_text(progress: ScanProgress) -> str:
    head = f"🔄 Scan {progress.scan_id.hex[:8]}: {progress.processed}"
    if not progress.total:
        return f"{head} items processed"
    lower_bound = progress.total_is_lower_bound
    percent = scan_total.percent_done(progress.processed, progress.total, lower_bound)
    if percent is None:  # the market's total is only a lower bound: no honest share
        return f"{head} of {scan_total.total_text(progress.total, True, symbol=True)} items"
    return f"{head}/{progress.total} items ({percent}%)"


def completed_text(progress: ScanProgress) -> str:
    return f"✅ Scan {progress.scan_id.hex[:8]} completed: {progress.processed} items processed"


def failed_text(progress: ScanProgress, error_message: str) -> str:
    # Whoever hands the cause in, no password it quotes reaches the chat.
    error = redacted(error_message)
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    return f"❌ Scan {progress.scan_id.hex[:8]} failed after {progress.processed} items: {error}"


class ProgressMessages:
    """Shows scans' progress to their users; blocking calls, meant for a sender thread."""

    def __init__(
        self,
        connection: redis.Redis,
        client: TelegramClient,
        min_interval_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        edit_slot_seconds: float = DEFAULT_EDIT_SLOT_SECONDS,
    ) -> None:
        self._redis = connection
        self._client = client
        self._min_interval_ms = math.ceil(min_interval_seconds * 1000)
        self._sleep = sleep
        self._edit_slot_ms = max(math.ceil(edit_slot_seconds * 1000), 1)
        self._claim_slot = connection.register_script(_CLAIM_EDIT_SLOT)
        self._release_slot = connection.register_script(_RELEASE_EDIT_SLOT)

    def show_progress(self, progress: ScanProgress) -> None:
        """Send or edit the scan's message, unless it would repeat itself or come too soon.

        A progress that has to wait is dropped rather than delayed: a newer one follows.
        """
        text = progress_text(progress)
        state = self._state(progress.scan_id)
        chat_id = chat_of(state, progress)
        if FINAL in state or state.get(LAST_TEXT) == text:
            return
        if self._redis.exists(backoff_key(chat_id)) or not self._take_turn(progress.scan_id):
            return
        slot = self._claim_edit_slot(progress.scan_id)
        if slot is None:
            return  # the scan is final, or another process is changing its message
        try:
            if MESSAGE_ID in state:
                self._client.edit_message_text(
                    chat_id, int(state[MESSAGE_ID]), text, state.get(REPLY_MARKUP)
                )
                self._remember(progress.scan_id, {LAST_TEXT: text})
            elif self._claim_start(progress.scan_id):
                self._start(progress.scan_id, chat_id, text)
        except TelegramRateLimited as exc:
            self._back_off(chat_id, exc.retry_after_seconds)
            log.info("scan %s: progress skipped, %s", progress.scan_id, exc)
        finally:
            self._release_slot(keys=[edit_slot_key(progress.scan_id)], args=[slot])

    def show_summary(self, progress: ScanProgress, text: str) -> None:
        """Put the final `text` on the scan's message, waiting out a few 429s; no throttle."""
        # Marked first, so that progress still queued in other processes stays out; then a
        # progress call already under way is let finish, so that it lands before the summary.
        self._remember(progress.scan_id, {FINAL: "1"})
        self._wait_for_edit_slot(progress.scan_id)
        state = self._state(progress.scan_id)
        if state.get(LAST_TEXT) == text:
            return
        chat_id = chat_of(state, progress)
        for attempt in range(1, SUMMARY_ATTEMPTS + 1):
            self._wait_out_backoff(chat_id)
            try:
                # Without reply_markup: the final message has no buttons left to press.
                self._deliver_summary(progress.scan_id, chat_id, state, text)
                return
            except TelegramRateLimited as exc:
                self._back_off(chat_id, exc.retry_after_seconds)
                if attempt == SUMMARY_ATTEMPTS or exc.retry_after_seconds > MAX_RETRY_AFTER_SECONDS:
                    raise
                log.info("scan %s: summary waits, %s", progress.scan_id, exc)

    def _deliver_summary(
        self, scan_id: uuid.UUID, chat_id: int, state: Mapping[str, str], text: str
    ) -> None:
        if MESSAGE_ID in state:
            try:
                self._client.edit_message_text(chat_id, int(state[MESSAGE_ID]), text)
            except TelegramRateLimited:
                raise
            except TelegramError as exc:
                if exc.error_code != 400:
                    raise
                # The user deleted the message, or it is too old to edit: say it anew.
                log.info("scan %s: %s; sending the summary as a new message", scan_id, exc)
            else:
                self._remember(scan_id, {LAST_TEXT: text})
                return
        message_id = self._client.send_message(chat_id, text)
        self._remember(scan_id, {MESSAGE_ID: str(message_id), LAST_TEXT: text})

    def _start(self, scan_id: uuid.UUID, chat_id: int, text: str) -> None:
        try:
            message_id = self._client.send_message(chat_id, text)
        except TelegramError:
            # Let a later progress try again.
            self._redis.hdel(state_key(scan_id), STARTING)
            raise
        self._remember(scan_id, {MESSAGE_ID: str(message_id), LAST_TEXT: text})

    def _state(self, scan_id: uuid.UUID) -> dict[str, str]:
        return {
            _text(field): _text(value)
            for field, value in self._redis.hgetall(state_key(scan_id)).items()
        }

    def _remember(self, scan_id: uuid.UUID, fields: Mapping[str, str]) -> None:
        key = state_key(scan_id)
        mapping: dict[EncodableT, EncodableT] = {name: value for name, value in fields.items()}
        with self._redis.pipeline() as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, KEY_TTL_SECONDS)
            pipe.execute()

    def _claim_start(self, scan_id: uuid.UUID) -> bool:
        """Whether this process sends the scan's first message (no other one is at it)."""
        key = state_key(scan_id)
        claimed = bool(self._redis.hsetnx(key, STARTING, "1"))
        self._redis.expire(key, KEY_TTL_SECONDS)
        return claimed

    def _claim_edit_slot(self, scan_id: uuid.UUID) -> str | None:
        """A token for the scan's edit slot, or None if the scan is final or the slot taken."""
        token = secrets.token_hex(8)
        keys = [state_key(scan_id), edit_slot_key(scan_id)]
        claimed = self._claim_slot(keys=keys, args=[FINAL, token, self._edit_slot_ms])
        return token if claimed else None

    def _wait_for_edit_slot(self, scan_id: uuid.UUID) -> None:
        # Bounded by the slot's expiry, should its holder have died mid-call.
        while (left_ms := self._redis.pttl(edit_slot_key(scan_id))) > 0:
            self._sleep(min(left_ms / 1000, EDIT_SLOT_POLL_SECONDS))

    def _take_turn(self, scan_id: uuid.UUID) -> bool:
        """At most one progress call per scan per min interval, across every process."""
        if self._min_interval_ms <= 0:
            return True
        return bool(self._redis.set(throttle_key(scan_id), "1", nx=True, px=self._min_interval_ms))

    def _back_off(self, chat_id: int, retry_after_seconds: float) -> None:
        wait_ms = max(math.ceil(retry_after_seconds * 1000), 1)
        self._redis.set(backoff_key(chat_id), "1", px=wait_ms)

    def _wait_out_backoff(self, chat_id: int) -> None:
        left_seconds = self._redis.pttl(backoff_key(chat_id)) / 1000
        if left_seconds > MAX_RETRY_AFTER_SECONDS:
            raise TelegramRateLimited(f"chat {chat_id} is rate limited", left_seconds)
        if left_seconds > 0:
            self._sleep(left_seconds)


def chat_of(state: Mapping[str, str], progress: ScanProgress) -> int:
    """The chat of the scan's message: the bot's, or else the user's private chat."""
    return int(state[CHAT_ID]) if CHAT_ID in state else progress.user_id


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
