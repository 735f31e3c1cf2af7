"""A live DMarket listing for the loopback fake: offers listed at a steady rate from a
seeded random source, some seen late, some sold, some repriced, and the truth of them all
for a test to check a watch against.

Nothing runs in the background: each request (or oracle call) generates the listings up to
the clock's now, and every listing is a pure function of the seed, its index and `start`,
so two listings with one seed and start hold the same offers however often they are read.
The clock is injectable; a test moves a `ManualClock` instead of sleeping.

Prices are set against each title's fixed best buy order: the underpriced share at about
60 % of it, the rest at 110-130 %, so a judge with a 7 % fee and a few percent of minimum
profit finds exactly the underpriced ones. A reprice lowers a price by 5-10 %, which never
moves a listing across that line.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.testing.dmarket_replies import dmarket_item
from worker.testing.dmarket_v2_replies import offer_of

# How far over or under its title's best bid a listing is priced (fractions of the bid).
UNDERPRICED_SHARE_OF_BID = (0.55, 0.65)
OVERPRICED_SHARE_OF_BID = (1.10, 1.30)
# A reprice multiplies the price by this much: a markdown that keeps the listing's side.
REPRICE_FACTOR = (0.90, 0.95)
# A sale or a reprice comes this many seconds after the listing became visible.
CHANGE_AFTER_VISIBLE_SECONDS = (1.0, 30.0)
# Each title's best buy order, in cents, and how many orders stand at it.
BEST_BID_CENTS = (200, 20_000)
BEST_BID_ORDERS = (1, 30)
WEAPONS = ("AK-47", "AWP", "M4A1-S", "Desert Eagle", "USP-S")
FINISHES = ("Redline", "Asiimov", "Vulcan", "Hyper Beast", "Neo-Noir", "Bloodsport")


def rfc3339_second(unix_seconds: int) -> str:
    """A whole Unix second as DMarket's v2 `createdAt` shows it: `2026-12-07T04:00:01Z`."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ManualClock:
    """A clock that stands still until a test moves it: pass it as `clock=`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward; the new now."""
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class LiveOffer:
    """One listing of the live feed as it was made: the oracle's record of it.

    `price_cents` is the price at creation; from `repriced_at` on the offer is served at
    `repriced_cents` (same offerId and createdAt). It is served from `visible_at` (its
    `created_at`, or seconds later for a late one) until `sold_at`, if it is sold.
    `underpriced`: priced well under `best_bid_cents`, its title's best buy order.
    """

    offer_id: str
    title: str
    price_cents: int
    created_at: float
    created_second: int
    visible_at: float
    sold_at: float | None
    repriced_at: float | None
    repriced_cents: int | None
    underpriced: bool
    best_bid_cents: int

    @property
    def created_at_text(self) -> str:
        """The `createdAt` served: whole seconds, so offers of one second tie."""
        return rfc3339_second(self.created_second)

    @property
    def late(self) -> bool:
        return self.visible_at > self.created_at

    def is_visible(self, now: float) -> bool:
        return self.visible_at <= now and (self.sold_at is None or now < self.sold_at)

    def price_cents_at(self, now: float) -> int:
        if self.repriced_cents is None or self.repriced_at is None or now < self.repriced_at:
            return self.price_cents
        return self.repriced_cents

    def offer_at(self, now: float) -> dict[str, Any]:
        """The v2 offer object served for this listing at `now`."""
        offer = offer_of(dmarket_item(self.offer_id, self.title, self.price_cents_at(now)))
        offer["createdAt"] = self.created_at_text
        return offer


