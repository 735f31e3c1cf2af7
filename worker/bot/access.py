"""Who may command the bot: the allow-list, checked before any handler sees an update.

A stranger gets one refusal line and nothing else: no scan or watch is stored, nothing is
enqueued, and the attempt is logged by ids only, never with what they wrote. An empty
allow-list refuses everyone (and says how to set it): the bot is never open by default.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from worker import observe
from worker.bot import replies
from worker.bot.context import services

log = logging.getLogger(__name__)


async def gate(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Let an allow-listed sender's update on to the commands; answer anyone else, and stop."""
    if not isinstance(update, Update):
        raise ApplicationHandlerStop
    allowed = services(context).settings.telegram_allowed_users
    user = update.effective_user
    if user is not None and user.id in allowed:
        observe.bot_update(allowed=True)
        return
    if user is None:  # a channel post or the like: nobody to answer
        raise ApplicationHandlerStop
    observe.bot_update(allowed=False)
    log.warning(
        "refused update %d from Telegram user %d: not in %s",
        update.update_id,
        user.id,
        replies.ALLOWED_USERS_VARIABLE,
    )
    refusal = replies.refusal_text(user.id, not allowed)
    if update.callback_query is not None:
        await update.callback_query.answer(refusal, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(refusal)
    raise ApplicationHandlerStop
