"""The loopback DMarket's live mode over real HTTP: v2 offers listed at a steady rate, served
newest first and walked by a key-set cursor, with late, sold and repriced listings, and an
oracle that says what was listed. A `ManualClock` moves time, so no test sleeps.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply
from worker.testing.dmarket_live import LiveListing, LiveOffer, ManualClock

OFFERS_PATH = "/marketplace-api/v2/offers"
AGGREGATED_PRICES_PATH = "/marketplace-api/v1/aggregated-prices"
# 2026-12-07T04:00:00Z: the feed starts listing here.
START = 1_796_616_000.0
WHOLE_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FEE = 0.07
MIN_PROFIT = 0.03

Offer = dict[str, Any]


@contextmanager
def serving(clock: ManualClock, **feed: Any) -> Iterator[tuple[FakeDMarket, httpx.Client]]:
    """A fake in live mode, listing from START on the test's clock, and a client to it."""
    live = LiveListing(seed=7, start=START, clock=clock, **feed)
    with FakeDMarket(live=live) as fake, httpx.Client(base_url=fake.url) as client:
        yield fake, client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def offers(client: httpx.Client, **params: str) -> dict[str, Any]:
    answer = client.get(OFFERS_PATH, params={"gameId": "a8db", **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def walk(
    client: httpx.Client,
    limit: int,
    between_pages: Callable[[], object] = lambda: None,
    **order: str,
) -> list[Offer]:
    """Every offer served, page by page to the empty cursor; `between_pages` runs before each
    page after the first."""
    page = offers(client, limit=str(limit), **order)
    served = list(page["items"])
    while page["cursor"]:
        between_pages()
        page = offers(client, limit=str(limit), cursor=page["cursor"], **order)
        served += page["items"]
    return served


def served_keys(served: list[Offer]) -> list[tuple[str, str]]:
    return [(offer["createdAt"], offer["offerId"]) for offer in served]


def oracle_keys(listings: list[LiveOffer], *, descending: bool = True) -> list[tuple[str, str]]:
    ordered = sorted(listings, key=lambda o: (o.created_second, o.offer_id), reverse=descending)
    return [(offer.created_at_text, offer.offer_id) for offer in ordered]


def by_id(served: list[Offer]) -> dict[str, Offer]:
    return {offer["offerId"]: offer for offer in served}


def test_listings_appear_at_the_rate_and_several_share_a_second(clock: ManualClock) -> None:
    with serving(clock, rate_per_second=5.0, late_share=0.0, sold_share=0.0) as (fake, client):
        # Given a feed at 5 a second that starts now, Then nothing is listed yet
        assert offers(client, limit="100") == {"items": [], "total": 0, "cursor": ""}
        # When 200 seconds pass
        clock.advance(200.0)
        listed = fake.live.listings()
        # Then about 1,000 listings were made (a fixed seed: the count is always the same)
        assert 900 <= len(listed) <= 1100
        assert offers(client, limit="1")["total"] == len(listed)
        # And at 5 a second, many whole seconds of createdAt hold more than one listing
        served = walk(client, 100)
        seconds = [created_at for created_at, _ in served_keys(served)]
        assert len(served) == len(listed)
        assert len(set(seconds)) < len(seconds)
        assert all(WHOLE_SECOND.match(second) for second in seconds)
        # And 100 seconds on, about 500 more
        clock.advance(100.0)
        assert 400 <= len(fake.live.listings()) - len(listed) <= 600


def test_offers_come_newest_first_with_ties_broken_by_offer_id_descending(
    clock: ManualClock,
) -> None:
    with serving(clock) as (fake, client):
        clock.advance(60.0)
        # When the listing is walked newest first, with and without saying so
        explicit = walk(client, 20, orderBy="createdAt", orderDir="desc")
        default = walk(client, 20)
        # Then it is the visible listings by (createdAt second, offerId), both descending
        expected = oracle_keys(fake.live.visible(clock.now))
        assert served_keys(explicit) == expected
        assert served_keys(default) == expected
        # And some neighbours share a second, so the offerId did break ties
        ties = [(a, b) for a, b in itertools.pairwise(served_keys(explicit)) if a[0] == b[0]]
        assert ties
        assert all(first[1] > second[1] for first, second in ties)


def test_ascending_walks_oldest_first_and_its_cursor_is_refused_to_a_descending_walk(
    clock: ManualClock,
) -> None:
    with serving(clock) as (fake, client):
        clock.advance(60.0)
        served = walk(client, 20, orderBy="createdAt", orderDir="asc")
        assert served_keys(served) == oracle_keys(fake.live.visible(clock.now), descending=False)
        cursor = offers(client, limit="9", orderBy="createdAt", orderDir="asc")["cursor"]
        refused = client.get(
            OFFERS_PATH,
            params={"gameId": "a8db", "limit": "9", "orderDir": "desc", "cursor": cursor},
        )
        assert refused.status_code == 400
        assert refused.json()["Message"] == "cursor: was made for orderDir=asc"


def test_a_key_set_walk_neither_skips_nor_repeats_while_new_listings_arrive_above(
    clock: ManualClock,
) -> None:
    with serving(clock, late_share=0.0, sold_share=0.0, repriced_share=0.0) as (fake, client):
        # Given two minutes of listings and the first page of a newest-first walk
        clock.advance(120.0)
        before = fake.live.visible(clock.now)
        first = offers(client, limit="20")
        bottom_of_first = (first["items"][-1]["createdAt"], first["items"][-1]["offerId"])

        # When 10 seconds (about 50 new listings, more than a page) pass before each next page
        def ten_seconds_pass() -> None:
            clock.advance(10.0)

        rest: list[Offer] = []
        page = first
        while page["cursor"]:
            ten_seconds_pass()
            page = offers(client, limit="20", cursor=page["cursor"])
            rest += page["items"]
        # Then the pages below the first are exactly the listings below it when it was read:
        # none of those arriving above shifted them (an offset walk would repeat them)
        assert served_keys(rest) == [key for key in oracle_keys(before) if key < bottom_of_first]
        arrived = len(fake.live.visible(clock.now)) - len(before)
        assert arrived > 20
        assert page["total"] == len(before) + arrived


def test_a_late_listing_is_served_from_its_visible_at_below_newer_ones(
    clock: ManualClock,
) -> None:
    with serving(clock, late_share=0.5, sold_share=0.0) as (fake, client):
        # Given a listing whose createdAt is seconds before it is seen
        late = next(offer for offer in fake.live.listings(until=START + 60) if offer.late)
        assert late.visible_at - late.created_at >= 1.0
        # When a request comes after its createdAt but before its visible_at
        clock.now = (late.created_at + late.visible_at) / 2
        early = by_id(walk(client, 100))
        # Then it is not served, although a listing created after it is
        assert late.offer_id not in early
        newer = [o for o in fake.live.visible(clock.now) if o.created_at > late.created_at]
        assert newer
        assert {offer.offer_id for offer in newer} <= set(early)
        # When its visible_at has come, Then it is served with its earlier createdAt
        clock.now = late.visible_at
        served = walk(client, 100)
        assert by_id(served)[late.offer_id]["createdAt"] == late.created_at_text
        position = [offer["offerId"] for offer in served].index(late.offer_id)
        assert position > 0
        assert served_keys(served) == oracle_keys(fake.live.visible(clock.now))


def test_a_sold_listing_is_served_until_it_is_sold_and_then_vanishes(
    clock: ManualClock,
) -> None:
    with serving(clock, sold_share=0.3) as (fake, client):
        sold = next(o for o in fake.live.listings(until=START + 60) if o.sold_at is not None)
        assert sold.sold_at is not None
        clock.now = sold.visible_at
        assert sold.offer_id in by_id(walk(client, 100))
        clock.now = sold.sold_at
        served = walk(client, 100)
        assert sold.offer_id not in by_id(served)
        assert offers(client, limit="1")["total"] == len(served)
        # And the oracle still has it, with when it was sold
        assert sold in fake.live.listings()


def test_a_repriced_listing_keeps_its_offer_id_and_created_at(clock: ManualClock) -> None:
    with serving(clock, repriced_share=0.3, sold_share=0.0) as (fake, client):
        repriced = next(
            o for o in fake.live.listings(until=START + 60) if o.repriced_at is not None
        )
        assert repriced.repriced_at is not None
        clock.now = repriced.visible_at
        before = by_id(walk(client, 100))[repriced.offer_id]
        clock.now = repriced.repriced_at
        after = by_id(walk(client, 100))[repriced.offer_id]
        assert before["priceCents"] == repriced.price_cents
        assert after["priceCents"] == repriced.repriced_cents != repriced.price_cents
        assert after["createdAt"] == before["createdAt"] == repriced.created_at_text


def test_a_judge_against_the_best_bid_finds_exactly_the_underpriced_listings(
    clock: ManualClock,
) -> None:
    with serving(clock) as (fake, client):
        clock.advance(120.0)
        served = walk(client, 100)
        titles = sorted({offer["attributes"]["title"] for offer in served})
        request = {"filter": {"game": "a8db", "titles": titles}}
        answer = client.post(AGGREGATED_PRICES_PATH, content=json.dumps(request))
        bids = {
            price["title"]: int(price["orderBestPrice"]["Amount"])
            for price in answer.json()["aggregatedPrices"]
        }
        assert bids == {title: fake.live.best_bids()[title][0] for title in titles}
        found = {
            offer["offerId"]
            for offer in served
            if bids[offer["attributes"]["title"]] * (1 - FEE) - offer["priceCents"]
            >= MIN_PROFIT * offer["priceCents"]
        }
        underpriced = {o.offer_id for o in fake.live.visible(clock.now) if o.underpriced}
        assert underpriced
        assert found == underpriced


def test_price_filters_apply_to_the_live_listing(clock: ManualClock) -> None:
    with serving(clock) as (fake, client):
        clock.advance(60.0)
        served = walk(client, 50, priceFrom="1000", priceTo="5000")
        expected = [
            o for o in fake.live.visible(clock.now) if 1000 <= o.price_cents_at(clock.now) <= 5000
        ]
        assert served_keys(served) == oracle_keys(expected)
        assert offers(client, limit="1", priceFrom="1000", priceTo="5000")["total"] == len(expected)


def test_only_created_at_order_is_served_live(clock: ManualClock) -> None:
    with serving(clock) as (_, client):
        refused = client.get(
            OFFERS_PATH, params={"gameId": "a8db", "limit": "5", "orderBy": "price"}
        )
        assert refused.status_code == 400
        assert refused.json()["Message"].startswith("orderBy: the live listing is ordered by")


def test_scripted_replies_and_outages_stand_in_front_and_every_request_is_recorded(
    clock: ManualClock,
) -> None:
    with serving(clock) as (fake, client):
        clock.advance(10.0)
        fake.script(0, ScriptedReply.rate_limited(retry_after="2"))
        limited = client.get(OFFERS_PATH, params={"gameId": "a8db", "limit": "5"})
        served = client.get(OFFERS_PATH, params={"gameId": "a8db", "limit": "5"})
        fake.outage(60.0)
        down = client.get(OFFERS_PATH, params={"gameId": "a8db", "limit": "5"})
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
        assert served.status_code == 200
        assert len(served.json()["items"]) == 5
        assert down.status_code == 503
        recorded = fake.requests_to(OFFERS_PATH)
        assert [request.status for request in recorded] == [429, 200, 503]
        assert recorded[1].query == {"gameId": "a8db", "limit": "5"}


def test_one_seed_and_start_list_the_same_feed_however_often_it_is_read() -> None:
    stepped, once = ManualClock(START), ManualClock(START + 90)
    stepwise = LiveListing(seed=3, start=START, clock=stepped)
    for _ in range(9):
        stepped.advance(10.0)
        stepwise.listings()
    assert stepwise.listings() == LiveListing(seed=3, start=START, clock=once).listings()
    assert LiveListing(seed=4, start=START, clock=once).listings() != stepwise.listings()
