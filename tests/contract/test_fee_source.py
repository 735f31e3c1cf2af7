"""One behaviour suite for every fee source (worker.markets.fees.source): DMarket's published
fees against the loopback DMarket through the fleet's cache in a real Redis, the one
configured fee, and the memory stub shipped in the package.

Each case is given what the market publishes (the loopback's FakeFees, whose `fee_for` is
the oracle) and says whether it serves that table or only the configured fee; the suite
says what every source's table must answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

import pytest
import redis

from tests.fakes.dmarket_server import FakeDMarket, FakeFees, FakeReducedFee, ScriptedReply
from worker.domain.fees import CONFIGURED, FeeTable, ReducedFee
from worker.errors import RetryableMarketError
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fees.cache import FeeCache
from worker.markets.fees.configured import ConfiguredFees
from worker.markets.fees.dmarket import DMarketFees
from worker.markets.fees.source import FeeSource
from worker.markets.fleet import process_clients
from worker.testing.dmarket_fees import Oracle
from worker.testing.memory_fees import MemoryFees

AK = "AK-47 | Redline (Field-Tested)"
AWP = "AWP | Asiimov (Field-Tested)"
GLOCK = "Glock-18 | Fade (Factory New)"
# More reduced fees than one page holds, so DMarket's are walked over two pages.
FILLERS = 150


def published(now: float) -> FakeFees:
    """What the market publishes at `now`: 5 % and at least 5 cents by default; AK-47 at
    2 % in [$1, $50] for an hour, AWP at 3.505 % (351 bp, rounded up) in [$10, $500] for two,
    the Glock's 1 % expired a minute ago; and fillers."""
    expiry = int(now)
    reduced = [
        FakeReducedFee(AK, "0.02", 100, 5000, expiry + 3600),
        FakeReducedFee(AWP, "0.03505", 1000, 50000, expiry + 7200),
        FakeReducedFee(GLOCK, "0.01", 1, 100000, expiry - 60),
    ]
    reduced += [
        FakeReducedFee(f"Filler {n}", "0.04", 1, 100000, expiry + 3600 + n) for n in range(FILLERS)
    ]
    return FakeFees("0.05", 5, tuple(reduced))


def bps(fraction: str) -> int:
    return int((Decimal(fraction) * 10_000).to_integral_value(rounding=ROUND_CEILING))


def table_of(fees: FakeFees, fetched_at: float) -> FeeTable:
    """The published fees as a table, built without the DMarket parser (the memory case)."""
    reduced = tuple(
        ReducedFee(
            fee.title,
            bps(fee.fraction),
            fee.min_price_cents,
            fee.max_price_cents,
            float(fee.expires_at),
        )
        for fee in fees.reduced
    )
    return FeeTable(bps(fees.fraction), fees.min_amount_cents, reduced, fetched_at)


@dataclass
class FeeCase:
    """A source over a market that publishes the fees given, and how to break it."""

    source: Callable[[FakeFees], FeeSource]
    # Whether the source serves the market's published table (else the configured fee).
    publishes: bool
    # The next answer the source gets cannot be read (None: the source never asks).
    break_next: Callable[[], None] | None

    def expected(self, fees: FakeFees, title: str, price_cents: int, now: float) -> Oracle:
        if self.publishes:
            return fees.fee_for(title, price_cents, now)
        # The configured fee: the default's rate for every title, no floor.
        plain = FakeFees(fees.fraction, 0).fee_for(title, price_cents, now)
        return Oracle(plain.bps, CONFIGURED, plain.cents)


def dmarket_case(stack: ExitStack, redis_url: str) -> FeeCase:
    client = redis.Redis.from_url(redis_url)
    stack.callback(client.close)
    servers: list[FakeDMarket] = []

    def source(fees: FakeFees) -> FeeSource:
        fake = stack.enter_context(FakeDMarket(fees=fees))
        servers.append(fake)
        transport = DMarketTransport(process_clients.new_http_client(fake.url, 5.0))
        stack.callback(transport.client.close)
        return DMarketFees(transport, "a8db", FeeCache(client, "dmarket", "a8db"))

    def break_next() -> None:
        fake = servers[-1]
        fake.script(len(fake.requests), ScriptedReply(body=b'{"defaultFee": {"fra'))

    return FeeCase(source, True, break_next)


def memory_case() -> FeeCase:
    made: list[MemoryFees] = []

    def source(fees: FakeFees) -> FeeSource:
        made.append(MemoryFees(table_of(fees, time.time())))
        return made[-1]

    return FeeCase(source, True, lambda: made[-1].fail_next())


def configured_case() -> FeeCase:
    return FeeCase(lambda fees: ConfiguredFees(float(fees.fraction)), False, None)


