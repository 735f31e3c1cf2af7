"""A Telegram Bot API client for the two calls marketscan makes: send and edit a message."""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any, NoReturn

import httpx

from worker.errors import ChatGone, ChatMigrated, MarketscanError

# Telegram refuses an edit that would leave the text as it is; the text is then right.
NOT_MODIFIED = "message is not modified"
# Telegram's 400 for a chat id it does not know (deleted, or never seen by the bot).
CHAT_NOT_FOUND = "chat not found"
TOKEN_PLACEHOLDER = "<bot-token>"


class TelegramError(MarketscanError):
    """Telegram did not carry out a Bot API call."""

    def __init__(self, message: str | None = None, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class TelegramChatGone(TelegramError, ChatGone):
    """403 (blocked, kicked, not a member) or "chat not found": no message will get there."""


class TelegramChatMigrated(TelegramError, ChatMigrated):
    """The group is a supergroup now (`parameters.migrate_to_chat_id`)."""

    def __init__(self, message: str, new_chat_id: int) -> None:
        super().__init__(message, 400)
        self.new_chat_id = new_chat_id


class TelegramRateLimited(TelegramError):
    """Telegram answered 429: no call to this chat before `retry_after_seconds`."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message, 429)
        self.retry_after_seconds = retry_after_seconds


class TelegramClient:
    """Blocking Bot API calls over one HTTP connection pool; use as a context manager."""

    def __init__(self, api_url: str, token: str, timeout_seconds: float) -> None:
        self._base_url = f"{api_url.rstrip('/')}/bot{token}"
        self._http = httpx.Client(timeout=timeout_seconds)
        _hide_token_from_http_logs(token)

    def __enter__(self) -> TelegramClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send_message(self, chat_id: int, text: str) -> int:
        """Send `text` to `chat_id`; the new message's id."""
        result = self._call("sendMessage", {"chat_id": chat_id, "text": text})
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise TelegramError(f"sendMessage answered without a message_id: {result!r}")
        return message_id

    def edit_message_text(
        self, chat_id: int, message_id: int, text: str, reply_markup: str | None = None
    ) -> None:
        """Replace the text of a message this bot sent; an unchanged text is a success.

        `reply_markup` (JSON) keeps the message's inline buttons; without it they go away.
        """
        payload: dict[str, Any] = {"chat_id": chat_id, "message_id": message_id, "text": text}
        if reply_markup is not None:
            payload["reply_markup"] = json.loads(reply_markup)
        try:
            self._call("editMessageText", payload)
        except TelegramError as exc:
            if exc.error_code == 400 and NOT_MODIFIED in str(exc):
                return
            raise

    def _call(self, method: str, payload: dict[str, Any]) -> Any:
        try:
            response = self._http.post(f"{self._base_url}/{method}", json=payload)
        except httpx.HTTPError as exc:
            # The message names the failure only: the URL would carry the bot token.
            raise TelegramError(f"{method}: {type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise TelegramError(
                f"{method}: HTTP {response.status_code} with a body that is not JSON",
                response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise TelegramError(f"{method}: unexpected answer {body!r}", response.status_code)
        if body.get("ok") is True:
            return body.get("result")
        _raise_refusal(method, body, response.status_code)


def _raise_refusal(method: str, body: dict[str, Any], status_code: int) -> NoReturn:
    error_code = body.get("error_code")
    code = error_code if isinstance(error_code, int) else status_code
    description = str(body.get("description") or f"HTTP {status_code}")
    parameters = body.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    migrated_to = parameters.get("migrate_to_chat_id") if isinstance(parameters, dict) else None
    if code == 429:
        seconds = float(retry_after) if isinstance(retry_after, int | float) else 1.0
        raise TelegramRateLimited(f"{method}: {description}", max(seconds, 0.0))
    if isinstance(migrated_to, int) and not isinstance(migrated_to, bool):
        raise TelegramChatMigrated(f"{method}: {code} {description}", migrated_to)
    if code == 403 or (code == 400 and CHAT_NOT_FOUND in description.lower()):
        raise TelegramChatGone(f"{method}: {code} {description}", code)
    raise TelegramError(f"{method}: {code} {description}", code)


class _TokenRedactor(logging.Filter):
    """Rewrites the bot token out of httpx's request log lines (their URLs carry it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                str(arg).replace(self.token, TOKEN_PLACEHOLDER) if self.token in str(arg) else arg
                for arg in record.args
            )
        return True


def _hide_token_from_http_logs(token: str) -> None:
    http_log = logging.getLogger("httpx")
    known = {f.token for f in http_log.filters if isinstance(f, _TokenRedactor)}
    if token not in known:
        http_log.addFilter(_TokenRedactor(token))
