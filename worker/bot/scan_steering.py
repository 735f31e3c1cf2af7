"""/pause, /resume, /cancel and the buttons under a scan's message: one way to steer a scan.

A pause or a cancel first holds the scan's message still (no worker's progress edit may
land after it), then steers through the client, then writes the new state on the message.
Cancelled, a message loses its buttons: there is nothing left to steer. A resume only
steers: the client reopens the message to the workers' progress, which shows it.
"""

from __future__ import annotations

import asyncio
import uuid

from telegram import Bot, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from worker import async_client
from worker.bot import access, arguments, replies
from worker.bot.context import BotServices, own_scan, services
from worker.domain.checkpoint import Checkpoint
from worker.errors import InvalidInput
from worker.notify import bot_messages

STEERS = {
    "pause": async_client.pause,
    "resume": async_client.resume,
    "cancel": async_client.cancel,
}
NOT_MODIFIED = "message is not modified"


async def steer_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/pause SCAN, /resume SCAN, /cancel SCAN."""
    message = update.effective_message
    assert message is not None and message.text is not None
    action = message.text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
    ref = arguments.scan_ref(context.args or [], f"/{action} SCAN")
    checkpoint = await own_scan(access.allowed_sender(update, context), ref)
    steered = await steer(context.bot, services(context), action, checkpoint.scan_id)
    await message.reply_text(replies.steered_text(action, steered))


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press of Pause, Resume or Cancel under a scan's message."""
    query = update.callback_query
    assert query is not None
    action, _, raw_scan_id = (query.data or "").partition(":")
    if action not in STEERS:
        raise InvalidInput(f"this button is not one of {', '.join(STEERS)}")
    ref = arguments.scan_ref([raw_scan_id], "a button")
    checkpoint = await own_scan(access.allowed_sender(update, context), ref)
    steered = await steer(context.bot, services(context), action, checkpoint.scan_id)
    await query.answer(f"Scan {replies.short(steered.scan_id)} {replies.STEERED[action]}")


async def steer(bot: Bot, found: BotServices, action: str, scan_id: uuid.UUID) -> Checkpoint:
    """Steer the scan and show its new state on its message, if the bot sent it one."""
    if action == "resume":
        # The message is left to the workers: their next progress edit shows the scan
        # running, and a text of ours could land after a summary that comes quickly.
        return await STEERS[action](scan_id)
    await asyncio.to_thread(bot_messages.hold, found.redis, scan_id)
    steered = await STEERS[action](scan_id)
    where = await asyncio.to_thread(bot_messages.message_of, found.redis, scan_id)
    if where is None:
        return steered
    text = replies.steered_text(action, steered)
    markup = None if action == "cancel" else replies.keyboard(scan_id)  # a pause keeps them
    try:
        await bot.edit_message_text(
            text, chat_id=where[0], message_id=where[1], reply_markup=markup
        )
    except BadRequest as exc:
        if NOT_MODIFIED not in str(exc):
            raise
    await asyncio.to_thread(bot_messages.shown, found.redis, scan_id, text)
    return steered
