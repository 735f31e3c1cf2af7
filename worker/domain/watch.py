"""A watch: a scan run again every interval for one owner and chat, and the rules of its slots.

A watch's passes fall on slots, `next_due_at` plus whole intervals. Each slot's pass has a
scan id derived from the watch and the slot alone (invariant 9), so whoever fires the slot,
however often, starts the same scan.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput

OVERLAP_SKIP = "skip"
OVERLAP_BUFFER_ONE = "buffer_one"
OVERLAP_POLICIES = (OVERLAP_SKIP, OVERLAP_BUFFER_ONE)
# Below ten seconds a pass of any real scan would always overlap the next; above a week a
# watch is a calendar entry, not a watch.
MIN_EVERY_SECONDS = 10
# A fresh watch polls only the newest listings, a request or two a poll, so it may poll
# every second (its polls share one walk of the market: worker.markets.fresh).
MIN_FRESH_EVERY_SECONDS = 1
MAX_EVERY_SECONDS = 7 * 24 * 3600
EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EVERY_FORMS = "a number with a unit s, m, h or d, e.g. 90s, 15m, 1h"
_EVERY_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_every(value: object, *, fresh: bool = False) -> int:
    """Seconds from EVERY as a user types it (`90s`, `15m`, `1h`, `1d`), bounds checked."""
    match = _EVERY_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(f"EVERY must be {EVERY_FORMS}, got {value!r}")
    seconds = int(match.group(1)) * EVERY_UNITS[match.group(2)]
    return every_seconds_of(seconds, name="EVERY", fresh=fresh)


def every_seconds_of(value: object, name: str = "every_seconds", *, fresh: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number of seconds, got {value!r}")
    if not MIN_FRESH_EVERY_SECONDS <= value <= MAX_EVERY_SECONDS:
        raise InvalidInput(
            f"{name} must be from {MIN_FRESH_EVERY_SECONDS}s (with --fresh; "
            f"{MIN_EVERY_SECONDS}s without) to {MAX_EVERY_SECONDS // 86400}d, got {value} seconds"
        )
    if value < MIN_EVERY_SECONDS and not fresh:
        raise InvalidInput(
            f"{name} must be at least {MIN_EVERY_SECONDS}s without --fresh (a full pass "
            f"would always overlap the next; only a fresh watch polls from "
            f"{MIN_FRESH_EVERY_SECONDS}s), got {value} seconds"
        )
    return value


def overlap_of(value: object) -> str:
    if value not in OVERLAP_POLICIES:
        raise InvalidInput(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {value!r}")
    assert isinstance(value, str)
    return value


def chat_id_of(value: object) -> int:
    # Telegram chat ids are signed 64-bit (groups are negative).
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**63 - 1:
        raise InvalidInput(f"chat_id must be a 64-bit integer, got {value!r}")
    return value


def watch_id_of(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidInput(f"watch_id must be a UUID, got {value!r}")


def pass_scan_id(watch_id: uuid.UUID, slot_at: datetime) -> uuid.UUID:
    """The scan id of the watch's pass for the slot: the same for every beat that fires it."""
    return uuid.uuid5(watch_id, slot_at.astimezone(UTC).isoformat())


def pass_params(watch: Watch, slot_at: datetime) -> ScanParams:
    """The params of the pass for `slot_at`: the watch's, labelled with watch and slot. A
    fresh watch's one pass follows the market from its slot, the moment the watch began."""
    slot = slot_at.astimezone(UTC).isoformat()
    metadata = {**watch.params.metadata, "watch_id": str(watch.watch_id), "watch_slot": slot}
    fields: dict[str, object] = {**watch.params.to_json(), "metadata": metadata}
    if watch.params.fresh:
        fields.update(fresh_since=slot, poll_every_seconds=watch.every_seconds)
    return ScanParams.from_json(fields)


# A fresh watch has one pass, its long-lived scan: once it started, its next slot never comes.
FRESH_NEVER_DUE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Watch:
    """A watch as its owner sees it; params are the request (fee and levels frozen per pass)."""

    watch_id: uuid.UUID
    owner_id: int
    chat_id: int
    params: ScanParams
    every_seconds: int
    overlap: str
    paused: bool
    next_due_at: datetime
    buffered_slot_at: datetime | None
    last_scan_id: uuid.UUID | None
    last_slot_at: datetime | None
    skipped_slots: int
    missed_slots: int
    created_at: datetime
    updated_at: datetime
    # Why it starts nothing, when that is not its owner's own pause.
    paused_reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "watch_id": str(self.watch_id),
            "owner_id": self.owner_id,
            "chat_id": self.chat_id,
            "game": self.params.game,
            "market": self.params.market,
            "level": self.params.level,
            "min_price_cents": self.params.min_price_cents,
            "max_price_cents": self.params.max_price_cents,
            "every_seconds": self.every_seconds,
            "fresh": self.params.fresh,
            "overlap": self.overlap,
            "paused": self.paused,
            "paused_reason": self.paused_reason,
            "next_due_at": self.next_due_at.isoformat(),
            "last_scan_id": None if self.last_scan_id is None else str(self.last_scan_id),
            "skipped_slots": self.skipped_slots,
            "missed_slots": self.missed_slots,
        }


# A watch's params.metadata key: its passes' progress messages are wanted in the owner's
# private chat (they are not by default: the watch's finds are alerted to its chat anyway).
PROGRESS_MESSAGES = "progress_messages"


def tells_its_user(params: Mapping[str, Any]) -> bool:
    """Whether a scan's progress goes to its user: not for a watch's pass, unless asked,
    and never for a fresh watch's (its polls never end; its finds are its news)."""
    if params.get("fresh") is True:
        return False
    metadata = params.get("metadata")
    if not isinstance(metadata, Mapping) or "watch_id" not in metadata:
        return True
    return metadata.get(PROGRESS_MESSAGES) is True


# Why the watch clock starts no pass of a watch whose owner was taken off the allow-list.
OWNER_NOT_ALLOWED = "its owner is not on MARKETSCAN_TELEGRAM_ALLOWED_USERS"


def as_clocked(watch: Watch, allowed_owners: frozenset[int]) -> Watch:
    """The watch as the clock treats it: paused, saying why, while a set allow-list lacks
    its owner (worker.schedules.firing starts nothing for it)."""
    if not allowed_owners or watch.owner_id in allowed_owners or watch.paused:
        return watch
    return replace(watch, paused=True, paused_reason=OWNER_NOT_ALLOWED)


def state_text(watch: Watch, running: str) -> str:
    """`running` while it runs; "paused", and why when it is not its owner's pause."""
    if not watch.paused:
        return running
    return f"paused: {watch.paused_reason}" if watch.paused_reason else "paused"


@dataclass(frozen=True)
class SlotPlan:
    """What a due watch does now: the slot to run (None: too old) and where it goes next."""

    slot_at: datetime | None
    missed: int
    next_due_at: datetime


def plan_slot(
    next_due_at: datetime, now: datetime, every_seconds: int, catchup_seconds: float
) -> SlotPlan | None:
    """The newest slot due by `now`, or None if nothing is due yet.

    Slots before the newest are missed (an outage, a beat that was down): never replayed.
    The newest itself runs only if it is within the catch-up window.
    """
    if now < next_due_at:
        return None
    every = timedelta(seconds=every_seconds)
    behind = (now - next_due_at) // every
    newest = next_due_at + behind * every
    if (now - newest).total_seconds() > catchup_seconds:
        return SlotPlan(None, behind + 1, newest + every)
    return SlotPlan(newest, behind, newest + every)
