"""The updates side of the loopback Bot API: what users "send", and getUpdates' long poll.

Telegram keeps every update until a getUpdates call names a higher offset, so an update
whose offset a bot never confirmed (it was killed, say) is handed out again. This queue
does the same, and can also hand out an update again on purpose (`redeliver`), as
Telegram does when it is unsure a delivery arrived.
"""

from __future__ import annotations

import threading
import time
from typing import Any

BOT_USER = {"id": 100000001, "is_bot": True, "first_name": "marketscan", "username": "ms_bot"}
# getUpdates answers at most this many updates, as Telegram does.
MAX_UPDATES_PER_CALL = 100


def user_of(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}


def chat_of(chat_id: int) -> dict[str, Any]:
    """A user's private chat (its id is theirs), or a group (Telegram's are negative)."""
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": f"group{-chat_id}"}
    return {"id": chat_id, "type": "private"}


def message_of(
    chat_id: int,
    message_id: int,
    text: str,
    sender: dict[str, Any],
    reply_markup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Message object as Telegram serialises it; a leading /command carries its entity."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": sender,
        "chat": chat_of(chat_id),
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    if reply_markup is not None:
        message["reply_markup"] = reply_markup
    return message


class UpdateQueue:
    """Updates waiting for the bot, confirmed by offset; thread-safe, with a long poll."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: list[dict[str, Any]] = []
        self._again: list[dict[str, Any]] = []
        self._delivered: dict[int, dict[str, Any]] = {}
        self._next_update_id = 1
        self.confirmed_offset = 0
        self.closing = False

    def add(self, payload_key: str, payload: dict[str, Any]) -> int:
        """Queue an update carrying `payload` under `payload_key`; returns its update_id."""
        with self._condition:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._pending.append({"update_id": update_id, payload_key: payload})
            self._condition.notify_all()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Hand out an update that was already delivered once more, offset or not (one not
        handed out yet is waiting anyway)."""
        with self._condition:
            if update_id in self._delivered:
                self._again.append(self._delivered[update_id])
                self._condition.notify_all()

    def message_id_of(self, update_id: int) -> int:
        """The message_id of the message an update carries (a user's, or a button's)."""
        with self._condition:
            known = (*self._pending, *self._delivered.values())
            update = next(u for u in known if u["update_id"] == update_id)
        payload = update.get("message") or update["callback_query"]["message"]
        return int(payload["message_id"])

    def unconfirmed(self) -> list[int]:
        with self._condition:
            return [update["update_id"] for update in self._pending]

    def close(self) -> None:
        with self._condition:
            self.closing = True
            self._condition.notify_all()

    def take(self, offset: int, timeout_seconds: float, limit: int) -> list[dict[str, Any]]:
        """What getUpdates answers: confirm below `offset`, then wait up to the timeout."""
        deadline = time.monotonic() + max(timeout_seconds, 0.0)
        with self._condition:
            if offset > self.confirmed_offset:
                self.confirmed_offset = offset
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
            while not (self._pending or self._again or self.closing):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
            answer = (self._again + self._pending)[: max(min(limit, MAX_UPDATES_PER_CALL), 1)]
            self._again = self._again[len(answer) :]
            for update in answer:
                self._delivered[update["update_id"]] = update
            return answer
