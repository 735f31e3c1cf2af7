"""DMarket's published fees across the fleet: one fetch of the list however many processes
ask at once, again once its first reduced fee lapses; an answer with one wrong value is a
retryable error naming its JSON path and leaves nothing behind; the requests spend the fees'
own budget. Against the loopback DMarket and a real Redis."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest
import redis

from tests.fakes.dmarket_server import (
    FakeDMarket,
    FakeFees,
    FakeReducedFee,
    ScriptedReply,
    requests_over_rate,
)
from worker import redis_keys
from worker.domain.fees import FeeTable
from worker.domain.scan_params import FEE_SOURCE_DMARKET, ScanParams
from worker.errors import RetryableMarketError
from worker.markets.dmarket.market import dmarket_budgets
from worker.markets.dmarket.transport import (
    AGGREGATED_PRICES,
    FEES,
    LAST_SALES,
    MARKET_ITEMS,
    DMarketTransport,
)
from worker.markets.fees.cache import FeeCache
from worker.markets.fees.configured import ConfiguredFees, SimulatedFees
from worker.markets.fees.dmarket import PATH, DMarketFees
from worker.markets.fees.registry import fee_source
from worker.markets.fleet import process_clients
from worker.settings import Settings

START = 1_800_000_000.0
AK = "AK-47 | Redline (Field-Tested)"


def fees(count: int, expiry: int = int(START) + 3600) -> FakeFees:
    """A default of 5 % and `count` reduced fees, AK-47's first."""
    titles = [AK] + [f"Title {n}" for n in range(1, count)]
    reduced = tuple(
        FakeReducedFee(title, "0.02", 100, 5000, expiry + n) for n, title in enumerate(titles)
    )
    return FakeFees("0.05", 1, reduced)


