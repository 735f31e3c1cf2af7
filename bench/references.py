"""14. DMarket v2 with reference lookups: the budget use of each endpoint class, the
reference cache's hit rate, and a page's cost with its lookup against a page without.

Fleet part: scans of a v2 listing queued at once on two workers of concurrency 2, against
a loopback DMarket enforcing DMarket's unsigned budgets per class (market items 2/s, other
methods 6/s) with its rate-limit headers, judged against the best bid (the default). Use
of a class is its served requests per second over the middle 80 % of its arrivals,
divided by its budget; "other" is low by design (one lookup per page at most, fewer as
the cache fills). Hit rate: titles a page needed that the fleet's cache answered, over all
the titles pages needed. Cost part, in one process with no budget: the median time to
fetch a page of 100 offers, alone, with a cold lookup (one POST) and with a warm one
(a Redis MGET).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable

from bench.kit import scans
from bench.kit.database import connect
from bench.kit.harness import Bench, say
from bench.kit.report import Row
from worker import broker_redis, redis_keys
from worker.domain.scan_params import ScanParams
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.fleet import process_clients
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.priced_market import ReferencedMarket
from worker.settings import DEFAULT_SENTINEL_MASTER
from worker.testing.dmarket_server import FakeDMarket, RecordedRequest, dmarket_item

NAME = "references"
PAGE_SIZE = 40
TITLES = 120
BUDGETS = {"market_items": 2, "other": 6}
OFFERS = "/marketplace-api/v2/offers"
AGGREGATED = "/marketplace-api/v1/aggregated-prices"
GOAL = 0.90


def listing(count: int) -> list[dict[str, object]]:
    return [
        dmarket_item(f"ref-{n:05d}", f"Title {n % TITLES}", 1000 + n % 500, 1100 + n % 300)
        for n in range(count)
    ]


def class_use(requests: list[RecordedRequest], path: str, budget: int) -> float:
    served = sorted(r.received_at for r in requests if r.path == path and r.status == 200)
    low, high = len(served) // 10, len(served) * 9 // 10
    if high <= low or served[high] == served[low]:
        return 0.0
    return (high - low) / (served[high] - served[low]) / budget


def fleet(bench: Bench, database_url: str, scan_count: int, pages: int) -> dict[str, float]:
    items = listing(pages * PAGE_SIZE)
    with FakeDMarket(items, class_budgets=BUDGETS) as fake:
        env = bench.worker_env(database_url, MARKETSCAN_DMARKET_URL=fake.url)
        for hostname in ("ref1@bench", "ref2@bench"):
            bench.start_worker(env, hostname, concurrency=2)
        params = ScanParams(
            game="csgo", market="dmarket", page_size=PAGE_SIZE, reference="best_bid"
        )
        scan_ids: list[uuid.UUID] = [scans.start(database_url, params) for _ in range(scan_count)]
        connection = connect(database_url)
        for scan_id in scan_ids:
            scans.wait_for_status(connection, scan_id, timeout_s=scan_count * pages + 120)
        connection.close()
        bench.stop_all()
        requests = fake.requests
    asked = sum(
        len(json.loads(r.body)["filter"]["titles"]) for r in requests if r.path == AGGREGATED
    )
    pages_per_scan = [items[start : start + PAGE_SIZE] for start in range(0, len(items), PAGE_SIZE)]
    needed = scan_count * sum(len({item["title"] for item in page}) for page in pages_per_scan)
    return {
        "items": class_use(requests, OFFERS, BUDGETS["market_items"]),
        "other": class_use(requests, AGGREGATED, BUDGETS["other"]),
        "refused": float(sum(1 for r in requests if r.status == 429)),
        "hit_rate": 1 - asked / needed,
    }


def page_costs(broker_url: str, rounds: int) -> dict[str, float]:
    """Median milliseconds per page of 100: alone, with a cold lookup, with a warm one."""
    client = broker_redis.new_client(broker_url, DEFAULT_SENTINEL_MASTER)
    with FakeDMarket(listing(100)) as fake:
        http = process_clients.new_http_client(fake.url, 5.0)
        plain = DMarketMarket(base_url=fake.url, game="csgo", api="v2", client=http)
        cache = ReferenceCache(client, "best_bid", "a8db", 3600.0)
        referenced = ReferencedMarket(plain, BestBidReference(plain.transport, "a8db", cache))

        def timed(fetch: Callable[[], object], before: Callable[[], None]) -> float:
            samples = []
            for _ in range(rounds):
                before()
                started = time.perf_counter()
                fetch()
                samples.append((time.perf_counter() - started) * 1000)
            return statistics.median(samples)

        def forget() -> None:
            for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
                client.delete(key)

        costs = {
            "alone": timed(lambda: plain.fetch_page(None, 100), lambda: None),
            "cold": timed(lambda: referenced.fetch_page(None, 100), forget),
            "warm": timed(lambda: referenced.fetch_page(None, 100), lambda: None),
        }
        http.close()
    client.close()
    return costs


def run(bench: Bench) -> list[Row]:
    scan_count, pages = bench.size(4, 2), bench.size(12, 5)
    with bench.database(NAME) as url:
        measured = fleet(bench, url, scan_count, pages)
    say(
        f"{NAME}: items {measured['items']:.1%}, other {measured['other']:.1%} of budget, "
        f"{measured['refused']:.0f} 429s, cache hit rate {measured['hit_rate']:.1%}"
    )
    costs = page_costs(bench.broker_url, bench.size(30, 8))
    say(f"{NAME}: page cost alone {costs['alone']:.1f} ms, cold {costs['cold']:.1f} ms, "
        f"warm {costs['warm']:.1f} ms")  # fmt: skip
    met = measured["items"] >= GOAL and measured["refused"] == 0
    return [
        Row(
            figure=f"14 DMarket v2 budgets per class ({scan_count} scans x {pages} pages, "
            "2 workers x c=2, best bid)",
            measured=f"items {measured['items']:.1%}, other {measured['other']:.1%} of budget; "
            f"{measured['refused']:.0f} 429s; reference cache hit rate "
            f"{measured['hit_rate']:.1%}",
            floor="budgets 2/s items, 6/s other, enforced by the server with its headers",
            goal=f"items >= {GOAL:.0%}, 0 429s",
            met=met,
            note="" if met else "Below the goal or refused: see the worker logs of the run.",
            detail=f"A page of 100 offers costs {costs['alone']:.1f} ms alone, "
            f"{costs['cold']:.1f} ms with a cold best-bid lookup (x"
            f"{costs['cold'] / costs['alone']:.2f}) and {costs['warm']:.1f} ms with a warm "
            f"one (x{costs['warm'] / costs['alone']:.2f}), on loopback with no budget.",
        )
    ]
