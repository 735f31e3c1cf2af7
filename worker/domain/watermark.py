"""A fresh watch's watermark: how far down the market's newest listings it has judged.

A fresh watch walks DMarket's offers newest first (`orderBy=createdAt&orderDir=desc`) and
stops at its watermark. `createdAt` has whole seconds and many listings share one, so the
watermark is a second *and* the ids judged near it: `seen` holds every listing judged whose
second lies within the lookback window below `at`. A listing is new when its second is in
that window (or above) and its id is not in `seen`; so a listing that shares a second with
the watermark, or that became visible a few seconds after its `createdAt` (below a listing
already judged), is judged once, and one seen before is never judged again.

The watermark is the scan's checkpoint (the row's `cursor`): a poll commits it with its
finds in one transaction (invariant 12), so a poll that dies is redone from the old one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from worker.errors import InvalidInput

WATERMARK_VERSION = 1


@dataclass(frozen=True)
class Listed:
    """One listing as the walk saw it: its id and the second of its `createdAt`."""

    item_id: str
    second: int


@dataclass(frozen=True)
class Advance:
    """What one walk judges, and the watermark it leaves."""

    new_ids: tuple[str, ...]
    watermark: Watermark
    # The walk stopped at its page bound above the watermark (an outage left a gap).
    gap: bool


@dataclass(frozen=True)
class Watermark:
    """The newest second judged, the ids judged near it, and the walk it came from.

    `floor`: the second the watch began; nothing created before it is judged.
    `as_of`: when the walk that left this watermark read the market (Unix seconds): the
    watch's lag is how long ago that was.
    `gaps` and `gap_seconds`: walks that found the watermark deeper than their page bound
    and resumed from the newest listing, and the seconds of listings they walked past.
    """

    at: int
    floor: int
    as_of: float
    seen: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    gap_seconds: int = 0

    @classmethod
    def start(cls, since: datetime) -> Watermark:
        """The watermark of a watch that began at `since`: listings from that second on."""
        second = math.floor(since.timestamp())
        return cls(at=second, floor=second, as_of=since.timestamp())

    def lowest_new_second(self, lookback_seconds: float) -> int:
        """The oldest second a walk must reach: the lookback window below `at`."""
        return max(self.floor, self.at - math.ceil(lookback_seconds))

    def advance(
        self,
        walked: Sequence[Listed],
        *,
        reached: bool,
        lookback_seconds: float,
        as_of: float,
    ) -> Advance:
        """Judge what `walked` (newest first) holds that is new; the watermark after it.

        `reached`: the walk went down to `lowest_new_second` (or to the listing's end). If
        not, it stopped at its page bound: what it walked is judged, the rest of the gap is
        walked past and counted, and the watch goes on from the newest listing.
        """
        low = self.lowest_new_second(lookback_seconds)
        if not reached:
            low = self.floor
        fresh: dict[str, int] = {}
        for listed in walked:
            if listed.second >= low and listed.item_id not in self.seen:
                fresh.setdefault(listed.item_id, listed.second)
        at = max([self.at, *(listed.second for listed in walked)])
        keep_from = at - math.ceil(lookback_seconds)
        seen = {
            item_id: second
            for item_id, second in (*self.seen.items(), *fresh.items())
            if second >= keep_from
        }
        gaps, gap_seconds = self.gaps, self.gap_seconds
        if not reached:
            bottom = min((listed.second for listed in walked), default=at)
            gaps += 1
            gap_seconds += max(0, bottom - self.lowest_new_second(lookback_seconds))
        watermark = replace(self, at=at, as_of=as_of, seen=seen, gaps=gaps, gap_seconds=gap_seconds)
        return Advance(tuple(fresh), watermark, gap=not reached)

    def lag_seconds(self, now: float) -> float:
        """How long ago the market was last read up to its newest listing."""
        return max(0.0, now - self.as_of)

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "v": WATERMARK_VERSION,
                "at": self.at,
                "floor": self.floor,
                "as_of": round(self.as_of, 3),
                "seen": self.seen,
                "gaps": self.gaps,
                "gap_seconds": self.gap_seconds,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_cursor(cls, cursor: str) -> Watermark:
        """The watermark a poll stored; InvalidInput naming what is wrong with it."""
        try:
            data = json.loads(cursor)
        except ValueError:
            raise InvalidInput("watermark: not JSON") from None
        if not isinstance(data, dict) or data.get("v") != WATERMARK_VERSION:
            raise InvalidInput(f"watermark: must be an object of version {WATERMARK_VERSION}")
        seen = data.get("seen")
        if not isinstance(seen, dict) or not all(
            isinstance(second, int) and not isinstance(second, bool) for second in seen.values()
        ):
            raise InvalidInput("watermark.seen: must map offer ids to whole seconds")
        numbers = {name: data.get(name) for name in ("at", "floor", "gaps", "gap_seconds")}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"watermark.{name}: must be a whole number, got {value!r}")
        as_of = data.get("as_of")
        if isinstance(as_of, bool) or not isinstance(as_of, int | float):
            raise InvalidInput(f"watermark.as_of: must be a number, got {as_of!r}")
        return cls(
            at=data["at"],
            floor=data["floor"],
            as_of=float(as_of),
            seen=dict(seen),
            gaps=data["gaps"],
            gap_seconds=data["gap_seconds"],
        )


def second_of(created_at: object) -> int:
    """The whole second of an offer's `createdAt`: RFC 3339 text, or Unix seconds."""
    if isinstance(created_at, int) and not isinstance(created_at, bool) and created_at >= 0:
        return created_at
    if isinstance(created_at, str):
        try:
            moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return math.floor(moment.timestamp())
    raise InvalidInput(f"createdAt: must be an RFC 3339 time or Unix seconds, got {created_at!r}")


def follow_of(cursor: str | None, polls: int, now: float) -> dict[str, object]:
    """What an operator reads of a fresh scan: its polls, its watermark, how far it lags
    behind the market (seconds since a poll last read the newest listings), its gaps."""
    if cursor is None:
        return {"polls": polls, "watermark_at": None, "lag_seconds": None, "gaps": 0}
    watermark = Watermark.from_cursor(cursor)
    return {
        "polls": polls,
        "watermark_at": datetime.fromtimestamp(watermark.at, UTC).isoformat(),
        "lag_seconds": round(watermark.lag_seconds(now), 1),
        "gaps": watermark.gaps,
        "gap_seconds": watermark.gap_seconds,
    }
