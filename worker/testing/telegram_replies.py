"""What the loopback Bot API records and how a test scripts its answers: calls, replies, holds."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

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
        return cls(status, json.dumps(failure(status, description, parameters)).encode())


@dataclass
class HeldCall:
    """A call the fake keeps in flight: it is carried out only once the test releases it."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


def failure(
    error_code: int, description: str, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Telegram's error shape: ok false, the code, a description, and maybe retry_after."""
    body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
    if parameters is not None:
        body["parameters"] = parameters
    return body


def success(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def decoded_body(raw_body: bytes, content_type: str) -> dict[str, Any]:
    """A call's parameters, sent as JSON (marketscan's notifier) or as a form whose values are
    JSON-encoded except plain strings (python-telegram-bot)."""
    if "application/x-www-form-urlencoded" not in content_type:
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            return {"unparsed": raw_body.decode(errors="replace")}
        return body if isinstance(body, dict) else {"unparsed": body}
    decoded: dict[str, Any] = {}
    for name, value in parse_qsl(raw_body.decode(), keep_blank_values=True):
        decoded[name] = value if name == "text" else _json_or_text(value)
    return decoded


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
