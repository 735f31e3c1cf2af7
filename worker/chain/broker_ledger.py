"""The broker's ledger of queued pages: one marker in Redis beside each page message.

A page that waits in the queue is alive however long it waits (DESIGN invariant 8); only a
message the broker lost, or one a worker took and died with, needs recovery. Redis cannot
be asked cheaply whether one message among thousands is still queued, so each page's
marker, in the same Redis as the messages, tells where its message is:

    pending <fence>          written just before the message is published
    sent <fence>             the publish returned
    taken <fence> <host>     worker <host> received the message

Whatever loses the message (a FLUSHALL, a restart without persistence) loses the marker
with it, and a snapshot that kept the marker kept the message too. A marker left `pending`
means the publisher died before its message was out (or with it, which the fence makes
harmless). A message a worker took and never started stays in the broker's unacked set for
the whole visibility timeout, but its marker names the worker that must have died. A
worker may receive the message before its publisher writes `sent`: each step is a
compare-and-set from the steps before it, so the order never matters, and a stale copy of
an old message (another fence) never touches the live page's marker.

One window is left: between the moment a worker pops the message and the moment it
marks it taken (a few hundred microseconds), the marker still says `sent`. For a page
queued past the grace, recovery also looks in the broker's unacked set, which holds only
the messages workers are running, to find such a message held by nobody alive: one popped
longer than the grace ago and still not marked. A message popped within the grace may be
in the hands of a live worker about to mark it, and is left alone.

A fence is `<lease_token>:<page_seq>:<page_offset>`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis

from worker import broker_redis, redis_keys
from worker.domain.page_message import PAGE_TASK, PageMessage
from worker.settings import get_settings

# A marker outlives any sane queue wait; a page queued longer than this is republished
# once, and the fence drops the old message if it ever runs.
MARKER_TTL_SECONDS = 7 * 24 * 3600

# Where kombu's Redis transport keeps the messages workers received and have not acked
# (its `unacked_key` transport option, left at its default): {delivery tag: [message, ...]},
# and when each was popped, by the popping host's clock (`unacked_index_key`).
KOMBU_UNACKED_KEY = "unacked"
KOMBU_UNACKED_INDEX_KEY = "unacked_index"

# SET KEYS[1] to ARGV[1] if its value is one of ARGV[2:]; the TTL is kept.
_ADVANCE = """
local current = redis.call('GET', KEYS[1])
for i = 2, #ARGV do
    if current == ARGV[i] then
        return redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
    end
end
return false
"""


class State(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    TAKEN = "taken"
    LOST = "lost"


@dataclass(frozen=True)
class Marker:
    """Where the broker says a page message is; `hostname` is set when it was taken."""

    state: State
    hostname: str | None = None


def connection() -> redis.Redis:
    """This process's client of the broker's Redis (plain or behind Sentinel)."""
    settings = get_settings()
    return broker_redis.shared(settings.broker_url, settings.sentinel_master)


def _key(message: PageMessage) -> str:
    return f"{redis_keys.LEDGER_PREFIX}{message.scan_id}"


def fence_of(message: PageMessage) -> str:
    return f"{message.lease_token}:{message.page_seq}:{message.page_offset}"


def publishing(message: PageMessage) -> None:
    """Note that `message` is about to be published (call just before publishing it)."""
    connection().set(_key(message), f"pending {fence_of(message)}", ex=MARKER_TTL_SECONDS)


def sent(message: PageMessage) -> None:
    """Note that the publish of `message` returned (unless a worker took it already)."""
    fence = fence_of(message)
    connection().eval(_ADVANCE, 1, _key(message), f"sent {fence}", f"pending {fence}")


def taken(message: PageMessage, hostname: str) -> None:
    """Note that worker `hostname` received `message` (call as it arrives)."""
    fence = fence_of(message)
    connection().eval(
        _ADVANCE, 1, _key(message), f"taken {fence} {hostname}", f"pending {fence}", f"sent {fence}"
    )


def markers(messages: Sequence[PageMessage]) -> list[Marker]:
    """Where the broker says each of `messages` (pages the database says are queued) is."""
    if not messages:
        return []
    values = connection().mget([_key(message) for message in messages])
    return [_marker(message, value) for message, value in zip(messages, values, strict=True)]


def _marker(message: PageMessage, value: bytes | str | None) -> Marker:
    text = value.decode() if isinstance(value, bytes) else value or ""
    word, _, rest = text.partition(" ")
    fence, _, hostname = rest.partition(" ")
    if fence != fence_of(message) or word not in (State.PENDING, State.SENT, State.TAKEN):
        return Marker(State.LOST)
    state = State(word)
    return Marker(state, hostname if state is State.TAKEN else None)


def received_fences(popped_before: float) -> set[str]:
    """The fences of the page messages that workers received before `popped_before` (a
    Unix time) and have not acked yet."""
    client = connection()
    tags = cast(list[bytes], client.zrangebyscore(KOMBU_UNACKED_INDEX_KEY, "-inf", popped_before))
    if not tags:
        return set()
    fences = set()
    for raw in client.hmget(KOMBU_UNACKED_KEY, tags):
        fence = None if raw is None else _fence_in_unacked(raw)
        if fence is not None:
            fences.add(fence)
    return fences


def _fence_in_unacked(raw: bytes | str) -> str | None:
    try:
        return fence_in_message(json.loads(raw)[0])
    except (ValueError, LookupError, TypeError):
        return None


def fence_in_message(payload: object) -> str | None:
    """The fence of a kombu message (the JSON a Redis queue list holds), if it is a page's."""
    try:
        assert isinstance(payload, dict)
        if payload["headers"]["task"] != PAGE_TASK:
            return None
        body = payload["body"]
        if payload["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return fence_of(PageMessage.from_args(*args))
    except (AssertionError, ValueError, LookupError, TypeError):
        return None  # not a page message, or not one of ours: nothing to match
