"""A fleet of real workers against one loopback DMarket that enforces its request budget.

Two workers of concurrency 2 are four pool processes on one API: they must share one
budget (kept in Redis), pause together on a 429, and reuse one connection per process.
Beside the listing's pages a scan asks for DMarket's fees and its candidates' best bids,
each on a budget class of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item, requests_over_rate
from tests.support.processes import CeleryProcess
from tests.support.scans import start_scan_cli, wait_for_status
from worker.testing.dmarket_server import ITEMS_PATH

ITEMS = [
    dmarket_item(f"dm-{n:04d}", f"AK-47 | Redline #{n}", 1000 + n, 1000 + n + 300 * (n % 5 == 0))
    for n in range(400)
]
PAGE_SIZE = 40  # 10 pages per scan: long enough for connections to be reused, or not
WORKERS = ("w1@fleet", "w2@fleet")
CONCURRENCY = 2
POOL_PROCESSES = len(WORKERS) * CONCURRENCY
SCAN_TIMEOUT_SECONDS = 180


@pytest.fixture
def fleet(
    celery_env: dict[str, str], start_worker: Callable[..., CeleryProcess]
) -> Callable[[FakeDMarket, int], dict[str, str]]:
    """Start the two workers against `fake` at a budget; returns the environment they use."""

    def start(fake: FakeDMarket, requests_per_second: int) -> dict[str, str]:
        celery_env["MARKETSCAN_DMARKET_URL"] = fake.url
        celery_env["MARKETSCAN_DMARKET_API"] = "v1"
        celery_env["MARKETSCAN_DMARKET_REQUESTS_PER_SECOND"] = str(requests_per_second)
        # A Retry-After is honoured up to this cap, for the fleet's pause as for a retry.
        celery_env["MARKETSCAN_RETRY_BACKOFF_MAX_SECONDS"] = "10"
        for hostname in WORKERS:
            start_worker(hostname, concurrency=CONCURRENCY)
        return celery_env

    return start


@pytest.fixture
def fake_at_four_per_second() -> Iterator[FakeDMarket]:
    """Market items at 4 requests/s; the other classes at DMarket's unsigned figures
    (best bids 6/s, fees 2/s), as the workers' own budgets of them."""
    budgets = {"market_items": 4, "other": 6, "fees": 2}
    with FakeDMarket(ITEMS, class_budgets=budgets) as server:
        yield server


def start_scans(env: dict[str, str], count: int) -> list[uuid.UUID]:
    return [
        start_scan_cli(env, "--market", "dmarket", "--page-size", str(PAGE_SIZE))
        for _ in range(count)
    ]


def test_three_scans_on_four_processes_stay_within_one_shared_budget_on_pooled_connections(
    fleet: Callable[[FakeDMarket, int], dict[str, str]],
    fake_at_four_per_second: FakeDMarket,
    database_url: str,
) -> None:
    fake = fake_at_four_per_second
    # Given two workers x concurrency 2 sharing a DMarket that allows 4 requests/s
    env = fleet(fake, 4)
    # When three scans run at once
    scan_ids = start_scans(env, 3)
    done = [wait_for_status(database_url, s, timeout=SCAN_TIMEOUT_SECONDS) for s in scan_ids]
    # Then every scan completed, and no second ever saw more than 4 listing requests, no
    # request of any class refused
    assert [(row.status, row.processed_items) for row in done] == [("completed", 400)] * 3
    arrivals = [request.received_at for request in fake.requests_to(ITEMS_PATH)]
    assert len(arrivals) == 3 * len(ITEMS) // PAGE_SIZE
    assert requests_over_rate(arrivals, 4) == 0
    assert fake.rate_limited == []
    # And the 30 pages went over at most one keep-alive connection per pool process
    assert len(fake.connections) <= POOL_PROCESSES


def test_a_429_seen_by_one_process_pauses_every_process(
    fleet: Callable[[FakeDMarket, int], dict[str, str]], database_url: str
) -> None:
    # Given a DMarket that answers its 6th request 429 "retry after 3 s"
    retry_after_seconds = 3
    with FakeDMarket(
        ITEMS, scripted={5: ScriptedReply.rate_limited(retry_after=str(retry_after_seconds))}
    ) as fake:
        # And three scans running on four processes at a budget of 2 requests/s
        env = fleet(fake, 2)
        scan_ids = start_scans(env, 3)
        done = [wait_for_status(database_url, s, timeout=SCAN_TIMEOUT_SECONDS) for s in scan_ids]
        requests = fake.requests
    assert [row.status for row in done] == ["completed"] * 3
    # Then, during the wait the 429 asked for, the only requests that reached the server
    # are those already granted before it: at most one more at 2/s (the 429 took the other
    # slot). A pause of only the process that got it would let the other three go on.
    refused_at = requests[5].received_at
    during_pause = [
        r for r in requests[6:] if refused_at < r.received_at < refused_at + retry_after_seconds
    ]
    assert len(during_pause) <= 1, [r.received_at - refused_at for r in during_pause]
