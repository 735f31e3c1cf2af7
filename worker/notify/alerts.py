"""Alerts on Telegram within its limits, shared by every beat: a slot per chat and per
second for the fleet, one listing at one price once per window, a 429's wait honoured.

The rates live in the broker's Redis, so two beats together stay within them. A message
that may not go yet is simply not taken: its finds stay unalerted in the database and are
taken at a later tick (a burst queues there, nothing is dropped).
"""

from __future__ import annotations

import logging
import time

import redis

from worker import redis_keys
from worker.domain.alert import Find
from worker.errors import ChatGone, ChatMigrated
from worker.notify.telegram import TelegramClient, TelegramError, TelegramRateLimited

log = logging.getLogger(__name__)

# How often one alert is tried again after Telegram's 429s before it is given up (logged).
MAX_RATE_LIMITED_TRIES = 5


def chat_slot_key(chat_id: int) -> str:
    return f"{redis_keys.ALERT_PREFIX}chat:{chat_id}"


def second_key(second: int) -> str:
    return f"{redis_keys.ALERT_PREFIX}second:{second}"


def seen_key(chat_id: int, find: Find) -> str:
    return f"{redis_keys.ALERT_PREFIX}seen:{chat_id}:{find.item_id}:{find.price_cents}"


class AlertDesk:
    """Takes rate slots, filters finds alerted recently, sends; Redis is the fleet's memory."""

    def __init__(
        self,
        connection: redis.Redis,
        client: TelegramClient,
        *,
        chat_interval_seconds: float,
        messages_per_second: int,
        dedup_seconds: int,
    ) -> None:
        self._redis = connection
        self._client = client
        self._chat_interval_ms = int(chat_interval_seconds * 1000)
        self._messages_per_second = messages_per_second
        self._dedup_seconds = dedup_seconds

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

    def fresh(self, chat_id: int, finds: list[Find]) -> list[Find]:
        """The finds not alerted to the chat within the window, now marked as alerted."""
        with self._redis.pipeline() as pipe:
            for find in finds:
                pipe.set(seen_key(chat_id, find), 1, nx=True, ex=self._dedup_seconds)
            marked = pipe.execute()
        return [find for find, new in zip(finds, marked, strict=True) if new]

    def send(self, chat_id: int, text: str) -> bool:
        """Send, waiting out Telegram's 429s (and holding the chat's slot for the wait).

        ChatGone and ChatMigrated are raised: the chat's watches must change.
        """
        for _ in range(MAX_RATE_LIMITED_TRIES):
            try:
                self._client.send_message(chat_id, text)
                return True
            except TelegramRateLimited as exc:
                wait_ms = max(int(exc.retry_after_seconds * 1000), self._chat_interval_ms)
                self._redis.set(chat_slot_key(chat_id), 1, px=wait_ms)
                log.info("alert to chat %s rate limited; retrying in %d ms", chat_id, wait_ms)
                time.sleep(wait_ms / 1000)
            except (ChatGone, ChatMigrated):
                raise  # the chat's watches change: the follower's to decide
            except TelegramError as exc:
                log.warning("alert to chat %s not delivered: %s", chat_id, exc)
                return False
        log.warning(
            "alert to chat %s given up after %d rate limits", chat_id, MAX_RATE_LIMITED_TRIES
        )
        return False
