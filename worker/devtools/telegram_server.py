"""A fake Telegram Bot API: a real HTTP server on loopback speaking sendMessage/editMessageText.

It keeps the messages it was asked to send, answers an edit that changes nothing with
Telegram's own "message is not modified" error, records every call with its arrival time,
and can be scripted to answer chosen calls with a rate limit or an error.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

DEFAULT_TOKEN = "123456:TEST-token"
SHUTDOWN_POLL_SECONDS = 0.01
NOT_MODIFIED_DESCRIPTION = (
    "Bad Request: message is not modified: specified new message content and reply markup"
    " are exactly the same as a current content and reply markup of the message"
)


@dataclass(frozen=True)
class RecordedCall:
    """One Bot API call as the server saw it; `received_at` is time.monotonic() on arrival."""

    method: str
    body: dict[str, Any]
    received_at: float
    status: int

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass(frozen=True)
class ScriptedReply:
    """An answer given to one call instead of the one the fake would give."""

    status: int
    body: bytes
    delay_seconds: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after_seconds: int) -> ScriptedReply:
        return cls.failure(
            429,
            f"Too Many Requests: retry after {retry_after_seconds}",
            {"retry_after": retry_after_seconds},
        )

    @classmethod
    def not_modified(cls) -> ScriptedReply:
        return cls.failure(400, NOT_MODIFIED_DESCRIPTION)

    @classmethod
    def server_error(cls, status: int = 500, delay_seconds: float = 0.0) -> ScriptedReply:
        return cls(status, b"<html>Internal Server Error</html>", delay_seconds)

    @classmethod
    def failure(
        cls, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> ScriptedReply:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters is not None:
            body["parameters"] = parameters
        return cls(status, json.dumps(body).encode())


@dataclass
class HeldCall:
    """A call the fake keeps in flight: it is carried out only once the test releases it."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class FakeTelegram:
    """The fake Bot API; use as a context manager and point the bot at `.api_url`."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self._calls: list[RecordedCall] = []
        self._scripted: dict[str, deque[ScriptedReply]] = {}
        self._answer_all: ScriptedReply | None = None
        self._texts: dict[tuple[int, int], str] = {}
        self._next_message_id = 1
        self._held: dict[str, HeldCall] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeTelegram is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def calls_of(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def text_of(self, chat_id: int, message_id: int) -> str | None:
        """The current text of a message the fake sent, as the user would see it."""
        with self._lock:
            return self._texts.get((chat_id, message_id))

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

    def __enter__(self) -> FakeTelegram:
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()  # wakes handlers sleeping in a slow reply
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _answer(self, path: str, raw_body: bytes) -> tuple[int, bytes]:
        prefix = f"/bot{self.token}/"
        method = path[len(prefix) :] if path.startswith(prefix) else path
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            body = {"unparsed": raw_body.decode(errors="replace")}
        with self._lock:
            held = self._held.pop(method, None)
        if held is not None:
            held.arrived.set()
            while not (held.released.wait(0.05) or self._closing.is_set()):
                pass
        with self._lock:
            scripted = self._scripted.get(method)
            if self._answer_all is not None:
                reply: ScriptedReply | tuple[int, dict[str, Any]] = self._answer_all
            elif scripted:
                reply = scripted.popleft()
            elif not path.startswith(prefix):
                reply = (401, _failure(401, "Unauthorized"))
            else:
                reply = self._carry_out(method, body)
            status = reply.status if isinstance(reply, ScriptedReply) else reply[0]
            self._calls.append(RecordedCall(method, body, time.monotonic(), status))
        if isinstance(reply, ScriptedReply):
            self._closing.wait(reply.delay_seconds)
            return reply.status, reply.body
        return reply[0], json.dumps(reply[1]).encode()

    def _carry_out(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """What Telegram does with a well-formed call; the caller holds the lock."""
        chat_id, text = body.get("chat_id"), body.get("text")
        if not isinstance(chat_id, int) or not isinstance(text, str) or not text:
            return 400, _failure(400, "Bad Request: chat_id and a non-empty text are required")
        if method == "sendMessage":
            new_id = self._next_message_id
            self._next_message_id += 1
            self._texts[(chat_id, new_id)] = text
            return 200, _message(chat_id, new_id, text)
        if method == "editMessageText":
            message_id = body.get("message_id")
            if not isinstance(message_id, int) or (chat_id, message_id) not in self._texts:
                return 400, _failure(400, "Bad Request: message to edit not found")
            if self._texts[(chat_id, message_id)] == text:
                return 400, _failure(400, NOT_MODIFIED_DESCRIPTION)
            self._texts[(chat_id, message_id)] = text
            return 200, _message(chat_id, message_id, text)
        return 404, _failure(404, "Not Found")


def _message(chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "ok": True,
        "result": {
            "message_id": message_id,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }


def _failure(error_code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": error_code, "description": description}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        fake: FakeTelegram,
    ) -> None:
        super().__init__(address, handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length)
        status, body = cast(_Server, self.server).fake._answer(self.path, raw_body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first; nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output to the test's own story
