"""The progress message `marketscan bot` sends for a /scan, handed over to the notifier.

The bot answers /scan with the scan's progress message, under Pause/Resume/Cancel buttons;
the workers' notifier must then edit THAT message, buttons kept, instead of sending one of
its own. The handover lives in the scan's Redis hash (worker.notify.messages): the bot
reserves the scan's start before the scan exists, so no worker sends a first message, and
adopts its message once sent (chat, message id, text, buttons). A steering command holds
the message still (the final marker) while it writes the paused or cancelled text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

from worker.notify.messages import (
    CHAT_ID,
    EDIT_SLOT_POLL_SECONDS,
    FINAL,
    KEY_TTL_SECONDS,
    LAST_TEXT,
    MESSAGE_ID,
    REPLY_MARKUP,
    STARTING,
    edit_slot_key,
    state_key,
)

# One step, so a summary that sent a message of its own meanwhile is seen, not overwritten.
_ADOPT = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
  return {0, redis.call('hget', KEYS[1], ARGV[3]) or ''}
end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
           ARGV[7], ARGV[8], ARGV[9], '1')
redis.call('expire', KEYS[1], ARGV[10])
return {1, ''}
"""


def reserve(connection: redis.Redis, scan_id: uuid.UUID) -> bool:
    """Keep every worker from starting a message of its own for the scan; False when the
    scan has its message already (a redelivered /scan: nothing is to be sent again)."""
    key = state_key(scan_id)
    with connection.pipeline() as pipe:
        pipe.hsetnx(key, STARTING, "1")
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.hexists(key, MESSAGE_ID)
        has_message = pipe.execute()[-1]
    return not has_message


def release(connection: redis.Redis, scan_id: uuid.UUID) -> None:
    """Undo a reservation whose scan was refused: bad input leaves nothing behind."""
    if not connection.hexists(state_key(scan_id), MESSAGE_ID):
        connection.delete(state_key(scan_id))


def adopt(
    connection: redis.Redis,
    scan_id: uuid.UUID,
    chat_id: int,
    message_id: int,
    text: str,
    reply_markup: str,
) -> str | None:
    """Make the bot's message the one the notifier edits; None once done. If the scan got a
    message of its own meanwhile (it ended first), that message's text is returned."""
    adopted, shown = connection.eval(
        _ADOPT,
        1,
        state_key(scan_id),
        MESSAGE_ID,
        str(message_id),
        LAST_TEXT,
        text,
        CHAT_ID,
        str(chat_id),
        REPLY_MARKUP,
        reply_markup,
        STARTING,
        KEY_TTL_SECONDS,
    )
    if int(adopted):
        return None
    return shown.decode() if isinstance(shown, bytes) else str(shown)


def message_of(connection: redis.Redis, scan_id: uuid.UUID) -> tuple[int, int] | None:
    """(chat_id, message_id) of the bot's message for the scan, if it sent one."""
    chat_id, message_id = connection.hmget(state_key(scan_id), [CHAT_ID, MESSAGE_ID])
    if chat_id is None or message_id is None:
        return None
    return int(chat_id), int(message_id)


def hold(
    connection: redis.Redis,
    scan_id: uuid.UUID,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Stop progress edits of the scan's message and let one under way land first, so the
    text written next stays (a resume reopens it: worker.notify.messages.forget_scan)."""
    key = state_key(scan_id)
    with connection.pipeline() as pipe:
        pipe.hset(key, FINAL, "1")
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.execute()
    # Bounded by the slot's expiry, should its holder have died mid-call.
    while (left_ms := connection.pttl(edit_slot_key(scan_id))) > 0:
        sleep(min(left_ms / 1000, EDIT_SLOT_POLL_SECONDS))


def shown(connection: redis.Redis, scan_id: uuid.UUID, text: str) -> None:
    """Record the text the bot put on the scan's message, so no edit repeats it."""
    connection.hset(state_key(scan_id), LAST_TEXT, text)
