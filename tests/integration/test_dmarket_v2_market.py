"""DMarket's v2 offers through the client against the loopback fake: the query it sends,
the limit refused before any request, and the errors a user can act on."""

from __future__ import annotations

from collections.abc import Iterator

import nacl.signing
import pytest

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker.domain.scan_params import ScanParams
from worker.errors import ConfigError, InvalidInput, PermanentMarketError
from worker.markets.dmarket.market import DMarketMarket
from worker.settings import Settings

ITEMS = [dmarket_item(f"offer-{n}", f"M4A4 | Howl #{n}", 100 * n, 150 * n) for n in range(1, 8)]
OFFERS_PATH = "/marketplace-api/v2/offers"


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS) as server:
        yield server


def v2_market(server: FakeDMarket) -> DMarketMarket:
    return DMarketMarket(base_url=server.url, game="csgo", timeout_seconds=2.0, api="v2")


def signing_keys() -> tuple[str, str]:
    signing_key = nacl.signing.SigningKey.generate()
    public = bytes(signing_key.verify_key)
    return public.hex(), (bytes(signing_key) + public).hex()


def test_v2_asks_for_offers_with_game_id_and_limit_and_no_currency(fake: FakeDMarket) -> None:
    with v2_market(fake) as market:
        page = market.fetch_page(None, 3)
    (request,) = fake.requests
    assert request.path == OFFERS_PATH
    assert request.query == {"gameId": "a8db", "limit": "3"}
    assert [item.price_cents for item in page.items] == [100, 200, 300]


def test_v2_is_what_a_scan_uses_by_default_and_v1_when_configured(
    fake: FakeDMarket, redis_url: str
) -> None:
    params = ScanParams(game="csgo", market="dmarket")
    assert Settings.from_env({}).dmarket_api == "v2"
    for api, path in (("v2", OFFERS_PATH), ("v1", "/exchange/v1/market/items")):
        settings = Settings(dmarket_url=fake.url, dmarket_api=api, broker_url=redis_url)
        with DMarketMarket.from_params(params, settings) as market:
            market.fetch_page(None, 2)
        assert fake.requests[-1].path == path


def test_an_unknown_api_version_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^MARKETSCAN_DMARKET_API='v3' .*v2, v1"):
        Settings.from_env({"MARKETSCAN_DMARKET_API": "v3"})


@pytest.mark.parametrize("limit", [101, 0])
def test_a_limit_outside_1_to_100_is_refused_before_any_request(
    fake: FakeDMarket, limit: int
) -> None:
    with v2_market(fake) as market, pytest.raises(InvalidInput, match=r"^limit: must be between"):
        market.fetch_page(None, limit)
    assert fake.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"code": "BadRequest", "message": "limit: must be no greater than 100."},
        {"Code": "BadRequest", "Message": "limit: must be no greater than 100."},
    ],
)
def test_either_casing_of_an_error_body_becomes_the_error_message(
    fake: FakeDMarket, body: dict[str, str]
) -> None:
    fake.script(0, ScriptedReply.json_body(body, status=400))
    with v2_market(fake) as market, pytest.raises(PermanentMarketError) as refused:
        market.fetch_page(None, 3)
    assert str(refused.value) == (
        "DMarket answered 400: BadRequest: limit: must be no greater than 100."
    )


def test_a_401_to_an_unsigned_request_says_to_set_the_two_key_variables() -> None:
    server_public, _ = signing_keys()
    with (
        FakeDMarket(ITEMS, public_key_hex=server_public) as fake,
        v2_market(fake) as market,
        pytest.raises(PermanentMarketError) as refused,
    ):
        market.fetch_page(None, 3)
    assert str(refused.value).startswith(
        "DMarket refused an unsigned request: set MARKETSCAN_DMARKET_PUBLIC_KEY and "
        "MARKETSCAN_DMARKET_SECRET_KEY"
    )
    assert "Unauthorized: Unauthorized" in str(refused.value)


def test_a_401_to_a_signed_request_says_the_keys_were_refused(redis_url: str) -> None:
    server_public, _ = signing_keys()
    other_public, other_secret = signing_keys()
    with FakeDMarket(ITEMS, public_key_hex=server_public) as fake:
        settings = Settings(
            dmarket_url=fake.url,
            broker_url=redis_url,
            dmarket_requests_per_second=50.0,
            dmarket_public_key=other_public,
            dmarket_secret_key=other_secret,
        )
        market = DMarketMarket.from_params(ScanParams(game="csgo", market="dmarket"), settings)
        with market, pytest.raises(PermanentMarketError) as refused:
            market.fetch_page(None, 3)
    assert str(refused.value).startswith(
        "DMarket refused the keys in MARKETSCAN_DMARKET_PUBLIC_KEY and "
        "MARKETSCAN_DMARKET_SECRET_KEY"
    )


def test_a_key_pair_that_cannot_sign_is_refused_where_the_market_is_built(redis_url: str) -> None:
    # Given settings (which only parse) holding a secret key whose public half is another's
    public_key, _ = signing_keys()
    settings = Settings(
        broker_url=redis_url, dmarket_public_key=public_key, dmarket_secret_key="ab" * 64
    )
    # When a DMarket scan's market is built, Then it is refused, naming the variable at fault
    # and quoting no key
    with pytest.raises(ConfigError, match=r"^MARKETSCAN_DMARKET_SECRET_KEY: ") as refused:
        DMarketMarket.from_params(ScanParams(game="csgo", market="dmarket"), settings)
    assert "ab" * 16 not in str(refused.value)


def test_signed_v2_requests_verify_at_the_server(redis_url: str) -> None:
    public_key, secret_key = signing_keys()
    with FakeDMarket(ITEMS, public_key_hex=public_key) as fake:
        settings = Settings(
            dmarket_url=fake.url,
            broker_url=redis_url,
            dmarket_requests_per_second=50.0,
            dmarket_public_key=public_key,
            dmarket_secret_key=secret_key,
        )
        market = DMarketMarket.from_params(ScanParams(game="csgo", market="dmarket"), settings)
        with market:
            market.fetch_page(None, 3)
    assert [(r.path, r.status, r.signed) for r in fake.requests] == [(OFFERS_PATH, 200, True)]
