"""/watch, /watches, /unwatch: a sender's recurring scans, through the client's watch calls.

A watch's id comes from the /watch message (as a /scan's scan id does), so a redelivered
update adds nothing new: the client's add is idempotent on it (invariant 9).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from telegram import Update
from telegram.ext import ContextTypes

from worker import async_client
from worker.bot import access, arguments, limits, replies
from worker.bot.context import services
from worker.domain.watch import Watch, parse_every, state_text
from worker.errors import InvalidInput, WatchNotFound

UNWATCH_USAGE = "/unwatch WATCH"


async def watch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/watch GAME LEVEL EVERY [MIN-MAX]: scan again every EVERY, finds alerted here."""
    message = update.effective_message
    assert message is not None
    request, every, fresh = arguments.watch_request(context.args or [])
    settings = services(context).settings
    owner = access.allowed_sender(update, context)
    watch_id = arguments.chat_watch_id(message.chat_id, message.message_id)
    owned = await async_client.list_watches(owner)
    if watch_id not in {w.watch_id for w in owned}:  # a redelivered /watch is counted already
        limits.check_watches(len(owned), settings)
    added = await async_client.add_watch(
        request.game,
        owner_id=owner,
        chat_id=message.chat_id,
        every_seconds=parse_every(every, fresh=fresh),
        level=request.level,
        min_price_cents=request.min_price_cents,
        max_price_cents=request.max_price_cents,
        market=settings.bot_market,
        market_options=dict(settings.bot_market_options),
        watch_id=watch_id,
        fresh=fresh,
    )
    await message.reply_text(
        f"👁 Watch {added.watch_id.hex[:8]} added: {watch_line(added)}\n"
        f"Its finds are alerted here. /unwatch {added.watch_id.hex[:8]} removes it."
    )


async def watches(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/watches: the sender's watches."""
    assert update.effective_message is not None
    owned = await async_client.list_watches(access.allowed_sender(update, context))
    for text in replies.in_messages(watches_text(owned)):
        await update.effective_message.reply_text(text)


async def unwatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unwatch WATCH: remove one of the sender's watches (its scans are kept)."""
    assert update.effective_message is not None
    owner = access.allowed_sender(update, context)
    ref = arguments.id_ref(context.args or [], "WATCH", f"{UNWATCH_USAGE}; /watches lists them")
    matching = await async_client.list_watches(owner, id_prefix=ref.id_prefix)
    if not matching:
        raise WatchNotFound(f"you have no watch {ref.scan_id or ref.prefix}")
    if len(matching) > 1:
        raise InvalidInput(f"WATCH {ref.prefix} names {len(matching)} of your watches")
    await async_client.remove_watch(matching[0].watch_id, owner)
    await update.effective_message.reply_text(f"Watch {matching[0].watch_id.hex[:8]} removed.")


def watch_line(watch: Watch) -> str:
    params = watch.params
    prices = ""
    if params.min_price_cents is not None or params.max_price_cents is not None:
        low = (params.min_price_cents or 0) / 100
        high = "" if params.max_price_cents is None else f"{params.max_price_cents / 100:.2f}"
        prices = f", ${low:.2f}-{high}"
    if params.fresh:
        return (
            f"{params.game} {params.level}{prices}, fresh listings every "
            f"{every_text(watch.every_seconds)}, {state_text(watch, 'following')}"
        )
    next_due = watch.next_due_at.astimezone(UTC)
    state = state_text(watch, f"next {next_due:%H:%M:%S} UTC")
    return (
        f"{params.game} {params.level}{prices} every {every_text(watch.every_seconds)}, "
        f"{watch.overlap}, {state}, {watch.skipped_slots} skipped"
    )


def watches_text(owned: Sequence[Watch]) -> str:
    if not owned:
        return "You have no watches: add one with /watch csgo standard 15m"
    return "Your watches:\n" + "\n".join(f"{w.watch_id.hex[:8]} {watch_line(w)}" for w in owned)


def every_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
