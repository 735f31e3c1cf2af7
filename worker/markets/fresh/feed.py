"""A fresh watch's market: each page is one poll of the listing's newest offers.

The page's cursor is the watch's watermark (worker.domain.watermark). A poll walks DMarket's
v2 offers newest first down to the watermark's lookback window (a walk shared with the
other fresh watches of the listing: worker.markets.fresh.shared_walk), keeps the offers not
judged before that fall in the scan's price band, looks their references up, and hands the
page runner those listings with the new watermark as the next cursor. The runner judges
them and commits the finds with the watermark in one transaction (invariant 12), then the
scan rests until its next poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from worker.domain.listing import Item, Page
from worker.domain.watermark import Listed, Watermark, second_of
from worker.errors import InvalidInput, PermanentMarketError
from worker.markets.appraisal import Appraiser
from worker.markets.base import MAX_PAGE_SIZE, MarketSource
from worker.markets.fresh.shared_walk import SharedWalk, Walk
from worker.markets.references.source import ReferenceSource

log = logging.getLogger(__name__)


class FreshFeed:
    """The polls of one fresh scan: `walker` lists the game's offers newest first."""

    def __init__(
        self,
        walker: MarketSource,
        source: ReferenceSource | None,
        shared: SharedWalk,
        *,
        since: str | None,
        price_band: tuple[int, int],
        lookback_seconds: float,
        max_gap_pages: int,
        clock: Callable[[], float] = time.time,
        appraiser: Appraiser | None = None,
    ) -> None:
        self._walker = walker
        self._appraiser = appraiser
        self._source = source
        self._shared = shared
        # None only while a watch's request is checked: each start freezes its moment.
        self._since = None if since is None else datetime.fromisoformat(since)
        self._band = price_band
        self._lookback_seconds = lookback_seconds
        self._max_gap_pages = max_gap_pages
        self._clock = clock

    def fetch_page(self, cursor: str | None, limit: int) -> Page:
        try:
            watermark = self._watermark(cursor)
        except InvalidInput as exc:
            raise PermanentMarketError(f"the stored {exc}") from exc
        low = watermark.lowest_new_second(self._lookback_seconds)
        walk = self._shared.newest(low, self._max_gap_pages, self.walk)
        listed = [
            Listed(item.item_id, second)
            for item, second in zip(walk.items, walk.seconds, strict=True)
        ]
        advance = watermark.advance(
            listed,
            reached=walk.reaches(low),
            lookback_seconds=self._lookback_seconds,
            as_of=walk.as_of,
        )
        if advance.gap:
            log.warning(
                "fresh poll: the watermark (%d) lies deeper than %d pages; going on from the "
                "newest listing, %d seconds of listings walked past",
                watermark.at,
                self._max_gap_pages,
                advance.watermark.gap_seconds - watermark.gap_seconds,
            )
        new = set(advance.new_ids)
        low_cents, high_cents = self._band
        items = tuple(
            item
            for item in walk.items
            if item.item_id in new and low_cents <= item.price_cents <= high_cents
        )
        return Page(
            items=self._appraised(self._referenced(items)),
            next_cursor=advance.watermark.to_cursor(),
            total=None,
        )

    def _watermark(self, cursor: str | None) -> Watermark:
        if cursor is not None:
            return Watermark.from_cursor(cursor)
        if self._since is None:
            raise InvalidInput("fresh_since: a fresh scan must say when its watch began")
        return Watermark.start(self._since)

    def walk(self, down_to_second: int, max_pages: int) -> Walk:
        """Walk the newest offers down past `down_to_second`, at most `max_pages` pages."""
        as_of = self._clock()
        items: list[Item] = []
        seconds: list[int] = []
        cursor: str | None = None
        complete = False
        for _ in range(max_pages):
            page = self._walker.fetch_page(cursor, MAX_PAGE_SIZE)
            for item in page.items:
                items.append(item)
                seconds.append(_second(item))
            if page.next_cursor is None:
                complete = True
                break
            if seconds and seconds[-1] < down_to_second:
                break
            cursor = page.next_cursor
        bottom = seconds[-1] if seconds else None
        return Walk(tuple(items), tuple(seconds), bottom, complete, as_of)

    def _referenced(self, items: tuple[Item, ...]) -> tuple[Item, ...]:
        if self._source is None or not items:
            return items
        references = self._source.references(items)
        return tuple(
            replace(
                item,
                reference=reference,
                reference_price_cents=None if reference is None else reference.price_cents,
            )
            for item, reference in zip(items, references, strict=True)
        )

    def _appraised(self, items: tuple[Item, ...]) -> tuple[Item, ...]:
        if self._appraiser is None or not items:
            return items
        return self._appraiser.appraised(items)

    def inspect(self, item: Item) -> Item:
        return self._walker.inspect(item)

    def close(self) -> None:
        self._walker.close()


def _second(item: Item) -> int:
    try:
        return second_of(item.extra.get("createdAt"))
    except InvalidInput as exc:
        raise PermanentMarketError(f"offer {item.item_id!r}: {exc}") from exc
