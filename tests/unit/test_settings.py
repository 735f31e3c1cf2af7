"""Settings are read from the environment, and a bad value names its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.retention_days, settings.lease_seconds, settings.fee) == (7, 30, 0.07)


def test_each_variable_is_its_fields_name_with_the_prefix_but_the_two_shared_urls() -> None:
    # Given the variables Settings reads, and its fields' names
    read = set(settings_variables())
    prefixed = {"MARKETSCAN_" + item.name.upper() for item in fields(Settings)}
    # Then each is MARKETSCAN_ and a field's name, but the URLs every PostgreSQL and Celery
    # tool knows by their own names
    assert read - prefixed == {"DATABASE_URL", "CELERY_BROKER_URL"}
    # (fee_configured is whether MARKETSCAN_FEE is set: one variable, two fields.)
    assert prefixed - read == {
        "MARKETSCAN_DATABASE_URL",
        "MARKETSCAN_BROKER_URL",
        "MARKETSCAN_FEE_CONFIGURED",
    }


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:p@db/x",
            "CELERY_BROKER_URL": "redis://r:6379/1",
            "MARKETSCAN_RETENTION_DAYS": "14",
            "MARKETSCAN_LEASE_SECONDS": "12",
            "MARKETSCAN_FEE": "0.05",
            "MARKETSCAN_CLEANUP_PAUSE_RATIO": "0",
            "MARKETSCAN_DMARKET_URL": "http://127.0.0.1:9999/",
        }
    )
    assert settings.database_url == "postgresql://u:p@db/x"
    assert settings.broker_url == "redis://r:6379/1"
    assert (settings.retention_days, settings.lease_seconds, settings.fee) == (14, 12, 0.05)
    assert settings.dmarket_url == "http://127.0.0.1:9999"
    assert settings.cleanup_pause_ratio == 0.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MARKETSCAN_RETENTION_DAYS", "seven", "is not a valid int"),
        ("MARKETSCAN_RETENTION_DAYS", "0", "must be >= 1"),
        ("MARKETSCAN_LEASE_SECONDS", "1.5", "is not a valid int"),
        ("MARKETSCAN_FEE", "1.5", "must be between 0.0 and 0.99"),
        ("MARKETSCAN_CLEANUP_HOUR_UTC", "24", "must be between 0 and 23"),
        ("MARKETSCAN_CLEANUP_PAUSE_RATIO", "-0.5", "must be between 0.0 and 100.0"),
        ("MARKETSCAN_CLEANUP_PAUSE_RATIO", "half", "is not a valid float"),
        ("MARKETSCAN_RECOVERY_INTERVAL_SECONDS", "fast", "is not a valid float"),
        ("MARKETSCAN_METRICS_ENABLED", "maybe", "must be one of 1, true, yes, on, 0, false"),
        ("MARKETSCAN_SLICE_BACKLOG_MS", "-1", "must be between 0 and 60000"),
        ("MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS", "0", "must be between 1 and 600"),
        ("MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS", "2.5", "is not a valid int"),
        ("MARKETSCAN_DATABASE_STATEMENT_TIMEOUT_SECONDS", "-1", "must be between 0 and 86400"),
        # An int no float can hold: out of range, not an OverflowError.
        ("MARKETSCAN_RETENTION_DAYS", "9" * 400, "is out of range: must be >= 1"),
    ],
)
def test_invalid_values_fail_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        Settings.from_env({name: value})
    assert str(error.value).startswith(f"{name}={value!r}")


@pytest.mark.parametrize(("value", "enabled"), [("", True), ("off", False), ("TRUE", True)])
def test_metrics_are_on_unless_turned_off(value: str, enabled: bool) -> None:
    assert Settings.from_env({"MARKETSCAN_METRICS_ENABLED": value}).metrics_enabled is enabled


def test_database_url_must_be_postgres() -> None:
    from worker.db import driver_url

    with pytest.raises(ConfigError, match="DATABASE_URL must be a postgresql"):
        driver_url("mysql://x@y/z")
    assert driver_url("postgresql://u@h/d").startswith("postgresql+psycopg2://")


# A DMarket key pair in the account page's format: public hex (32 bytes), secret hex
# (64 bytes: the Ed25519 seed, then the public key).
DMARKET_PUBLIC_KEY = "875dad0a1a7c2bf9146f24aa82cc51a6f54eb389d73342d61475b624a21575d2"


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"MARKETSCAN_DMARKET_PUBLIC_KEY": DMARKET_PUBLIC_KEY}, "MARKETSCAN_DMARKET_SECRET_KEY"),
        ({"MARKETSCAN_DMARKET_SECRET_KEY": "ab" * 64}, "MARKETSCAN_DMARKET_PUBLIC_KEY"),
        (
            {"MARKETSCAN_DMARKET_PUBLIC_KEY": "zz", "MARKETSCAN_DMARKET_SECRET_KEY": "ab" * 64},
            "MARKETSCAN_DMARKET_PUBLIC_KEY",
        ),
        (
            {
                "MARKETSCAN_DMARKET_PUBLIC_KEY": DMARKET_PUBLIC_KEY,
                "MARKETSCAN_DMARKET_SECRET_KEY": "ab" * 32,
            },
            "MARKETSCAN_DMARKET_SECRET_KEY",
        ),
        (
            # Well formed, but the secret's own public half is another key.
            {
                "MARKETSCAN_DMARKET_PUBLIC_KEY": DMARKET_PUBLIC_KEY,
                "MARKETSCAN_DMARKET_SECRET_KEY": "ab" * 64,
            },
            "MARKETSCAN_DMARKET_SECRET_KEY",
        ),
    ],
)
def test_bad_dmarket_keys_stop_the_worker_at_start_naming_the_variable_and_never_the_secret(
    environ: dict[str, str], variable: str
) -> None:
    # Given a DMarket key pair that cannot sign: settings only parse, and keep it
    assert Settings.from_env(environ).dmarket_secret_key == environ.get(
        "MARKETSCAN_DMARKET_SECRET_KEY"
    )
    # When a worker reads its Celery configuration at start
    started = subprocess.run(
        [sys.executable, "-c", "import celeryconfig"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it stops there, naming the variable at fault and quoting no key
    assert started.returncode != 0
    refusal = started.stderr.strip().splitlines()[-1]
    assert refusal.startswith("worker.errors.ConfigError: " + variable), refusal
    assert "ab" * 16 not in started.stderr


def test_levels_are_configuration_in_cents_with_a_minimum_profit() -> None:
    # Given MARKETSCAN_LEVELS with two levels
    settings = Settings.from_env(
        {"MARKETSCAN_LEVELS": " cheap=50-5000:0.02 , whale=100000-9000000:0.015 "}
    )
    # Then they replace the defaults, each with its band and minimum profit
    assert {name: (lv.min_price_cents, lv.max_price_cents, lv.min_profit)
            for name, lv in ((lv.name, lv) for lv in settings.levels)} == {
        "cheap": (50, 5000, 0.02), "whale": (100_000, 9_000_000, 0.015)}  # fmt: skip
    # And without it the documented defaults apply
    assert sorted(lv.name for lv in Settings.from_env({}).levels) == [
        "boost", "medium", "pro", "standard"]  # fmt: skip
    assert hash(settings)  # settings key caches (the notifier's, for one)


def test_a_levels_second_market_fields_are_read_after_its_margin() -> None:
    # Given a level with its own 7-day volume minimum and hold margin for a second market
    (level,) = Settings.from_env(
        {"MARKETSCAN_LEVELS": "standard=100-10000:0.05;min_volume_7d=10;hold_margin=0.08"}
    ).levels
    # Then both are read, and the other fields keep their defaults
    assert (level.min_volume_7d, level.hold_margin, level.min_sales_7d) == (10, 0.08, 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cheap=50-5000", "entry 'cheap=50-5000' must be NAME=MIN_CENTS-MAX_CENTS:MIN_PROFIT"),
        ("cheap=5.5-50:0.1", "not a number"),
        ("cheap=500-50:0.1", "min price \\(500 cents\\) must not exceed max price"),
        ("cheap=5-50:-0.1", "min_profit must be a fraction from 0"),
        ("=5-50:0.1", "a level's name must be a non-empty string"),
        ("a=1-2:0.1,a=1-3:0.1", "level 'a' is defined twice"),
        ("a=1-2:0.1;hold_margin=-0.1", "hold_margin must be a fraction from 0"),
        ("a=1-2:0.1;min_volume_7d=x", "min_volume_7d='x' is not a valid value"),
    ],
)
def test_bad_levels_fail_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        Settings.from_env({"MARKETSCAN_LEVELS": value})
    assert str(error.value).startswith("MARKETSCAN_LEVELS")


# Every credential a Settings may hold, each with "hunter" in it: no repr may show one.
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5hunter2"
DMARKET_SECRET_KEY = "ab" * 64
SECRET_SETTINGS = Settings(
    database_url="postgresql://scanner:db hunter/2@db:5432/marketscan",
    broker_url="redis://:redis-hunter2@redis:6379/0",
    dmarket_url="https://scanner:dm'hunter2@proxy.example",
    telegram_api_url="https://tg.example/relay?password=tg-hunter2",
    telegram_bot_token=BOT_TOKEN,
    dmarket_public_key=DMARKET_PUBLIC_KEY,
    dmarket_secret_key=DMARKET_SECRET_KEY,
)


def _bot_services() -> object:
    import redis

    from worker.bot.context import BotServices
    from worker.bot.refusals import Refusals

    settings = SECRET_SETTINGS
    refusals = Refusals.over(BOT_TOKEN, settings.telegram_api_url, 1.0, 60.0)
    return BotServices(settings, redis.Redis.from_url(settings.broker_url), refusals)


def _page_context() -> object:
    from worker.chain.context import PageContext

    return PageContext("w1@test", SECRET_SETTINGS, publish=lambda message: None)


@pytest.mark.parametrize(
    "holder",
    [lambda: SECRET_SETTINGS, _bot_services, _page_context],
    ids=["Settings", "BotServices", "PageContext"],
)
def test_no_repr_of_the_settings_or_what_carries_them_shows_a_credential(
    holder: Callable[[], object],
) -> None:
    # Given settings holding every kind of credential, alone or inside what carries them
    # When they are shown (a log line, a traceback's locals, a debugger)
    shown = repr(holder())
    # Then no password, token or key is in sight, and what is not secret still is
    assert "hunter" not in shown
    assert DMARKET_SECRET_KEY not in shown and "AAHdqTcv" not in shown
    assert "postgresql://scanner:***@db:5432/marketscan" in shown
    assert "redis://:***@redis:6379/0" in shown and "lease_seconds=30" in shown
    assert str(SECRET_SETTINGS) == repr(SECRET_SETTINGS)


# Every variable read as a float: an int variable refuses "nan" and "inf" as not an int.
FLOAT_VARIABLES = [
    "MARKETSCAN_RECOVERY_INTERVAL_SECONDS",
    "MARKETSCAN_CLEANUP_PAUSE_RATIO",
    "MARKETSCAN_RETRY_BACKOFF_SECONDS",
    "MARKETSCAN_RETRY_BACKOFF_MAX_SECONDS",
    "MARKETSCAN_FEE",
    "MARKETSCAN_DMARKET_REQUESTS_PER_SECOND",
    "MARKETSCAN_HTTP_TIMEOUT_SECONDS",
    "MARKETSCAN_WATCH_TICK_SECONDS",
    "MARKETSCAN_WATCH_CATCHUP_SECONDS",
    "MARKETSCAN_ALERT_CHAT_INTERVAL_SECONDS",
    "MARKETSCAN_TELEGRAM_MIN_INTERVAL_SECONDS",
    "MARKETSCAN_LEDGER_AUDIT_SECONDS",
    "MARKETSCAN_REFERENCE_TTL_SECONDS",
    "MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND",
    "MARKETSCAN_DMARKET_LAST_SALES_REQUESTS_PER_SECOND",
    "MARKETSCAN_DMARKET_BREAKER_COOLDOWN_SECONDS",
    "MARKETSCAN_TELEGRAM_REFUSAL_WINDOW_SECONDS",
    "MARKETSCAN_FRESH_LOOKBACK_SECONDS",
    "MARKETSCAN_FRESH_SHARE_SECONDS",
    "MARKETSCAN_FRESH_TICK_SECONDS",
    "MARKETSCAN_ALERT_TICK_SECONDS",
    "MARKETSCAN_DMARKET_FEE_REQUESTS_PER_SECOND",
    "MARKETSCAN_SKINPORT_FEE",
    "MARKETSCAN_SKINPORT_HIGH_FEE",
    "MARKETSCAN_SKINPORT_LIST_SECONDS",
    "MARKETSCAN_SKINPORT_WINDOW_SECONDS",
    "MARKETSCAN_SKINPORT_BREAKER_COOLDOWN_SECONDS",
]


def test_the_float_variables_are_every_float_setting() -> None:
    # (So the table below cannot miss one added later.)
    read = set(settings_variables())
    floats = {name for name in read if _reads_a_float(name)}
    assert floats == set(FLOAT_VARIABLES)


@pytest.mark.parametrize("name", FLOAT_VARIABLES)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_a_number_that_is_not_finite_is_refused_naming_the_variable(name: str, value: str) -> None:
    # Given a numeric variable set to NaN or an infinity, which every range check lets by
    # When the settings are read, Then they are refused at once, naming the variable
    with pytest.raises(ConfigError, match="is not a finite number") as refused:
        Settings.from_env({name: value})
    assert str(refused.value).startswith(f"{name}={value!r}")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        # str.isdigit() takes superscripts and circled digits, which int() refuses.
        ({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "²"}, "'²' is not a Telegram user id"),
        ({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "12345,1²"}, "'1²' is not a Telegram user id"),
        ({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "①"}, "'①' is not a Telegram user id"),
        ({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "١٢٣"}, "'١٢٣' is not a Telegram user id"),
        ({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "-5"}, "'-5' is not a Telegram user id"),
        ({"MARKETSCAN_TELEGRAM_ALLOWED_USERS": "0"}, "'0' is not a Telegram user id"),
        ({"MARKETSCAN_BOT_MARKET_OPTIONS": "items=nan"}, "items='nan' is not a finite number"),
        ({"MARKETSCAN_BOT_MARKET_OPTIONS": "seed=7,items=-inf"}, "items='-inf' is not a finite"),
        ({"MARKETSCAN_BOT_MARKET_OPTIONS": "items=1e999"}, "items='1e999' is not a finite"),
        ({"MARKETSCAN_BOT_MARKET_OPTIONS": "items"}, "'items' must be KEY=VALUE"),
        ({"MARKETSCAN_LEVELS": "cheap=50-5000:nan"}, "min_profit must be a fraction from 0"),
        ({"MARKETSCAN_LEVELS": "cheap=50-5000:inf"}, "min_profit must be a fraction from 0"),
        ({"MARKETSCAN_LEVELS": "cheap=5²-50:0.1"}, "not a number"),
    ],
)
def test_lists_and_pairs_refuse_what_is_not_a_plain_number_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    ((name, _),) = environ.items()
    with pytest.raises(ConfigError, match=message) as refused:
        Settings.from_env(environ)
    assert str(refused.value).startswith(name)


def test_market_options_keep_numbers_and_words() -> None:
    options = Settings.from_env({"MARKETSCAN_BOT_MARKET_OPTIONS": "items=2000,fail_rate=0.5,a=b"})
    assert options.bot_market_options == (("items", 2000), ("fail_rate", 0.5), ("a", "b"))
    # An int no float can hold is still an int: the market checks its range.
    huge = Settings.from_env({"MARKETSCAN_BOT_MARKET_OPTIONS": "items=" + "9" * 400})
    assert huge.bot_market_options == (("items", int("9" * 400)),)


def settings_variables() -> list[str]:
    """Every environment variable Settings.from_env reads, in the order it reads them."""
    read: list[str] = []

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            read.append(key)
            return default

        def __getitem__(self, key: str) -> str:
            read.append(key)
            raise KeyError(key)

    Settings.from_env(Recording())
    return list(dict.fromkeys(read))


def _reads_a_float(name: str) -> bool:
    """Whether `name` is read as a float: "0.5" passes or is out of range, "x" is no float."""
    try:
        Settings.from_env({name: "x"})
    except ConfigError as refused:
        return "is not a valid float" in str(refused)
    return False


def _placeholder_value(name: str) -> str:
    """`name` as .env.example leaves it before it is filled in."""
    urls = {
        "DATABASE_URL": "postgresql://marketscan:change-me@postgres:5432/marketscan",
        "CELERY_BROKER_URL": "redis://:change-me@redis:6379/0",
    }
    return urls.get(name, "change-me")


@pytest.mark.parametrize("name", settings_variables())
def test_a_value_still_holding_the_env_example_placeholder_is_refused_naming_it(name: str) -> None:
    # Given .env.example copied and one variable left as its "change-me" placeholder
    value = _placeholder_value(name)
    # When the settings are read, Then they are refused, naming the variable and what to do
    with pytest.raises(ConfigError, match="placeholder") as refused:
        Settings.from_env({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name} still holds") and "set a real value" in message
    assert "://" not in message  # the value is not quoted: the rest of it may be secret


@pytest.mark.parametrize("value", ["CHANGE-ME", "redis://:Change-Me-2@redis:6379/0"])
def test_the_placeholder_is_found_in_any_case_and_inside_a_value(value: str) -> None:
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL still holds"):
        Settings.from_env({"CELERY_BROKER_URL": value})
