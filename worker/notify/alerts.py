"""Alerts on Telegram within its limits, shared by every beat: a slot per chat and per
second for the fleet, one listing at one price once per window, a 429's wait honoured, and
one sender at a time per watch pass.

The rates live in the broker's Redis, so two beats together stay within them. A message
that may not go yet, or that Telegram did not take (an error, a timeout, a 429), is simply
not recorded: its finds stay after the pass's cursor in the database and are sent at a
later tick (a burst queues there, nothing is dropped). A listing is remembered as alerted
only once Telegram took the message that lists it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from worker import redis_keys
from worker.domain.alert import Find
from worker.errors import ChatGone, ChatMigrated
from worker.notify.telegram import TelegramClient, TelegramError, TelegramRateLimited

log = logging.getLogger(__name__)

# A pass's send lock covers one Bot API call, which may take its HTTP timeout for each of
# sending and reading, and the reads and writes around it; a beat that dies holding it
# delays the pass's alert this long.
PASS_LOCK_SLACK_SECONDS = 5.0

# Free a pass's lock only if it is still ours (it may have run out and gone to another beat).
_RELEASE_PASS_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def chat_slot_key(chat_id: int) -> str:
    return f"{redis_keys.ALERT_PREFIX}chat:{chat_id}"


def second_key(second: int) -> str:
    return f"{redis_keys.ALERT_PREFIX}second:{second}"


def seen_key(chat_id: int, find: Find) -> str:
    return f"{redis_keys.ALERT_PREFIX}seen:{chat_id}:{find.item_id}:{find.price_cents}"


def pass_lock_key(scan_id: uuid.UUID) -> str:
    return f"{redis_keys.ALERT_PREFIX}pass:{scan_id}"


def pass_lock_seconds(http_timeout_seconds: float) -> float:
    """How long a pass's send lock lasts when the Bot API client waits `http_timeout_seconds`."""
    return 2 * http_timeout_seconds + PASS_LOCK_SLACK_SECONDS


class AlertDesk:
    """Takes rate slots and pass locks, filters and records finds alerted, sends; Redis is
    the fleet's memory."""

    def __init__(
        self,
        connection: redis.Redis,
        client: TelegramClient,
        *,
        chat_interval_seconds: float,
        messages_per_second: int,
        dedup_seconds: int,
        pass_lock_seconds: float,
    ) -> None:
        self._redis = connection
        self._client = client
        self._chat_interval_ms = int(chat_interval_seconds * 1000)
        self._messages_per_second = messages_per_second
        self._dedup_seconds = dedup_seconds
        self._pass_lock_ms = max(int(pass_lock_seconds * 1000), 1)
        self._release_pass_lock = connection.register_script(_RELEASE_PASS_LOCK)

    @contextmanager
    def pass_lock(self, scan_id: uuid.UUID) -> Iterator[bool]:
        """Hold the pass's send lock for the block if no other beat holds it; yields whether
        it is held. It runs out by itself, so a beat that dies holding it only delays."""
        key = pass_lock_key(scan_id)
        token = uuid.uuid4().hex
        held = bool(self._redis.set(key, token, nx=True, px=self._pass_lock_ms))
        try:
            yield held
        finally:
            if held:
                self._release_pass_lock(keys=[key], args=[token])

    def chat_ready(self, chat_id: int) -> bool:
        """Take the chat's next send slot, if the chat and the fleet have one now.

        The chat's slot first: only a message that could go counts against the fleet's
        second, so busy chats do not use up the others' share.
        """
        chat_key = chat_slot_key(chat_id)
        if not self._redis.set(chat_key, 1, nx=True, px=self._chat_interval_ms):
            return False
        second = second_key(int(time.time()))
        with self._redis.pipeline() as pipe:
            pipe.incr(second)
            pipe.expire(second, 2)
            sent_this_second, _ = pipe.execute()
        if int(sent_this_second) > self._messages_per_second:
            self._redis.delete(chat_key)  # the fleet is full this second: try next tick
            return False
        return True

    def unsent(self, chat_id: int, finds: list[Find]) -> list[Find]:
        """The finds not alerted to the chat at their price within the window; marks nothing."""
        if not finds:
            return []
        alerted = self._redis.mget([seen_key(chat_id, find) for find in finds])
        return [find for find, mark in zip(finds, alerted, strict=True) if mark is None]

    def mark_sent(self, chat_id: int, finds: list[Find]) -> None:
        """Remember the finds as alerted to the chat, for the window; after Telegram took them."""
        with self._redis.pipeline(transaction=False) as pipe:
            for find in finds:
                pipe.set(seen_key(chat_id, find), 1, ex=self._dedup_seconds)
            pipe.execute()

    def send(self, chat_id: int, text: str) -> bool:
        """Send once; False if Telegram did not take the message (then it is sent again at a
        later tick). A 429 holds the chat's slot for the wait Telegram asks, so the next try
        comes after it, without holding up other chats meanwhile.

        ChatGone and ChatMigrated are raised: the chat's watches must change.
        """
        try:
            self._client.send_message(chat_id, text)
            return True
        except TelegramRateLimited as exc:
            wait_ms = max(int(exc.retry_after_seconds * 1000), self._chat_interval_ms)
            self._redis.set(chat_slot_key(chat_id), 1, px=wait_ms)
            log.info("alert to chat %s rate limited; sent again in %d ms", chat_id, wait_ms)
            return False
        except (ChatGone, ChatMigrated):
            raise  # the chat's watches change: the follower's to decide
        except TelegramError as exc:
            log.warning("alert to chat %s not delivered (sent again later): %s", chat_id, exc)
            return False
