"""Which reference a scan may use on which market, and when the server's headers say wait."""

from __future__ import annotations

import httpx
import pytest

from worker.domain.reference import reference_for
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput
from worker.markets.dmarket.transport import exhausted_wait
from worker.settings import Settings


@pytest.mark.parametrize(
    ("market", "api", "asked", "frozen"),
    [
        ("dmarket", "v2", None, "best_bid"),
        ("dmarket", "v2", "last_sales", "last_sales"),
        ("dmarket", "v1", None, "suggested"),
        ("dmarket", "v1", "best_bid", "best_bid"),
        ("simulated", "v2", None, "suggested"),
    ],
)
def test_a_scan_gets_the_reference_it_asked_for_or_its_markets_default(
    market: str, api: str, asked: str | None, frozen: str
) -> None:
    assert reference_for(asked, market, api) == frozen
    params = ScanParams(game="csgo", market=market, reference=asked)
    assert params.configured(Settings(dmarket_api=api)).reference == frozen


@pytest.mark.parametrize(
    ("market", "api", "asked", "message"),
    [
        ("dmarket", "v2", "suggested", "reference 'suggested' is not available with DMarket v2: "
         "allowed are best_bid, last_sales, skinport"),
        ("simulated", "v2", "best_bid", "reference 'best_bid' is not available with the "
         "simulated market: allowed are suggested"),
        ("dmarket", "v1", "mid", "reference must be one of best_bid, last_sales, suggested, "
         "skinport, got 'mid'"),
    ],
)  # fmt: skip
def test_a_reference_the_market_cannot_give_is_refused_naming_the_allowed_ones(
    market: str, api: str, asked: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        reference_for(asked, market, api)
    assert str(refused.value) == message


def test_an_unknown_reference_is_refused_when_the_params_are_read() -> None:
    with pytest.raises(InvalidInput, match=r"^reference must be one of best_bid, last_sales"):
        ScanParams.from_json({"game": "csgo", "reference": "median"})


def test_a_stored_scan_without_a_reference_is_the_same_request_as_its_configured_repeat() -> None:
    stored = ScanParams(game="csgo", market="dmarket")
    again = stored.configured(Settings(dmarket_api="v2"))
    assert stored.same_request(again)
    assert not ScanParams(game="csgo", market="dmarket", reference="last_sales").same_request(again)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X-RateLimit-Remaining-Second": "0", "RateLimit-Reset": "1"}, 1.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "2"}, 2.0),
        ({"RateLimit-Remaining": "0"}, 1.0),
        ({"X-RateLimit-Remaining-Second": "1", "RateLimit-Remaining": "5"}, None),
        ({}, None),
    ],
)
def test_a_spent_server_window_is_waited_for_its_reset(
    headers: dict[str, str], wait: float | None
) -> None:
    assert exhausted_wait(httpx.Headers(headers)) == wait
