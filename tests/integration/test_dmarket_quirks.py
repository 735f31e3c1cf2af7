"""Quirks of real DMarket answers that must never loop or fail a scan: empty pages that
still carry a cursor, a cursor sent back unchanged, `""` or missing prices, and item ids
that are not UUIDs. Whole scans through the page runner against the loopback DMarket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, Quirk, dmarket_item
from worker import redis_keys
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.markets.dmarket.market import DMarketMarket
from worker.settings import Settings, get_settings

OFFERS = "/marketplace-api/v2/offers"
ITEMS = [dmarket_item(f"offer-{n:03d}", f"Title {n}", 1000 + n, 1200 + n) for n in range(50)]


def settings_for(env: dict[str, str], fake: FakeDMarket, mp: pytest.MonkeyPatch) -> Settings:
    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
        client.delete(key)
    client.close()
    mp.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    mp.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "100")
    mp.setenv("MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND", "100")
    mp.setenv("MARKETSCAN_SLICE_PAGES", "1")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


@pytest.fixture
def scan_of(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run a whole v2 scan of a fake listing `items` with `quirk` (and titles' last `sales`);
    its row and the fake."""
    with_fakes: list[FakeDMarket] = []

    def scan(
        items: list[dict[str, Any]],
        quirk: Quirk | None = None,
        sales: dict[str, list[int]] | None = None,
    ) -> tuple[uuid.UUID, FakeDMarket]:
        fake = FakeDMarket(items, quirk=quirk, sales=sales).__enter__()
        with_fakes.append(fake)
        settings = settings_for(env, fake, monkeypatch)
        published: list[PageMessage] = []
        params = ScanParams(game="csgo", market="dmarket", page_size=10)
        with session_scope() as session:
            scan_id = scans.start_scan(session, params, settings, published.append)
        outcomes = []
        while published:
            context = PageContext("w1@test", settings, publish=published.append)
            outcomes.append(run_page(published.pop(0), context))
        assert outcomes[-1] is Outcome.COMPLETED, outcomes
        return scan_id, fake

    yield scan
    for fake in with_fakes:
        fake.__exit__(None, None, None)


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def test_empty_pages_with_a_cursor_are_walked_on_and_three_in_a_row_end_the_scan(
    scan_of: Any, session: Session
) -> None:
    # Given a listing whose pages from the 30th item on are empty but carry new cursors
    scan_id, fake = scan_of(ITEMS, Quirk("empty_pages", at_offset=30))
    row = _row(session, scan_id)
    # Then the scan completed with the 30 listings before, and a note saying why it ended
    assert (row.status, row.processed_items) == ("completed", 30)
    assert row.note == "walk ended: DMarket sent 3 empty pages in a row that still had a cursor"
    # after 3 pages of listings and exactly 3 empty ones
    assert len([r for r in fake.requests if r.path == OFFERS]) == 6


def test_a_cursor_sent_back_unchanged_ends_the_scan_with_a_note(
    scan_of: Any, session: Session
) -> None:
    scan_id, fake = scan_of(ITEMS, Quirk("repeating_cursor", at_offset=20))
    row = _row(session, scan_id)
    # The page that sent its own cursor back is judged, and is the last
    assert (row.status, row.processed_items) == ("completed", 30)
    assert row.note == "walk ended: DMarket sent back the cursor it was asked for"
    assert len([r for r in fake.requests if r.path == OFFERS]) == 3


def test_one_empty_page_with_a_cursor_is_walked_past_within_one_fetch() -> None:
    with FakeDMarket(ITEMS, quirk=Quirk("empty_pages", at_offset=10)) as fake:
        market = DMarketMarket(base_url=fake.url, game="csgo", api="v2", max_empty_pages=3)
        with market:
            first = market.fetch_page(None, 10)
            last = market.fetch_page(first.next_cursor, 10)
    assert (len(first.items), first.end_note) == (10, None)
    assert (last.items, last.next_cursor) == ((), None)
    assert len(fake.requests) == 4


def test_listings_with_empty_or_missing_prices_are_skipped_and_counted(
    scan_of: Any, session: Session
) -> None:
    items = [dict(item) for item in ITEMS[:20]]
    items[3]["price"] = {"USD": ""}
    items[7].pop("price")
    items[12]["price"] = {}
    scan_id, _ = scan_of(items)
    row = _row(session, scan_id)
    assert (row.status, row.processed_items, row.skipped_items) == ("completed", 17, 3)


def test_an_item_id_that_is_not_a_uuid_is_stored_as_it_is(scan_of: Any, session: Session) -> None:
    peer_to_peer = "3035672245:188530139:31415926535:730"
    items = [dmarket_item(peer_to_peer, "Title p2p", 500, 900)]
    # (sold three times this week: a liquid find)
    scan_of(items, sales={"Title p2p": [900, 900, 900]})
    stored = session.scalars(select(ScanOpportunity.item_id)).all()
    assert stored == [peer_to_peer]