class LiveListing:
    """Offers listed at `rate_per_second` from `start` (default: the clock at construction).

    Shares are of all listings, drawn independently: `underpriced_share` priced under the
    best bid, `late_share` visible a delay from `late_delay_seconds` after their createdAt,
    `sold_share` sold and `repriced_share` repriced 1-30 s after they became visible.
    """

    def __init__(
        self,
        rate_per_second: float = 5.0,
        *,
        seed: int = 0,
        titles: int = 20,
        underpriced_share: float = 0.1,
        late_share: float = 0.1,
        late_delay_seconds: tuple[float, float] = (1.0, 4.0),
        sold_share: float = 0.05,
        repriced_share: float = 0.05,
        start: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_per_second <= 0 or titles < 1:
            raise ValueError("rate_per_second must be positive and titles at least 1")
        self.rate_per_second = rate_per_second
        self.seed = seed
        self.underpriced_share = underpriced_share
        self.late_share = late_share
        self.late_delay_seconds = late_delay_seconds
        self.sold_share = sold_share
        self.repriced_share = repriced_share
        self.clock = clock
        self.start = clock() if start is None else start
        self._bids = _best_bids(seed, titles)
        self._titles = list(self._bids)
        self._offers: list[LiveOffer] = []
        self._ids: set[str] = set()
        self._last_created_at = self.start
        # Generation runs in whichever request thread asks first.
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.clock()

    def best_bids(self) -> dict[str, tuple[int, int]]:
        """Each title's best buy order: title -> (cents, order count), fixed by the seed."""
        return dict(self._bids)

    def listings(self, until: float | None = None) -> list[LiveOffer]:
        """Every listing created up to `until` (default: now), visible or not, oldest first.

        A time past now is allowed: the feed is fixed by the seed, so this shows what will be.
        """
        until = self.now() if until is None else until
        with self._lock:
            self._generate_until(until)
            return [offer for offer in self._offers if offer.created_at <= until]

    def visible(self, now: float) -> list[LiveOffer]:
        """The listings served at `now`: visible and not sold, oldest first."""
        return [offer for offer in self.listings(now) if offer.is_visible(now)]

    def offers_by_title(
        self, now: float, others: Mapping[str, tuple[int, int]]
    ) -> dict[str, tuple[int, int]]:
        """Each title's lowest listed price and listing count: `others`' and the live ones'."""
        offers = dict(others)
        for offer in self.visible(now):
            cents = offer.price_cents_at(now)
            low, count = offers.get(offer.title, (cents, 0))
            offers[offer.title] = (min(low, cents), count + 1)
        return offers

    def _generate_until(self, until: float) -> None:
        while True:
            draws = random.Random(f"{self.seed}:listing:{len(self._offers)}")
            created_at = self._last_created_at + draws.expovariate(self.rate_per_second)
            if created_at > until:
                return  # the draws are redone from the same seed next time: nothing is lost
            self._offers.append(self._offer(draws, created_at))
            self._last_created_at = created_at

    def _offer(self, draws: random.Random, created_at: float) -> LiveOffer:
        # Every draw is made for every listing, in one order, so a share changes which
        # listings are late (or sold...) and nothing else.
        offer_id = self._new_id(draws)
        title = draws.choice(self._titles)
        bid_cents = self._bids[title][0]
        underpriced = draws.random() < self.underpriced_share
        share = UNDERPRICED_SHARE_OF_BID if underpriced else OVERPRICED_SHARE_OF_BID
        price_cents = max(1, round(bid_cents * draws.uniform(*share)))
        late = draws.random() < self.late_share
        visible_at = created_at + (draws.uniform(*self.late_delay_seconds) if late else 0.0)
        sold = draws.random() < self.sold_share
        sold_at = visible_at + draws.uniform(*CHANGE_AFTER_VISIBLE_SECONDS)
        repriced = draws.random() < self.repriced_share
        repriced_at = visible_at + draws.uniform(*CHANGE_AFTER_VISIBLE_SECONDS)
        repriced_cents = min(price_cents - 1, round(price_cents * draws.uniform(*REPRICE_FACTOR)))
        # A reprice after the sale never shows, so the record leaves it out.
        shown_reprice = repriced and price_cents > 1 and (not sold or repriced_at < sold_at)
        return LiveOffer(
            offer_id=offer_id,
            title=title,
            price_cents=price_cents,
            created_at=created_at,
            created_second=math.floor(created_at),
            visible_at=visible_at,
            sold_at=sold_at if sold else None,
            repriced_at=repriced_at if shown_reprice else None,
            repriced_cents=repriced_cents if shown_reprice else None,
            underpriced=underpriced,
            best_bid_cents=bid_cents,
        )

    def _new_id(self, draws: random.Random) -> str:
        while True:
            offer_id = str(uuid.UUID(int=draws.getrandbits(128), version=4))
            if offer_id not in self._ids:
                self._ids.add(offer_id)
                return offer_id


def _best_bids(seed: int, titles: int) -> dict[str, tuple[int, int]]:
    draws = random.Random(f"{seed}:bids")
    bids: dict[str, tuple[int, int]] = {}
    for index in range(titles):
        weapon = WEAPONS[index % len(WEAPONS)]
        finish = FINISHES[index // len(WEAPONS) % len(FINISHES)]
        round_number = index // (len(WEAPONS) * len(FINISHES))
        suffix = f" #{round_number + 1}" if round_number else ""
        title = f"{weapon} | {finish} (Field-Tested){suffix}"
        bids[title] = (draws.randint(*BEST_BID_CENTS), draws.randint(*BEST_BID_ORDERS))
    return bids
