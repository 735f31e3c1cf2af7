"""Chat command arguments: what the bot reads from a message's words, and how it refuses."""

from __future__ import annotations

import uuid

import pytest

from worker.bot import arguments
from worker.errors import ConfigError, InvalidInput
from worker.settings import Settings


def test_scan_takes_a_game_then_an_optional_level_and_price_range() -> None:
    assert arguments.scan_request(["CSGO"]) == arguments.ScanRequest("csgo")
    assert arguments.scan_request(["csgo", "pro"]) == arguments.ScanRequest("csgo", "pro")
    assert arguments.scan_request(["dota2", "1-50"]) == arguments.ScanRequest(
        "dota2", "standard", 100, 5000
    )
    assert arguments.scan_request(["rust", "pro", "0.5-20"]) == arguments.ScanRequest(
        "rust", "pro", 50, 2000
    )


@pytest.mark.parametrize(
    ("words", "named"),
    [
        ([], "GAME is missing"),
        (["csgo", "pro", "cheap"], "MIN-MAX must be two USD prices"),
        (["csgo", "pro", "1-50", "x"], "too many arguments"),
        (["csgo", "50-1"], "MIN <= MAX"),
    ],
)
def test_scan_refuses_bad_words_naming_the_argument(words: list[str], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        arguments.scan_request(words)


def test_watch_takes_game_level_every_and_an_optional_range() -> None:
    request, every, fresh = arguments.watch_request(["csgo", "standard", "15m", "1-2"])
    assert (request, every, fresh) == (
        arguments.ScanRequest("csgo", "standard", 100, 200),
        "15m",
        False,
    )
    with pytest.raises(InvalidInput, match="EVERY is missing"):
        arguments.watch_request(["csgo", "standard"])


def test_a_fresh_watch_is_asked_for_by_the_word_fresh_last() -> None:
    request, every, fresh = arguments.watch_request(["csgo", "medium", "2s", "1-50", "Fresh"])
    assert (request, every, fresh) == (
        arguments.ScanRequest("csgo", "medium", 100, 5000),
        "2s",
        True,
    )
    assert arguments.watch_request(["csgo", "medium", "2s", "fresh"])[2] is True
    with pytest.raises(InvalidInput, match="EVERY is missing"):
        arguments.watch_request(["csgo", "medium", "fresh"])


def test_a_scan_is_named_by_its_id_or_the_first_eight_hex_digits_messages_show() -> None:
    scan_id = uuid.uuid4()
    assert arguments.scan_ref([str(scan_id)], "/status SCAN").id_prefix == scan_id.hex
    assert arguments.scan_ref([scan_id.hex[:8]], "/status SCAN").id_prefix == scan_id.hex[:8]
    assert (
        arguments.scan_ref([scan_id.hex[:8].upper()], "/status SCAN").id_prefix == (scan_id.hex[:8])
    )
    with pytest.raises(InvalidInput, match="SCAN must be an id or its first 8 hex digits"):
        arguments.scan_ref(["abc"], "/status SCAN")
    with pytest.raises(InvalidInput, match="SCAN is missing"):
        arguments.scan_ref([], "/top SCAN [N]")


def test_top_shows_five_by_default_and_at_most_twenty() -> None:
    assert arguments.top_count(["abcdef12"]) == 5
    assert arguments.top_count(["abcdef12", "20"]) == 20
    with pytest.raises(InvalidInput, match="N must be a whole number from 1 to 20"):
        arguments.top_count(["abcdef12", "21"])


def test_a_chat_commands_scan_id_depends_on_its_chat_and_message_alone() -> None:
    assert arguments.chat_scan_id(1, 2) == arguments.chat_scan_id(1, 2)
    assert len({arguments.chat_scan_id(1, 2), arguments.chat_scan_id(2, 1)}) == 2
    assert arguments.chat_watch_id(1, 2) != arguments.chat_scan_id(1, 2)


def test_the_allow_list_is_numeric_ids_and_empty_by_default() -> None:
    assert Settings.from_env({}).telegram_allowed_users == frozenset()
    env = {"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "12345, 67890 12345"}
    assert Settings.from_env(env).telegram_allowed_users == {12345, 67890}
    with pytest.raises(ConfigError, match="MARKETSCAN_TELEGRAM_ALLOWED_USERS: '@me'"):
        Settings.from_env({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "@me"})


def test_the_bots_market_options_are_key_value_pairs() -> None:
    env = {"MARKETSCAN_BOT_MARKET_OPTIONS": "items=2000,seed=7,name=x"}
    assert dict(Settings.from_env(env).bot_market_options) == {
        "items": 2000,
        "seed": 7,
        "name": "x",
    }
    with pytest.raises(ConfigError, match="MARKETSCAN_BOT_MARKET_OPTIONS: 'items' must be"):
        Settings.from_env({"MARKETSCAN_BOT_MARKET_OPTIONS": "items"})
