"""Scan parameters: validated on the way in, round-tripped through JSON, unknowns refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput
from worker.settings import Settings


def test_params_round_trip_through_json() -> None:
    params = ScanParams(game="cs2", level="pro", min_price_cents=100, max_price_cents=5000,
                        page_size=50, user_id=2**40, metadata={"a": 1},
                        market_options={"items": 10})  # fmt: skip
    assert ScanParams.from_json(params.to_json()) == params


def test_price_band_is_the_level_narrowed_by_the_scan() -> None:
    params = ScanParams(game="csgo", level="standard", min_price_cents=500)
    assert params.price_band == (500, 10_000)
    assert ScanParams(game="csgo", max_price_cents=300).price_band == (100, 300)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"game": "minecraft"}, "game must be one of"),
        ({"market": "steam"}, "market must be one of"),
        ({"level": ""}, "level must be a level's name"),
        (
            {
                "level": "pro",
                "level_rule": {
                    "name": "boost",
                    "min_price_cents": 1,
                    "max_price_cents": 2,
                    "min_profit": 0.1,
                },
            },
            "level_rule must be the rule of level",
        ),
        ({"level_rule": {"name": "standard"}}, "level_rule must be an object of name"),
        ({"page_size": 0}, "page_size must be an integer from 1 to 100"),
        ({"page_size": "10"}, "page_size"),
        ({"min_price_cents": 10, "max_price_cents": 5}, "must not exceed max price"),
        ({"min_price_cents": -1}, "min_price_cents must be an integer from 0 to"),
        ({"user_id": "me"}, "user_id must be an integer"),
        ({"fee": 1.2}, "fee must be a finite number from 0 to below 1"),
        ({"metadata": [1]}, "metadata must be a JSON object"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ScanParams(**{"game": "csgo", **fields})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("csgo", "scan params must be a JSON object"),
        ({}, "must include game"),
        ({"game": "csgo", "colour": "red"}, "unknown scan parameter 'colour'"),
        ({"game": "csgo", "version": 9}, "version must be 1"),
    ],
)
def test_task_arguments_are_checked(data: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ScanParams.from_json(data)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"game": "csgo", "fee": NaN}', "fee must be a finite number from 0 to below 1"),
        ('{"game": "csgo", "fee": Infinity}', "fee must be a finite number from 0 to below 1"),
        ('{"game": "csgo", "fee": 1e400}', "fee must be a finite number from 0 to below 1"),
        ('{"game": "csgo", "min_price_cents": 1e400}', "min_price_cents must be an integer"),
        ('{"game": "csgo", "max_price_cents": NaN}', "max_price_cents must be an integer"),
        ('{"game": "csgo", "max_price_cents": 1' + "0" * 400 + "}", "max_price_cents must be"),
    ],
)
def test_non_finite_and_absurd_numbers_in_json_params_are_refused_by_name(
    document: str, message: str
) -> None:
    # Python's json module reads NaN, Infinity and 1e400 (as inf) without complaint.
    with pytest.raises(InvalidInput, match=message):
        ScanParams.from_json(json.loads(document))


def test_configured_params_freeze_the_settings_fee_and_level() -> None:
    # Given settings with a 10 % fee and a level of their own
    settings = Settings.from_env(
        {"MARKETSCAN_FEE": "0.1", "MARKETSCAN_LEVELS": "cheap=50-5000:0.02"}
    )
    # When params naming that level are configured
    params = ScanParams(game="csgo", level="cheap", min_price_cents=70).configured(settings)
    # Then the fee and the level's rule are frozen in, and survive the trip through JSON
    assert (params.fee, params.price_band, params.min_profit) == (0.1, (70, 5000), 0.02)
    assert ScanParams.from_json(params.to_json()) == params


def test_a_level_the_settings_do_not_define_is_refused_naming_the_configured_ones() -> None:
    settings = Settings.from_env({"MARKETSCAN_LEVELS": "cheap=50-5000:0.02,big=1-9:0.5"})
    with pytest.raises(InvalidInput, match="level must be one of big, cheap, got 'standard'"):
        ScanParams(game="csgo").configured(settings)


def test_params_stored_before_levels_were_configuration_use_the_default_levels() -> None:
    stored = {"version": 1, "game": "csgo", "level": "pro", "fee": 0.07}
    assert ScanParams.from_json(stored).price_band == (10_000, 500_000)


@pytest.mark.parametrize(("field", "variable"), [("fee", "MARKETSCAN_FEE"),
                                                 ("level_rule", "MARKETSCAN_LEVELS")])  # fmt: skip
def test_a_start_request_may_not_set_what_the_worker_configures(field: str, variable: str) -> None:
    with pytest.raises(
        InvalidInput, match=rf"{field} is the worker's configuration \({variable}\)"
    ):
        ScanParams.from_request({"game": "csgo", field: 0.0})


def test_same_request_ignores_only_what_the_configuration_froze_in() -> None:
    settings = Settings.from_env({"MARKETSCAN_FEE": "0.1"})
    asked = ScanParams(game="csgo", user_id=3)
    assert asked.configured(settings).same_request(asked.configured(Settings()))
    assert not asked.configured(settings).same_request(ScanParams(game="csgo", user_id=4))


def test_a_dmarket_scan_is_frozen_to_the_listing_api_it_starts_on() -> None:
    v1 = Settings.from_env({"MARKETSCAN_DMARKET_API": "v1"})
    asked = ScanParams(game="csgo", market="dmarket")
    assert asked.configured(v1).market_options == {"api": "v1"}
    assert asked.configured(Settings()).market_options == {"api": "v2"}
    # asked for, it is kept, and the reference follows the scan's API, not the worker's
    chosen = ScanParams(game="csgo", market="dmarket", market_options={"api": "v1"})
    assert chosen.configured(Settings()).reference == "suggested"
    # a simulated scan has no listing API to freeze
    assert ScanParams(game="csgo").configured(v1).market_options == {}


def test_a_listing_api_dmarket_does_not_have_is_refused_naming_the_option() -> None:
    asked = ScanParams(game="csgo", market="dmarket", market_options={"api": "v3"})
    with pytest.raises(InvalidInput, match="market option api must be one of v2, v1, got 'v3'"):
        asked.configured(Settings())


def test_a_scan_stored_before_the_api_was_frozen_is_the_same_request() -> None:
    stored = ScanParams(game="csgo", market="dmarket", reference="best_bid")
    assert stored.same_request(ScanParams(game="csgo", market="dmarket").configured(Settings()))
    v1 = ScanParams(game="csgo", market="dmarket", market_options={"api": "v1"})
    assert not v1.configured(Settings()).same_request(stored.configured(Settings()))
