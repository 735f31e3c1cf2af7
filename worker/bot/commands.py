"""The bot's scan commands: thin handlers that parse, call the client, and reply.

The gate (worker.bot.access) has let the sender in; every scan they start carries their
Telegram id as `user_id`, and every scan they read must carry it too.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.ext import ContextTypes

from worker import async_client, observe
from worker.bot import access, arguments, limits, replies
from worker.bot.context import latest_scans, own_scan, services
from worker.errors import MarketscanError, ServiceUnavailable
from worker.notify import bot_messages

log = logging.getLogger(__name__)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(replies.help_text())


async def scan(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/scan GAME [LEVEL] [MIN-MAX]: start a scan and reply with its progress message.

    The scan id comes from the message, so a redelivered update starts nothing new and,
    once the progress message exists, sends nothing new either.
    """
    message = update.effective_message
    assert message is not None
    request = arguments.scan_request(context.args or [])
    found = services(context)
    settings = found.settings
    owner = access.allowed_sender(update, context)
    scan_id = arguments.chat_scan_id(message.chat_id, message.message_id)
    # Before the scan exists, so that no worker starts a progress message of its own.
    fresh = await asyncio.to_thread(bot_messages.reserve, found.redis, scan_id)
    try:
        if fresh:  # a redelivered /scan's scan is counted already, and goes on
            limits.check_running_scans(await async_client.running_scans(owner), settings)
        await async_client.start(
            request.game,
            market=settings.bot_market,
            market_options=dict(settings.bot_market_options),
            level=request.level,
            min_price_cents=request.min_price_cents,
            max_price_cents=request.max_price_cents,
            user_id=owner,
            metadata={"started_by": "telegram", "chat_id": message.chat_id},
            scan_id=scan_id,
        )
    except MarketscanError:
        await asyncio.to_thread(bot_messages.release, found.redis, scan_id)
        raise
    if not fresh:
        log.info("scan %s: /scan delivered again; its message is out already", scan_id)
        return
    text = replies.started_text(scan_id, request.game, request.level)
    sent = await message.reply_text(text, reply_markup=replies.keyboard(scan_id))
    shown = await asyncio.to_thread(
        bot_messages.adopt,
        found.redis,
        scan_id,
        sent.chat_id,
        sent.message_id,
        text,
        replies.keyboard_json(scan_id),
    )
    if shown:  # the scan ended before its message was handed over: show how it ended
        await sent.edit_text(shown)


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status [SCAN]: one of the sender's scans, or their latest."""
    assert update.effective_message is not None
    words = context.args or []
    if words:
        ref = arguments.scan_ref(words, "/status [SCAN]")
        text = replies.scan_line(await own_scan(access.allowed_sender(update, context), ref))
    else:
        text = replies.scans_text(await latest_scans(access.allowed_sender(update, context)))
    await update.effective_message.reply_text(text)


async def top(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/top SCAN [N]: the scan's N best finds by profit."""
    assert update.effective_message is not None
    words = context.args or []
    ref = arguments.scan_ref(words, arguments.TOP_USAGE)
    count = arguments.top_count(words)
    checkpoint = await own_scan(access.allowed_sender(update, context), ref)
    found = await async_client.results(checkpoint.scan_id, count)
    await update.effective_message.reply_text(replies.top_text(checkpoint.scan_id, found))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A refused command gets its one-line reason; anything else is logged and apologised for."""
    error = context.error
    observe.bot_error(bad_input=isinstance(error, MarketscanError))
    if isinstance(error, ServiceUnavailable):
        text = f"⚠️ marketscan cannot do that right now: {error}"
    elif isinstance(error, MarketscanError):
        text = f"⚠️ {error}"
    else:
        log.error("update failed", exc_info=error)
        text = "⚠️ something went wrong; the operator can find it in the bot's log"
    if not isinstance(update, Update):
        return
    if update.callback_query is not None:
        await update.callback_query.answer(text[:200], show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)
