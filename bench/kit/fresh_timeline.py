"""A fresh watch's run read against the live listing's oracle: for each underpriced listing,
the seconds from the moment it became visible to the moment its alert reached the loopback
Bot API (or, where alerts carry no offer ids, to the commit of its find); how many of them
were alerted at all; how many alerts came twice.

Every time is Unix seconds on this machine: the oracle's `visible_at` is the fakes' wall
clock, the fakes record arrivals on time.monotonic() (shifted here by one offset taken in
the same process), and `found_at` is PostgreSQL's now() on the same host.
"""

from __future__ import annotations

import bisect
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.kit.database import Connection
from models.item_key import item_id_text_sql
from worker.testing.dmarket_live import LiveOffer
from worker.testing.dmarket_server import RecordedRequest
from worker.testing.telegram_server import RecordedCall

OFFERS_PATH = "/marketplace-api/v2/offers"
# A fresh walk asks for the newest offers first; a full scan of v2 does not order by time.
FRESH_ORDER = "createdAt"
# DMarket's offer ids, as the live listing makes them and as an alert's link ends.
OFFER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Window:
    """The listings measured: those created from `start` and visible by `end` (Unix s)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Outcome:
    """What one phase's underpriced listings met.

    `source`: "alert" (visible -> Bot API arrival) or "commit" (visible -> found_at).
    `expected`: underpriced listings in the window that some fresh walk could see (visible
    when one of its requests arrived); `unseen`: those sold before any walk came by.
    `duplicates`: deliveries beyond the first, over every offer id delivered.
    """

    source: str
    latencies_s: tuple[float, ...]
    expected: int
    covered: int
    unseen: int
    duplicates: int

    @property
    def coverage(self) -> float:
        return self.covered / self.expected if self.expected else 0.0

    def percentile(self, share: float) -> float:
        """The nearest-rank percentile of the latencies (`share` 0.5 for the median)."""
        ordered = sorted(self.latencies_s)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def fresh_walk_times(requests: Iterable[RecordedRequest], wall_offset: float) -> list[float]:
    """Unix times of the served requests of fresh walks (newest offers first), in order."""
    return sorted(
        request.received_at + wall_offset
        for request in requests
        if request.path == OFFERS_PATH
        and request.query.get("orderBy") == FRESH_ORDER
        and request.status == 200
    )


def walks_per_second(walk_times: Sequence[float], window: Window) -> float:
    """Walk requests a second within the window, first to last: counting whole polls, so
    where the window's edges cut the poll interval does not move the figure."""
    inside = [at for at in walk_times if window.start <= at < window.end]
    if len(inside) < 2 or inside[-1] == inside[0]:
        return 0.0
    return (len(inside) - 1) / (inside[-1] - inside[0])


def poll_rounds(
    walk_times: Sequence[float], window: Window, gap_s: float = 1.0
) -> list[list[float]]:
    """The walk requests of the window in bursts (requests less than `gap_s` apart): one
    burst a poll round, one request in it when the round's polls shared their walk."""
    rounds: list[list[float]] = []
    for at in (at for at in walk_times if window.start <= at < window.end):
        if not rounds or at - rounds[-1][-1] >= gap_s:
            rounds.append([])
        rounds[-1].append(at)
    return rounds


def alert_arrivals(
    calls: Iterable[RecordedCall], chat_id: int, wall_offset: float
) -> dict[str, list[float]]:
    """Offer id -> the Unix times of every message delivered to `chat_id` that named it."""
    arrivals: dict[str, list[float]] = {}
    for call in calls:
        if call.method != "sendMessage" or call.status != 200:
            continue
        if call.body.get("chat_id") != chat_id:
            continue
        for offer_id in set(OFFER_ID.findall(call.text)):
            arrivals.setdefault(offer_id, []).append(call.received_at + wall_offset)
    return arrivals


def commit_arrivals(
    connection: Connection, scan_ids: Sequence[uuid.UUID]
) -> dict[str, list[float]]:
    """Item id -> the Unix times of the commits of its finds in these scans."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {item_id_text_sql('item_id')}, extract(epoch FROM found_at)::float8"
            " FROM scan_opportunities"
            " WHERE scan_id = ANY(%s::uuid[])",
            ([str(scan_id) for scan_id in scan_ids],),
        )
        rows = cursor.fetchall()
    arrivals: dict[str, list[float]] = {}
    for item_id, at in rows:
        arrivals.setdefault(str(item_id), []).append(float(at))
    return arrivals


def outcome(
    listings: Sequence[LiveOffer],
    window: Window,
    walk_times: Sequence[float],
    arrivals: dict[str, list[float]],
    source: str,
) -> Outcome:
    """Latency, coverage and duplicates of the underpriced listings of `window`."""
    measured = [
        offer
        for offer in listings
        if offer.underpriced and offer.created_at >= window.start and offer.visible_at <= window.end
    ]
    seen = [offer for offer in measured if _seen_by_a_walk(offer, walk_times)]
    latencies = tuple(
        min(arrivals[offer.offer_id]) - offer.visible_at
        for offer in seen
        if offer.offer_id in arrivals
    )
    deliveries = Counter({offer_id: len(times) for offer_id, times in arrivals.items()})
    return Outcome(
        source=source,
        latencies_s=latencies,
        expected=len(seen),
        covered=len(latencies),
        unseen=len(measured) - len(seen),
        duplicates=sum(count - 1 for count in deliveries.values()),
    )


def _seen_by_a_walk(offer: LiveOffer, walk_times: Sequence[float]) -> bool:
    """Whether a fresh walk's request arrived while the offer was listed."""
    first = bisect.bisect_left(walk_times, offer.visible_at)
    if first == len(walk_times):
        return False
    return offer.sold_at is None or walk_times[first] < offer.sold_at
