"""`marketscan bot`: long polling that confirms an update only after its handler ran.

python-telegram-bot's own Updater confirms a batch (the next getUpdates' offset) as soon
as it is queued, before any handler has run: a bot killed then loses those commands.
Here each update is handled to its end, one at a time, before the offset moves past it,
so a killed bot is handed its unfinished updates again; the handlers are idempotent on
what the update carries (invariant 9), so a redelivered /scan starts nothing twice.

The first SIGTERM or SIGINT stops the bot after the update in hand (nothing half-sent)
and confirms the offset with one last getUpdates; a second one stops it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut

from worker import broker_redis, observe
from worker.bot.application import BotApplication, bot_commands, build
from worker.bot.context import services_in
from worker.errors import ConfigError, MarketscanError, ServiceUnavailable
from worker.metrics import events as metric_events
from worker.metrics.exporter import process_store
from worker.redaction import redacted
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# After a failed getUpdates (Telegram or the network down), wait this long, doubling to MAX.
RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
READY_LOG = "marketscan bot @%s is polling for %d allowed users"


def main() -> None:
    """The process: logging, settings, the loop until a signal; a refusal is one line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Their request lines carry the bot token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        asyncio.run(run(get_settings()))
    except MarketscanError as exc:
        print(f"error: {redacted(str(exc))}", file=sys.stderr)
        sys.exit(1 if isinstance(exc, ServiceUnavailable) else 2)


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    connection = broker_redis.new_client(settings.broker_url, settings.sentinel_master)
    # The bot notes what its gate and commands did; a thread flushes the notes to the
    # fleet's store every second, as a worker's does, and once more on the way out.
    observe.enable(settings.metrics_enabled)
    notes = process_store(settings.broker_url, settings.sentinel_master)
    if settings.metrics_enabled:
        metric_events.keep_flushing(notes)
    try:
        await serve(build(settings, connection), settings, stop)
    finally:
        if settings.metrics_enabled:
            metric_events.flush(notes)
        connection.close()


async def serve(application: BotApplication, settings: Settings, stop: asyncio.Event) -> None:
    """Poll and handle updates until `stop` is set; the offset is confirmed on the way out."""
    await _initialize(application, settings)
    bot = application.bot
    offset = 0
    try:
        await bot.delete_webhook()  # long polling and a webhook exclude each other
        await bot.set_my_commands(bot_commands())
        if not settings.telegram_allowed_users:
            log.warning("MARKETSCAN_TELEGRAM_ALLOWED_USERS is empty: the bot refuses everyone")
        log.info(READY_LOG, bot.username, len(settings.telegram_allowed_users))
        retry_seconds = RETRY_SECONDS
        while not stop.is_set():
            try:
                updates = await _poll(bot, offset, settings.telegram_poll_timeout_seconds, stop)
            # Conflict: another poller on this token (a deploy's old bot, say) for a while.
            except (RetryAfter, TimedOut, NetworkError, Conflict) as exc:
                wait = _retry_after(exc, retry_seconds)
                log.warning("getUpdates failed (%s); polling again in %.0f s", exc, wait)
                await _sleep_unless(stop, wait)
                retry_seconds = min(retry_seconds * 2, MAX_RETRY_SECONDS)
                continue
            retry_seconds = RETRY_SECONDS
            for update in updates or ():
                await application.process_update(update)
                offset = max(offset, update.update_id + 1)
                if stop.is_set():
                    break
    finally:
        if offset:
            await _confirm(application, offset)
        await services_in(application.bot_data).refusals.close()
        await application.shutdown()
        log.info("marketscan bot stopped; updates confirmed up to offset %d", offset)


async def _initialize(application: BotApplication, settings: Settings) -> None:
    """getMe: a wrong token or an unreachable Bot API stops the bot at start-up, named."""
    try:
        await application.initialize()
    except InvalidToken:
        raise ConfigError(
            f"the Bot API at {settings.telegram_api_url} refused MARKETSCAN_TELEGRAM_BOT_TOKEN;"
            " check it with @BotFather"
        ) from None
    except NetworkError as exc:
        raise ServiceUnavailable(
            f"the Bot API at {settings.telegram_api_url} is unreachable: {exc}"
        ) from None


async def _poll(
    bot: Bot, offset: int, timeout_seconds: int, stop: asyncio.Event
) -> tuple[Update, ...] | None:
    """One long poll, given up when `stop` is set (its updates stay unconfirmed: they are
    handed out again to the next bot)."""
    poll = asyncio.ensure_future(
        bot.get_updates(offset=offset, timeout=timeout_seconds, allowed_updates=ALLOWED_UPDATES)
    )
    stopped = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if poll in done:
        return poll.result()
    poll.cancel()
    with contextlib.suppress(asyncio.CancelledError, NetworkError):
        await poll
    return None


async def _confirm(application: BotApplication, offset: int) -> None:
    try:
        await application.bot.get_updates(offset=offset, timeout=0)
    except NetworkError as exc:  # the updates come again next time; handlers are idempotent
        log.warning("offset %d not confirmed on the way out: %s", offset, exc)


def _retry_after(exc: Exception, default_seconds: float) -> float:
    if isinstance(exc, RetryAfter):  # Telegram's 429 says how long to wait
        wait = exc.retry_after
        return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
    return default_seconds


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _stop_on_signals(stop: asyncio.Event) -> None:
    """First signal: finish the update in hand, then stop. Second: stop now (rq's way)."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def first(signum: int) -> None:
        log.info("signal %d: stopping after the update in hand", signum)
        stop.set()
        for again in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(again, second, again)

    def second(signum: int) -> None:
        log.warning("signal %d again: stopping now", signum)
        if main_task is not None:
            main_task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, first, signum)