class Clock:
    """A clock the test moves: the fees' expiries are judged on it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def dmarket_fees(
    url: str, client: redis.Redis, clock: Clock | None = None, **transport: object
) -> DMarketFees:
    http = process_clients.new_http_client(url, 5.0)
    sender = DMarketTransport(http, **transport)  # type: ignore[arg-type]
    if clock is None:
        return DMarketFees(sender, "a8db", FeeCache(client, "dmarket", "a8db"))
    return DMarketFees(sender, "a8db", FeeCache(client, "dmarket", "a8db", clock=clock), clock)


def fee_keys(client: redis.Redis) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(f"{redis_keys.FEE_PREFIX}*"))


def test_many_askers_at_once_cost_one_fetch_of_every_page(client: redis.Redis) -> None:
    # Given a list of 250 reduced fees (three pages), the first page slow to come
    with FakeDMarket(fees=fees(250), scripted={0: ScriptedReply(delay_seconds=0.5)}) as fake:
        askers = 12
        start = threading.Barrier(askers)
        tables: list[FeeTable] = []

        def ask() -> None:
            source = dmarket_fees(fake.url, client)
            start.wait()
            tables.append(source.table())

        # When twelve askers, each with its own transport, ask at the same moment
        threads = [threading.Thread(target=ask) for _ in range(askers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then the list was read once, page by page, and every asker got all of it
        asked = [request.query["offset"] for request in fake.requests_to(PATH)]
        assert asked == ["0", "100", "200"]
        assert len(tables) == askers
        assert all(len(table.reduced) == 250 for table in tables)
        assert len({table.fetched_at for table in tables}) == 1


def _ask_in_a_process(
    url: str, redis_url: str, start: Barrier, found: Queue[tuple[float, int]]
) -> None:
    client = redis.Redis.from_url(redis_url)
    source = dmarket_fees(url, client)
    start.wait()
    table = source.table()
    found.put((table.fetched_at, len(table.reduced)))
    client.close()


def test_askers_in_other_processes_wait_for_the_one_fetch(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    askers = 4
    start = context.Barrier(askers)
    found: Queue[tuple[float, int]] = context.Queue()
    with FakeDMarket(fees=fees(150), scripted={0: ScriptedReply(delay_seconds=0.5)}) as fake:
        # When four processes ask at the same moment
        processes = [
            context.Process(target=_ask_in_a_process, args=(fake.url, redis_url, start, found))
            for _ in range(askers)
        ]
        for process in processes:
            process.start()
        answers = [found.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        # Then the two pages were read once, and each process has the same table
        assert [request.query["offset"] for request in fake.requests_to(PATH)] == ["0", "100"]
        assert [process.exitcode for process in processes] == [0] * askers
        assert len(set(answers)) == 1 and answers[0][1] == 150


def test_the_list_is_kept_until_its_first_reduced_fee_lapses_then_read_again(
    client: redis.Redis,
) -> None:
    clock = Clock(START)
    # Given a list whose first reduction (AK-47's) lapses an hour from now
    with FakeDMarket(fees=fees(3)) as fake:
        source = dmarket_fees(fake.url, client, clock)
        first = source.table()
        assert first.expires_at() == START + 3600
        # Then Redis keeps it no longer than that
        (table_key,) = fee_keys(client)
        assert table_key == "marketscan:fee:dmarket:a8db:table"
        assert 0 < client.pttl(table_key) <= 3600 * 1000

        # When another process asks a second before the lapse
        clock.now = START + 3599
        assert dmarket_fees(fake.url, client, clock).table() == first
        assert len(fake.requests_to(PATH)) == 1

        # When DMarket's list changes and the lapse comes
        fake.set_fees(FakeFees("0.04", 2, ()))
        clock.now = START + 3600
        again = source.table()

        # Then the list is read again, and the new table is the one kept
        assert len(fake.requests_to(PATH)) == 2
        assert (again.default_bps, again.min_amount_cents, again.reduced) == (400, 2, ())
        assert again.expires_at() == START + 3600 + 24 * 3600
        assert dmarket_fees(fake.url, client, clock).table() == again
        assert len(fake.requests_to(PATH)) == 2


# A field left out of an answer.
DROP = object()


def answer(
    default: dict[str, object] | None = None, reduced: dict[str, object] | None = None
) -> bytes:
    """A body of one reduced fee (AK-47's), with fields of either object changed or dropped."""
    good_default: dict[str, object] = {"fraction": "0.05", "minAmount": "1"}
    good_reduced: dict[str, object] = {
        "title": AK,
        "fraction": "0.02",
        "minPrice": "100",
        "maxPrice": "5000",
        "expiresAt": 2_000_000_000,
    }
    changed = [
        {name: value for name, value in {**good, **(changes or {})}.items() if value is not DROP}
        for good, changes in ((good_default, default), (good_reduced, reduced))
    ]
    return json.dumps({"defaultFee": changed[0], "reducedFees": [changed[1]]}).encode()


# (what DMarket answers, what the error says: the JSON path of the wrong value, and more)
BAD_ANSWERS = [
    (answer({"fraction": "1.5"}), "defaultFee.fraction"),
    (answer(reduced={"fraction": "1.5"}), "reducedFees[0].fraction"),
    (answer({"fraction": "-0.05"}), "defaultFee.fraction"),
    (answer({"fraction": 0.05}), "defaultFee.fraction"),
    (answer({"fraction": "5e-2"}), "defaultFee.fraction"),
    (answer({"fraction": DROP}), "defaultFee.fraction: expected a string of a fraction"),
    (answer({"minAmount": "-1"}), "defaultFee.minAmount"),
    (answer({"minAmount": -1}), "defaultFee.minAmount"),
    (answer({"minAmount": "1.5"}), "defaultFee.minAmount"),
    (answer({"minAmount": 1.0}), "defaultFee.minAmount"),
    (answer({"minAmount": DROP}), "defaultFee.minAmount: expected a string of non-negative"),
    (answer(reduced={"maxPrice": "-1"}), "reducedFees[0].maxPrice"),
    (answer(reduced={"minPrice": "1e3"}), "reducedFees[0].minPrice"),
    (answer(reduced={"minPrice": "5001"}), "reducedFees[0]: minPrice 5001 is above maxPrice 5000"),
    (answer(reduced={"title": DROP}), "reducedFees[0].title"),
    (answer(reduced={"expiresAt": DROP}), "reducedFees[0].expiresAt"),
    (answer(reduced={"expiresAt": "soon"}), "reducedFees[0].expiresAt"),
    (answer(reduced={"expiresAt": True}), "reducedFees[0].expiresAt"),
    (b'{"defaultFee": {"fraction": "0.05", "minAmount": "1"}}', "reducedFees: expected a list"),
    (b'{"reducedFees": []}', "defaultFee: expected an object, got missing"),
    (b"[]", "response body: expected an object"),
    (b'{"defaultFee": {"fra', "response body: not valid JSON"),
]


@pytest.mark.parametrize(("body", "path"), BAD_ANSWERS)
def test_an_answer_with_a_wrong_value_is_retryable_names_its_path_and_keeps_nothing(
    client: redis.Redis, body: bytes, path: str
) -> None:
    with FakeDMarket() as fake:
        fake.break_fees(body)
        source = dmarket_fees(fake.url, client)
        # When the fees are asked for, Then the error names the path of the wrong value
        with pytest.raises(RetryableMarketError) as refused:
            source.table()
        assert path in str(refused.value)
        # and nothing is kept: no table, no claim in the way of the next ask
        assert fee_keys(client) == []
        # When DMarket answers properly again, Then the next ask reads it at once
        fake.break_fees(None)
        fake.set_fees(FakeFees("0.05", 1, ()))
        assert source.table().default_bps == 500
        assert len(fake.requests_to(PATH)) == 2


def test_a_wrong_value_on_a_later_page_fails_the_whole_list(client: redis.Redis) -> None:
    # Given a list of 150 reduced fees whose 121st has a fraction of 1.5
    listed = list(fees(150).reduced)
    listed[120] = FakeReducedFee("Broken", "1.5", 1, 10, 2_000_000_000)
    with FakeDMarket(fees=FakeFees("0.05", 1, tuple(listed))) as fake:
        with pytest.raises(
            RetryableMarketError, match=r"offset 100\): reducedFees\[20\]\.fraction"
        ):
            dmarket_fees(fake.url, client).table()
        # Then the first page, which was fine, is not kept either
        assert fee_keys(client) == []


def test_the_fee_requests_spend_the_fees_budget_and_no_other(
    client: redis.Redis, redis_url: str
) -> None:
    # Given a DMarket that allows 2 fee requests a second, and a list of five pages
    with FakeDMarket(fees=fees(450), class_budgets={"fees": 2, "market_items": 2}) as fake:
        settings = Settings(dmarket_url=fake.url, broker_url=redis_url)
        budgets = dmarket_budgets(settings)
        # When the list is read through a transport holding the fleet's budgets
        table = dmarket_fees(fake.url, client, budgets=budgets).table()
        assert len(table.reduced) == 450
        # Then its five requests were paced by the fees' budget: none refused, none over
        requests = fake.requests_to(PATH)
        assert [request.status for request in requests] == [200] * 5
        assert requests_over_rate([request.received_at for request in requests], 2) == 0
        # and only the fees' budget counted them
        granted = {
            key.decode()
            for key in client.scan_iter(f"{redis_keys.BUDGET_PREFIX}*")
            if key.endswith(b":grants")
        }
        assert granted == {f"{redis_keys.BUDGET_PREFIX}{fake.url}#fees:grants"}


def test_the_fees_budget_is_its_own_at_dmarkets_rate_for_the_auth_mode(redis_url: str) -> None:
    unsigned = Settings.from_env({"CELERY_BROKER_URL": redis_url})
    assert unsigned.dmarket_fee_requests_per_second == 2.0
    budgets = dmarket_budgets(unsigned)
    assert budgets[FEES] not in (budgets[MARKET_ITEMS], budgets[AGGREGATED_PRICES])
    assert budgets[FEES] is not budgets[LAST_SALES]
    budget = budgets[FEES]
    assert budget is not None and (budget.limit, budget.window_seconds) == (2, 1.05)
    overridden = Settings.from_env(
        {"CELERY_BROKER_URL": redis_url, "MARKETSCAN_DMARKET_FEE_REQUESTS_PER_SECOND": "3"}
    )
    assert overridden.dmarket_fee_requests_per_second == 3.0


def test_a_scan_names_its_fee_source_by_its_market(redis_url: str) -> None:
    settings = Settings(broker_url=redis_url)
    # A DMarket scan started without MARKETSCAN_FEE freezes DMarket's fees as its source
    asked = ScanParams(game="csgo", market="dmarket", reference="best_bid", fee=0.06)
    dmarket = asked.configured(settings)
    assert dmarket.fee_source == FEE_SOURCE_DMARKET
    with FakeDMarket() as fake:
        transport = DMarketTransport(process_clients.new_http_client(fake.url, 5.0))
        # and reads DMarket's fees through its market's transport
        assert isinstance(fee_source(dmarket, settings, transport), DMarketFees)
        assert fee_source(dmarket, settings, transport).table().default_bps == 500
        # while a row stored before fees were looked up (no source frozen) keeps its fee
        assert isinstance(fee_source(asked, settings, transport), ConfiguredFees)
        transport.client.close()
    # without one, it has its configured fee
    configured = fee_source(dmarket, settings, None)
    assert isinstance(configured, ConfiguredFees)
    assert configured.table().fee_for(AK, 1000, START).source == "configured"
    # A simulated scan has its configured fee, or with fee_table=1 the simulated market's
    # table, its own fee the default
    assert isinstance(fee_source(ScanParams(game="csgo", fee=0.06), settings, None), ConfiguredFees)
    tabled = ScanParams(game="csgo", fee=0.06, market_options={"fee_table": 1})
    simulated = fee_source(tabled, settings, None)
    assert isinstance(simulated, SimulatedFees)
    table = simulated.table()
    assert table.default_bps == 600 and table.reduced
    assert table.fee_for(AK, 1000, table.fetched_at).source == "reduced"
