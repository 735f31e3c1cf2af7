"""The one line a stranger gets: at most once per window, sent beside the loop, never awaited.

The bot handles updates one at a time (worker.bot.polling), so anything it awaits for a
stranger delays every allowed user, and a stranger decides how Telegram answers a refusal
(a blocked bot, a deleted message, a group that is slow or rate-limited). So a refusal is a
task of its own on a Bot API client of its own: its own few connections and no shared rate
limiter, whose 429 pause would hold every reply. Its failure is logged and changes nothing,
and a stranger earns one refusal per window however many commands they send. Everything
here is bounded: the strangers remembered, and the refusals in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from telegram import Bot
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)

# Strangers remembered for the window: past this many, the longest-refused is forgotten
# (it may be refused once more), so a flood of new ids cannot grow the bot's memory.
REMEMBERED_STRANGERS = 10_000
# Refusals on their way at once, one connection each; past this, a refusal is not sent.
REFUSALS_IN_FLIGHT = 4


class Refusals:
    """Which strangers are due a refusal, and the refusals on their way to them."""

    def __init__(
        self,
        bot: Bot,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._window_seconds = window_seconds
        self._clock = clock
        self._refused_at: OrderedDict[int, float] = OrderedDict()
        self._in_flight: set[asyncio.Task[None]] = set()

    @classmethod
    def over(
        cls, token: str, api_url: str, timeout_seconds: float, window_seconds: float
    ) -> Refusals:
        """Refusals sent through a Bot API client of their own at `api_url`."""
        request = HTTPXRequest(
            connection_pool_size=REFUSALS_IN_FLIGHT,
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            write_timeout=timeout_seconds,
            pool_timeout=timeout_seconds,
        )
        bot = Bot(token, base_url=f"{api_url}/bot", request=request)
        return cls(bot, window_seconds)

    def due(self, user_id: int) -> bool:
        """Whether `user_id` is due a refusal now; if so, their window starts now."""
        now = self._clock()
        last = self._refused_at.get(user_id)
        if last is not None and now - last < self._window_seconds:
            return False
        self._refused_at[user_id] = now
        self._refused_at.move_to_end(user_id)
        while len(self._refused_at) > REMEMBERED_STRANGERS:
            self._refused_at.popitem(last=False)
        return True

    def to_message(self, user_id: int, chat_id: int, text: str) -> bool:
        """Send `text` into the chat of the stranger's message; False if not sent at all."""
        return self._start(user_id, lambda: self._bot.send_message(chat_id, text))

    def to_press(self, user_id: int, query_id: str, text: str) -> bool:
        """Answer the stranger's button press with `text`; False if not sent at all."""
        return self._start(
            user_id, lambda: self._bot.answer_callback_query(query_id, text, show_alert=True)
        )

    async def close(self) -> None:
        """Give up the refusals still in flight (they are a courtesy, not owed) and the client."""
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._bot.shutdown()

    def _start(self, user_id: int, send: Callable[[], Awaitable[object]]) -> bool:
        if len(self._in_flight) >= REFUSALS_IN_FLIGHT:
            return False
        task = asyncio.get_running_loop().create_task(self._deliver(user_id, send))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return True

    @staticmethod
    async def _deliver(user_id: int, send: Callable[[], Awaitable[object]]) -> None:
        try:
            await send()
        except TelegramError as exc:  # blocked, deleted, muted, slow: nothing more to do
            log.info("refusal to Telegram user %d not delivered: %s", user_id, exc)