@pytest.fixture(params=["dmarket", "configured", "memory"])
def case(request: pytest.FixtureRequest) -> Iterator[FeeCase]:
    if request.param == "memory":
        yield memory_case()
    elif request.param == "configured":
        yield configured_case()
    else:
        with ExitStack() as stack:
            yield dmarket_case(stack, request.getfixturevalue("redis_url"))


def test_the_table_holds_the_default_its_floor_and_every_reduced_fee(case: FeeCase) -> None:
    before = time.time()
    fees = published(before)
    table = case.source(fees).table()
    assert table.default_bps == 500
    assert before - 1 <= table.fetched_at <= time.time()
    if case.publishes:
        assert table.min_amount_cents == 5
        assert table.default_source == "default"
        assert [
            (fee.title, fee.bps, fee.min_price_cents, fee.max_price_cents, fee.expires_at)
            for fee in table.reduced
        ] == [
            (fee.title, bps(fee.fraction), fee.min_price_cents, fee.max_price_cents, fee.expires_at)
            for fee in fees.reduced
        ]
        # Read again when AK-47's reduction lapses, the first to lapse after the fetch.
        assert table.expires_at() == fees.reduced[0].expires_at
    else:
        assert (table.min_amount_cents, table.reduced, table.default_source) == (0, (), CONFIGURED)


@pytest.mark.parametrize(
    ("title", "price_cents"),
    [(AK, 100), (AK, 1234), (AK, 5000), (AWP, 1000), (AWP, 33333), (AWP, 50000)],
)
def test_a_sale_inside_a_reduced_band_pays_the_reduced_fee(
    case: FeeCase, title: str, price_cents: int
) -> None:
    now = time.time()
    fees = published(now)
    applied = case.source(fees).table().fee_for(title, price_cents, now)
    expected = case.expected(fees, title, price_cents, now)
    assert (applied.bps, applied.source, applied.cents) == expected
    if case.publishes:
        assert expected.source == "reduced"


@pytest.mark.parametrize(
    ("title", "price_cents"),
    [(AK, 99), (AK, 5001), (AWP, 999), (AWP, 50001), ("Nova | Night (Well-Worn)", 1234)],
)
def test_a_sale_outside_every_band_of_its_title_pays_the_default(
    case: FeeCase, title: str, price_cents: int
) -> None:
    now = time.time()
    fees = published(now)
    applied = case.source(fees).table().fee_for(title, price_cents, now)
    assert (applied.bps, applied.source, applied.cents) == case.expected(
        fees, title, price_cents, now
    )
    assert applied.bps == 500 and applied.source in ("default", CONFIGURED)


def test_an_expired_reduced_fee_is_not_used(case: FeeCase) -> None:
    now = time.time()
    fees = published(now)
    table = case.source(fees).table()
    # The Glock's reduction expired before the fetch; AK-47's lapses an hour after it.
    glock = table.fee_for(GLOCK, 2000, now)
    assert (glock.bps, glock.source, glock.cents) == case.expected(fees, GLOCK, 2000, now)
    assert glock.bps == 500
    lapsed_at = fees.reduced[0].expires_at
    for moment in (lapsed_at - 1, lapsed_at, lapsed_at + 1):
        applied = table.fee_for(AK, 1000, moment)
        assert (applied.bps, applied.source, applied.cents) == case.expected(fees, AK, 1000, moment)
    assert table.fee_for(AK, 1000, lapsed_at).bps == 500


@pytest.mark.parametrize(("title", "price_cents"), [(AK, 100), ("Nova | Night (Well-Worn)", 50)])
def test_no_fee_is_below_the_minimum_amount(case: FeeCase, title: str, price_cents: int) -> None:
    now = time.time()
    fees = published(now)
    applied = case.source(fees).table().fee_for(title, price_cents, now)
    assert (applied.bps, applied.source, applied.cents) == case.expected(
        fees, title, price_cents, now
    )
    # 2 % of $1 is 2 cents, 5 % of 50 cents 3 cents (2.5 rounded up): the floor is 5
    assert applied.cents == (5 if case.publishes else -(-price_cents * applied.bps // 10_000))


def test_a_table_that_cannot_be_read_is_retryable_and_the_next_ask_gets_it(
    case: FeeCase,
) -> None:
    if case.break_next is None:
        pytest.skip("the configured fee asks nothing, so it cannot be answered badly")
    now = time.time()
    source = case.source(published(now))
    case.break_next()
    with pytest.raises(RetryableMarketError):
        source.table()
    assert source.table().fee_for(AK, 1234, now).source == (
        "reduced" if case.publishes else CONFIGURED
    )
