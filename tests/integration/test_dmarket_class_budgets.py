"""DMarket's budgets per endpoint class and auth mode: the defaults, separate fleet budgets
for market items and lookups, and the server's rate-limit headers followed before a 429."""

from __future__ import annotations

import nacl.signing
import redis

from tests.fakes.dmarket_server import FakeDMarket, dmarket_item, requests_over_rate
from worker import redis_keys
from worker.domain.listing import Item
from worker.domain.scan_params import ScanParams
from worker.markets.dmarket.market import DMarketMarket, dmarket_budgets
from worker.markets.dmarket.transport import AGGREGATED_PRICES, LAST_SALES, MARKET_ITEMS
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.settings import Settings

ITEMS = [dmarket_item(f"o-{n:03d}", f"Title {n}", 1000 + n, 1300 + n) for n in range(60)]
OFFERS = "/marketplace-api/v2/offers"
AGGREGATED = "/marketplace-api/v1/aggregated-prices"


def signing_keys() -> tuple[str, str]:
    signing_key = nacl.signing.SigningKey.generate()
    public = bytes(signing_key.verify_key)
    return public.hex(), (bytes(signing_key) + public).hex()


def test_default_budgets_follow_the_auth_mode_and_each_can_be_overridden() -> None:
    unsigned = Settings.from_env({})
    assert (
        unsigned.dmarket_requests_per_second,
        unsigned.dmarket_other_requests_per_second,
    ) == (2.0, 6.0)
    public_key, secret_key = signing_keys()
    keys = {
        "MARKETSCAN_DMARKET_PUBLIC_KEY": public_key,
        "MARKETSCAN_DMARKET_SECRET_KEY": secret_key,
    }
    signed = Settings.from_env(keys)
    assert (
        signed.dmarket_requests_per_second,
        signed.dmarket_other_requests_per_second,
        signed.dmarket_last_sales_requests_per_second,
    ) == (10.0, 20.0, 6.0)
    overridden = Settings.from_env(
        {
            **keys,
            "MARKETSCAN_DMARKET_REQUESTS_PER_SECOND": "4",
            "MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND": "5",
            "MARKETSCAN_DMARKET_LAST_SALES_REQUESTS_PER_SECOND": "3",
        }
    )
    assert (
        overridden.dmarket_requests_per_second,
        overridden.dmarket_other_requests_per_second,
        overridden.dmarket_last_sales_requests_per_second,
    ) == (4.0, 5.0, 3.0)


def test_lookups_have_a_budget_of_their_own_and_last_sales_its_own_only_when_signed(
    redis_url: str,
) -> None:
    unsigned = dmarket_budgets(Settings(broker_url=redis_url))
    assert unsigned[MARKET_ITEMS] is not unsigned[AGGREGATED_PRICES]
    assert unsigned[LAST_SALES] is unsigned[AGGREGATED_PRICES]
    public_key, secret_key = signing_keys()
    signed = dmarket_budgets(
        Settings(broker_url=redis_url, dmarket_public_key=public_key, dmarket_secret_key=secret_key)
    )
    # market items, other methods, last sales, customized fees
    assert len({id(budget) for budget in signed.values()}) == 4


def test_a_server_saying_no_requests_remain_is_waited_for_and_never_answers_429(
    redis_url: str,
) -> None:
    # Given a DMarket enforcing 2 market-items requests/s, and a fleet budget set far
    # higher by mistake
    with FakeDMarket(ITEMS, class_budgets={"market_items": 2}) as fake:
        settings = Settings(
            dmarket_url=fake.url, broker_url=redis_url, dmarket_requests_per_second=50.0
        )
        params = ScanParams(game="csgo", market="dmarket", reference="best_bid")
        # When 6 pages are walked back to back
        with DMarketMarket.from_params(params, settings) as market:
            cursor = None
            for _ in range(6):
                cursor = market.fetch_page(cursor, 10).next_cursor
        # Then the headers held the walk to the server's budget: no 429, no second over it
        assert [request.status for request in fake.requests] == [200] * 6
        assert requests_over_rate([r.received_at for r in fake.requests], 2) == 0


def test_lookups_spend_the_other_budget_not_the_market_items_one(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
        client.delete(key)
    with FakeDMarket(ITEMS, class_budgets={"market_items": 2, "other": 6}) as fake:
        settings = Settings(dmarket_url=fake.url, broker_url=redis_url)
        params = ScanParams(game="csgo", market="dmarket", reference="best_bid")
        with DMarketMarket.from_params(params, settings) as market:
            # Given the market-items budget spent by two pages
            cursor = market.fetch_page(None, 10).next_cursor
            market.fetch_page(cursor, 10)
            # When titles are looked up at once
            cache = ReferenceCache(client, "best_bid", "a8db", 60.0)
            lookup = BestBidReference(market.transport, "a8db", cache)
            for start in range(0, 30, 10):
                titles = [f"Title {n}" for n in range(start, start + 10)]
                lookup.references([Item(f"x-{title}", title, 1, None) for title in titles])
        # Then they went out within the same second as the pages, none refused
        lookups = [r for r in fake.requests if r.path == AGGREGATED]
        assert len(lookups) == 3
        assert all(r.status == 200 for r in fake.requests)
        assert lookups[-1].received_at - fake.requests[0].received_at < 1.0
    client.close()
