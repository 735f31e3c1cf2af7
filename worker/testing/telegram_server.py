"""The loopback Telegram Bot API: a real HTTP server that a real bot library can talk to.

It speaks what marketscan's notifier and `marketscan bot` (python-telegram-bot) call:
getMe, deleteWebhook, setMyCommands, getUpdates (offset and long-poll timeout),
sendMessage, editMessageText, editMessageReplyMarkup and answerCallbackQuery. It keeps the
messages it sent with their inline buttons, answers an edit that changes nothing with
Telegram's own "message is not modified" error, records every call with its arrival time,
and can be scripted to answer chosen calls, or every call about one chat, with a rate
limit (429 with `parameters.retry_after`), an error or a delay. A test plays the users:
`user_says` and `user_presses` queue updates, handed out again and again until the bot
confirms them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, cast

from worker.testing.loopback import LoopbackHTTPServer, LoopbackService
from worker.testing.telegram_replies import (
    NOT_MODIFIED_DESCRIPTION,
    HeldCall,
    RecordedCall,
    ScriptedReply,
    decoded_body,
    failure,
    success,
)
from worker.testing.telegram_updates import BOT_USER, UpdateQueue, message_of, user_of

__all__ = [
    "DEFAULT_TOKEN",
    "NOT_MODIFIED_DESCRIPTION",
    "FakeTelegram",
    "HeldCall",
    "RecordedCall",
    "ScriptedReply",
]

DEFAULT_TOKEN = "123456:TEST-token"
# Methods that only say "done" here; the bot calls them at start-up or after a button.
ACKNOWLEDGED = frozenset({"deleteWebhook", "setMyCommands", "answerCallbackQuery"})


@dataclass
class _Message:
    text: str
    reply_markup: dict[str, Any] | None


class FakeTelegram(LoopbackService):
    """The fake Bot API; use as a context manager and point the bot at `.api_url`."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.updates = UpdateQueue()
        self._calls: list[RecordedCall] = []
        self._scripted: dict[str, deque[ScriptedReply]] = {}
        self._answer_all: ScriptedReply | None = None
        self._chat_replies: dict[int, ScriptedReply] = {}
        self._messages: dict[tuple[int, int], _Message] = {}
        self._next_message_id = 1
        self._held: dict[str, HeldCall] = {}
        self._lock = threading.Lock()

    @property
    def api_url(self) -> str:
        return self.base_url

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def calls_of(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def text_of(self, chat_id: int, message_id: int) -> str | None:
        """The current text of a message the fake sent, as the user would see it."""
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            return None if message is None else message.text

    def buttons_of(self, chat_id: int, message_id: int) -> list[str]:
        """The callback data of the message's inline buttons, row by row ([] for none)."""
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            markup = None if message is None else message.reply_markup
        rows = (markup or {}).get("inline_keyboard", [])
        return [str(button.get("callback_data")) for row in rows for button in row]

    def sent_to(self, chat_id: int) -> list[tuple[int, str]]:
        """(message_id, current text) of every message the bot sent to `chat_id`, oldest first."""
        with self._lock:
            return sorted(
                (message_id, message.text)
                for (chat, message_id), message in self._messages.items()
                if chat == chat_id
            )

    def user_says(self, user_id: int, text: str, chat_id: int | None = None) -> int:
        """User `user_id` writes `text` to the bot (in their private chat); the update_id."""
        chat = user_id if chat_id is None else chat_id
        with self._lock:
            message_id = self._new_message_id()
        return self.updates.add("message", message_of(chat, message_id, text, user_of(user_id)))

    def user_presses(
        self, user_id: int, message_id: int, data: str, chat_id: int | None = None
    ) -> int:
        """User `user_id` presses the inline button `data` under a message; the update_id."""
        chat = user_id if chat_id is None else chat_id
        with self._lock:
            message = self._messages[(chat, message_id)]
            shown = message_of(chat, message_id, message.text, BOT_USER, message.reply_markup)
        query = {
            "id": f"query-{time.monotonic_ns()}",
            "from": user_of(user_id),
            "chat_instance": str(chat),
            "message": shown,
            "data": data,
        }
        return self.updates.add("callback_query", query)

    def script(self, method: str, reply: ScriptedReply) -> None:
        """Answer the next call of `method` not yet answered by a script with `reply`."""
        with self._lock:
            self._scripted.setdefault(method, deque()).append(reply)

    def hold(self, method: str) -> HeldCall:
        """Keep the next call of `method` in flight (other calls go on) until released."""
        held = HeldCall()
        with self._lock:
            self._held[method] = held
        return held

    def answer_everything_with(self, reply: ScriptedReply | None) -> None:
        """Answer every call with `reply` from now on (None: back to normal)."""
        with self._lock:
            self._answer_all = reply

    def answer_chat_with(self, chat_id: int, reply: ScriptedReply | None) -> None:
        """Answer every call about `chat_id` with `reply` from now on (None: back to normal)."""
        with self._lock:
            if reply is None:
                self._chat_replies.pop(chat_id, None)
            else:
                self._chat_replies[chat_id] = reply

    def _handler(self) -> type[_Handler]:
        return _Handler

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.updates.close()  # wakes long polls
        super().__exit__(exc_type, exc, traceback)

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | bytes]:
        prefix = f"/bot{self.token}/"
        method = path[len(prefix) :] if path.startswith(prefix) else path
        with self._lock:
            held = self._held.pop(method, None)
        if held is not None:
            held.arrived.set()
            while not (held.released.wait(0.05) or self._closing.is_set()):
                pass
        with self._lock:
            scripted = self._scripted.get(method)
            reply: ScriptedReply | tuple[int, dict[str, Any]] | None = None
            chat_reply = self._chat_replies.get(cast(int, body.get("chat_id")))
            if self._answer_all is not None:
                reply = self._answer_all
            elif chat_reply is not None:
                reply = chat_reply
            elif scripted:
                reply = scripted.popleft()
            elif not path.startswith(prefix):
                reply = (401, failure(401, "Unauthorized"))
            elif method != "getUpdates":
                reply = self._carry_out(method, body)
        if reply is None:  # a long poll waits without holding the lock
            reply = (200, success(self._poll(body)))
        status = reply.status if isinstance(reply, ScriptedReply) else reply[0]
        with self._lock:
            self._calls.append(RecordedCall(method, body, time.monotonic(), status))
        if isinstance(reply, ScriptedReply):
            self._closing.wait(reply.delay_seconds)
            return reply.status, reply.body
        return reply

    def _poll(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        offset, timeout, limit = body.get("offset"), body.get("timeout"), body.get("limit")
        return self.updates.take(
            offset if isinstance(offset, int) else 0,
            float(timeout) if isinstance(timeout, int | float) else 0.0,
            limit if isinstance(limit, int) else 100,
        )

    def _carry_out(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """What Telegram does with a well-formed call; the caller holds the lock."""
        if method == "getMe":
            return 200, success(BOT_USER)
        if method in ACKNOWLEDGED:
            return 200, success(True)
        chat_id, text = body.get("chat_id"), body.get("text")
        markup = body.get("reply_markup")
        markup = markup if isinstance(markup, dict) else None
        if not isinstance(chat_id, int):
            return 400, failure(400, "Bad Request: chat_id is required")
        if method == "editMessageReplyMarkup":
            shown = self._messages.get((chat_id, cast(int, body.get("message_id"))))
            text = None if shown is None else shown.text
        if not isinstance(text, str) or not text:
            return 400, failure(400, "Bad Request: message text is empty")
        if method == "sendMessage":
            message_id = self._new_message_id()
            self._messages[(chat_id, message_id)] = _Message(text, markup)
            return 200, success(message_of(chat_id, message_id, text, BOT_USER, markup))
        if method in ("editMessageText", "editMessageReplyMarkup"):
            return self._edit(chat_id, body.get("message_id"), _Message(text, markup))
        return 404, failure(404, "Not Found")

    def _edit(self, chat_id: int, message_id: object, new: _Message) -> tuple[int, dict[str, Any]]:
        # An edit without reply_markup takes the buttons away, as Telegram's does.
        if not isinstance(message_id, int) or (chat_id, message_id) not in self._messages:
            return 400, failure(400, "Bad Request: message to edit not found")
        if self._messages[(chat_id, message_id)] == new:
            return 400, failure(400, NOT_MODIFIED_DESCRIPTION)
        self._messages[(chat_id, message_id)] = new
        return 200, success(message_of(chat_id, message_id, new.text, BOT_USER, new.reply_markup))

    def _new_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as Telegram's: a bot library pools its connections.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = decoded_body(self.rfile.read(length), self.headers.get("Content-Type") or "")
        status, answer = cast(FakeTelegram, cast(LoopbackHTTPServer, self.server).fake)._answer(
            self.path, body
        )
        encoded = answer if isinstance(answer, bytes) else _json_bytes(answer)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first; nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output to the test's own story


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()
