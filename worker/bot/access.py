"""Who may command the bot: the allow-list, checked before any handler sees an update, and
again where a command acts on someone's behalf.

A stranger's update stops at the gate whatever becomes of its refusal: no scan or watch is
stored, nothing is enqueued, and the attempt is logged by ids only, never with what they
wrote. Their commands and button presses get one refusal line per window
(worker.bot.refusals), sent beside the loop; anything else they send gets nothing. An empty
allow-list refuses everyone (and says how to set it): the bot is never open by default.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes, filters

from worker import observe
from worker.bot import replies
from worker.bot.context import services

log = logging.getLogger(__name__)


async def gate(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Let an allow-listed sender's update on to the commands; stop anyone else's."""
    if not isinstance(update, Update):
        raise ApplicationHandlerStop
    allowed = services(context).settings.telegram_allowed_users
    user = update.effective_user
    if user is not None and user.id in allowed:
        observe.bot_update(allowed=True)
        return
    try:
        if user is not None:  # None: a channel post or the like, nobody to answer
            _refuse(update, context, user.id)
    finally:
        # The update goes no further, whatever the refusal did: a handler's exception
        # would otherwise be handed to the error handler and the commands after it.
        raise ApplicationHandlerStop


def allowed_sender(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """The sender's Telegram id, if the allow-list holds it; otherwise the update stops here.

    The gate has stopped strangers already; this second look sits where a command acts on
    someone's behalf, so that no change to the gate's path (a handler group, a library
    upgrade) can let a stranger's command run.
    """
    user = update.effective_user
    if user is None or user.id not in services(context).settings.telegram_allowed_users:
        log.error("update %d reached a command past the gate: stopped", update.update_id)
        raise ApplicationHandlerStop
    return user.id


def _refuse(update: Update, context: ContextTypes.DEFAULT_TYPE, user_id: int) -> None:
    observe.bot_update(allowed=False)
    log.warning(
        "refused update %d from Telegram user %d: not in %s",
        update.update_id,
        user_id,
        replies.ALLOWED_USERS_VARIABLE,
    )
    query = update.callback_query
    if query is None and not filters.COMMAND.check_update(update):
        return  # a stranger's chatter in a group, an edit, a photo: not worth a reply
    found = services(context)
    if not found.refusals.due(user_id):
        return
    refusal = replies.refusal_text(user_id, not found.settings.telegram_allowed_users)
    if query is not None:
        found.refusals.to_press(user_id, query.id, refusal)
    elif update.effective_chat is not None:
        found.refusals.to_message(user_id, update.effective_chat.id, refusal)
