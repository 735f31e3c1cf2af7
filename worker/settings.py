"""Marketscan's settings: read from the environment once, validated at start-up.

Each setting is written once, as a field of Settings: its default, its bounds and its unit
(`setting(...)`). Its variable is MARKETSCAN_ and the field's name in capitals, unless the
field names another; `from_env` reads every field in one loop, parsing by the field's type.
docs/configuration.md's table is checked against the fields (tests/unit/test_compose.py).

Settings only parse: what a value means to a market (whether a DMarket key pair signs) is
checked where the market is built and where the worker starts (celeryconfig.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, TypeVar, cast

from worker.domain.opportunities import LEVELS, Level
from worker.domain.price_list import currency_of
from worker.domain.reference import DMARKET_APIS
from worker.errors import ConfigError, InvalidInput
from worker.redaction import redacted

T = TypeVar("T")

PREFIX = "MARKETSCAN_"
DEFAULT_DATABASE_URL = "postgresql://marketscan:marketscan@localhost:5432/marketscan"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
DEFAULT_SENTINEL_MASTER = "mymaster"
# What .env.example puts where a secret goes; a value still holding it was never filled in.
PLACEHOLDER = "change-me"
_SPEC = "marketscan"


@dataclass(frozen=True)
class Spec:
    """How one setting is read, beyond what its field's type and default say."""

    # Bounds of a number, inclusive (no maximum: None); every number has a minimum.
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    # The variable, where it is not PREFIX + the field's name in capitals.
    variable: str | None = None
    # The default while DMarket requests are signed (DMarket's limits follow the auth mode).
    signed: Any = None
    # (variable, raw value) -> value, for what is neither a number, a flag nor a text.
    parse: Callable[[str, str], Any] | None = None
    # A base URL: a trailing '/' is dropped, as paths are appended to it.
    base_url: bool = False


def setting(
    default: T,
    *,
    bounds: str = "",
    unit: str = "",
    parse: Callable[[str, str], T] | None = None,
    signed: T | None = None,
    variable: str | None = None,
    base_url: bool = False,
    secret: bool = False,
) -> T:
    """A field of Settings: its default, bounds and unit, written once.

    `bounds` of a number are inclusive, "MIN..MAX" or "MIN.." (no maximum), each written as
    an error shows it ("0.0..0.99": a float's). A `secret` is left out of repr.
    """
    low, _, high = bounds.partition("..")
    minimum, maximum = (_bound(low) if low else None), (_bound(high) if high else None)
    spec = Spec(minimum, maximum, unit, variable, signed, parse, base_url)
    return field(default=default, repr=not secret, metadata={_SPEC: spec})


def _bound(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def allowed_users_of(name: str, raw: str) -> frozenset[int]:
    """Telegram user ids from `raw`, separated by commas or spaces, e.g. `12345,67890`."""
    users: set[int] = set()
    for entry in raw.replace(",", " ").split():
        # ASCII digits only: str.isdigit() also takes '²' and '①', which int() refuses.
        if not (entry.isascii() and entry.isdigit()) or int(entry) == 0:
            raise ConfigError(
                f"{name}: {entry!r} is not a Telegram user id; give numeric ids separated by"
                " commas, e.g. 12345,67890 (a user's id is shown by @userinfobot)"
            )
        users.add(int(entry))
    return frozenset(users)


def options_of(name: str, raw: str) -> tuple[tuple[str, int | float | str], ...]:
    """KEY=VALUE pairs from `raw`, separated by commas, e.g. `items=2000,seed=7`; numbers
    become numbers. The market checks the keys and values when a scan is started."""
    pairs: dict[str, int | float | str] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name}: {entry!r} must be KEY=VALUE, e.g. items=2000")
        pairs[key.strip()] = _scalar(name, key.strip(), value.strip())
    return tuple(pairs.items())


def _scalar(name: str, key: str, raw: str) -> int | float | str:
    for kind in (int, float):
        try:
            number = kind(raw)
        except ValueError:
            continue
        # NaN would pass every range check the market makes.
        if isinstance(number, float) and not math.isfinite(number):
            raise ConfigError(f"{name}: {key}={raw!r} is not a finite number")
        return number
    return raw


LEVELS_FORMAT = "NAME=MIN_CENTS-MAX_CENTS:MIN_PROFIT[;KEY=VALUE...][,...]"


def levels_of(name: str, raw: str) -> tuple[Level, ...]:
    """Levels from `raw` in LEVELS_FORMAT, e.g. `standard=100-10000:0.05`; {} when empty."""
    levels: dict[str, Level] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        level_name, _, rule = entry.partition("=")
        rule, *extras = rule.split(";")
        band, _, profit = rule.partition(":")
        low, _, high = band.partition("-")
        try:
            level = Level(level_name.strip(), int(low), int(high), float(profit))
            level = replace(level, **_level_extras(extras))
        except ValueError as exc:
            detail = str(exc) if isinstance(exc, InvalidInput) else "not a number"
            raise ConfigError(
                f"{name}: entry {entry!r} must be {LEVELS_FORMAT}, e.g. "
                f"standard=100-10000:0.05 ({detail})"
            ) from None
        if level.name in levels:
            raise ConfigError(f"{name}: level {level.name!r} is defined twice")
        levels[level.name] = level
    return tuple(levels.values())


def fee_is_set(name: str, raw: str) -> bool:
    """MARKETSCAN_FEE is set (to a fee the `fee` field checks): every scan uses it."""
    return bool(raw)


# A level's liquidity minimums and lock rule after its margin, each `;NAME=VALUE`.
LEVEL_EXTRAS: dict[str, Callable[[str], int | float | bool]] = {
    "min_sales_7d": int,
    "max_last_sale_days": float,
    "min_buy_orders": int,
    "locked_margin": float,
    "exclude_locked": lambda raw: {"true": True, "false": False}[raw.lower()],
    "min_volume_7d": int,
    "hold_margin": float,
}


def _level_extras(extras: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs of LEVEL_EXTRAS; ValueError naming an unknown or unreadable one."""
    read: dict[str, Any] = {}
    for extra in (part.strip() for part in extras):
        key, _, raw = extra.partition("=")
        key = key.strip()
        if key not in LEVEL_EXTRAS:
            raise InvalidInput(f"{key!r} is none of {', '.join(LEVEL_EXTRAS)}")
        try:
            read[key] = LEVEL_EXTRAS[key](raw.strip())
        except (KeyError, ValueError):
            raise InvalidInput(f"{key}={raw.strip()!r} is not a valid value") from None
    return read


def http_url_of(name: str, raw: str) -> str:
    """An http(s) URL, as a link in a chat message must be."""
    if not raw.startswith(("https://", "http://")) or any(ch.isspace() for ch in raw):
        raise ConfigError(f"{name}={raw!r} is not allowed: must be an http:// or https:// URL")
    return raw


def one_of(allowed: tuple[str, ...]) -> Callable[[str, str], str]:
    """A parser of one of `allowed` (case-insensitive), naming the variable and the values."""

    def parse(name: str, raw: str) -> str:
        value = raw.lower()
        if value not in allowed:
            raise ConfigError(
                f"{name}={value!r} is not allowed: must be one of {', '.join(allowed)}"
            )
        return value

    return parse


def currency_setting(name: str, raw: str) -> str:
    """A currency a second market's prices may be read in (worker.domain.price_list)."""
    try:
        return currency_of(raw.upper(), name)
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class Settings:
    """Every tunable of the runtime, with its unit in its name."""

    database_url: str = setting(DEFAULT_DATABASE_URL, variable="DATABASE_URL")
    broker_url: str = setting(DEFAULT_BROKER_URL, variable="CELERY_BROKER_URL")
    # Bounds on waiting for PostgreSQL (worker.db.engine): a connection attempt, and one
    # statement, lock waits included (0: none). A database that never answers, or a row
    # locked by a stuck transaction, then ends in an error instead of a hung CLI or bot.
    # Cleanup lifts the statement bound for its batches; migrations run without it.
    database_connect_timeout_seconds: int = setting(10, bounds="1..600", unit="s")
    database_statement_timeout_seconds: int = setting(60, bounds="0..86400", unit="s")
    retention_days: int = setting(7, bounds="1..", unit="days")
    lease_seconds: int = setting(30, bounds="2..", unit="s")
    recovery_interval_seconds: float = setting(10.0, bounds="0.5..", unit="s")
    cleanup_batch_size: int = setting(1000, bounds="1..", unit="rows")
    # After each cleanup batch, pause this many times the batch's duration (0: no pause),
    # so a running scan's commits are not queued behind the deletes' WAL and I/O.
    cleanup_pause_ratio: float = setting(1.0, bounds="0.0..100.0", unit="x batch time")
    cleanup_hour_utc: int = setting(3, bounds="0..23", unit="hour of the day (UTC)")
    max_retries: int = setting(5, bounds="0..", unit="retries")
    retry_backoff_seconds: float = setting(1.0, bounds="0.0..", unit="s")
    retry_backoff_max_seconds: float = setting(60.0, bounds="0.0..", unit="s")
    max_page_deliveries: int = setting(5, bounds="1..", unit="deliveries")
    # While no other page waits in the queue, a page task walks the scan's next pages, up
    # to this many or this long, before it re-enqueues: the hop is paid per slice.
    slice_ms: int = setting(10_000, bounds="0..60000", unit="ms")
    slice_pages: int = setting(10, bounds="1..1000", unit="pages")
    # While other pages wait, a slice still walks pages for this long (0: one page per
    # task): the hop is amortised under a backlog too, and fairness is this bound (short,
    # since a queued scan waits for the slice of every scan ahead of it).
    slice_backlog_ms: int = setting(50, bounds="0..60000", unit="ms")
    # The fee of the simulated market, and of every scan once the operator sets it (source
    # `configured`); unset, DMarket scans use DMarket's published fees (worker.markets.fees).
    fee: float = setting(0.07, bounds="0.0..0.99", unit="fraction of a price")
    # Whether the operator set MARKETSCAN_FEE (read from the same variable).
    fee_configured: bool = setting(False, variable="MARKETSCAN_FEE", parse=fee_is_set)
    # Named price bands and their minimum profit; a scan names one (ScanParams.level).
    levels: tuple[Level, ...] = setting(tuple(LEVELS.values()), parse=levels_of)
    dmarket_url: str = setting("https://api.dmarket.com", base_url=True)
    # DMarket's published limits (its rate-limit article) are the defaults of the fleet's
    # budgets, per endpoint class and auth mode: unsigned requests count per IP (market
    # items 2/s, all other methods together 6/s), signed ones per account (market items
    # 10/s, last sales 6/s, all other methods 20/s). Unsigned, last sales is an "other".
    dmarket_requests_per_second: float = setting(
        2.0, bounds="0.01..", signed=10.0, unit="requests/s"
    )
    # Optional DMarket API keys (hex): with both set, requests are signed. Kept out of repr
    # (see __repr__), as the bot token is; the market checks the pair (markets/dmarket/auth).
    dmarket_public_key: str | None = setting(None, secret=True)
    dmarket_secret_key: str | None = setting(None, secret=True)
    http_timeout_seconds: float = setting(15.0, bounds="0.1..", unit="s")
    visibility_timeout_seconds: int = setting(3600, bounds="60..", unit="s")
    # Watches (worker.schedules): how often beat's watch clock looks for due slots; how old a
    # missed slot may be and still run after an outage; how long one listing at one price is
    # not alerted again to a chat; Telegram's per-chat and overall message rates for alerts
    # (one message a second per chat, about 30 a second overall).
    watch_tick_seconds: float = setting(1.0, bounds="0.1..60.0", unit="s")
    watch_catchup_seconds: float = setting(300.0, bounds="0.0..", unit="s")
    alert_dedup_seconds: int = setting(3600, bounds="1..", unit="s")
    alert_chat_interval_seconds: float = setting(1.0, bounds="1.0..", unit="s")
    alert_messages_per_second: int = setting(30, bounds="1..30", unit="messages/s")
    telegram_bot_token: str | None = setting(None, secret=True)
    telegram_api_url: str = setting("https://api.telegram.org", base_url=True)
    telegram_min_interval_seconds: float = setting(3.0, bounds="0.0..", unit="s")
    # Metrics (docs/monitoring.md): off, workers note nothing and flush nothing; the
    # counters read from the rows are exported all the same.
    metrics_enabled: bool = setting(True)
    # The broker's Redis behind Sentinel (CELERY_BROKER_URL=sentinel://h1:26379;...): the
    # master's name, for kombu and for worker.broker_redis alike.
    sentinel_master: str = setting(DEFAULT_SENTINEL_MASTER)
    # A page whose ledger marker has said `sent` this long is looked for in the queue
    # itself, in case its message was lost between kombu's pop and its unacked bookkeeping.
    ledger_audit_seconds: float = setting(300.0, bounds="1.0..", unit="s")
    # --- DMarket today (issue 17): which listing API, which reference, quirks' bounds.
    # "v2": GET /marketplace-api/v2/offers; "v1": the deprecated /exchange/v1/market/items.
    dmarket_api: str = setting("v2", parse=one_of(DMARKET_APIS))
    # How long a looked-up reference price (best bid, last sales) is trusted, fleet-wide.
    reference_ttl_seconds: float = setting(300.0, bounds="1.0..", unit="s")
    # Empty pages in a row that still carry a cursor before the walk is ended.
    dmarket_max_empty_pages: int = setting(3, bounds="1..", unit="pages")
    # Fleet budgets of DMarket's other endpoint classes (market items: the rate above), at
    # DMarket's figure for the auth mode; last sales has a budget of its own only when signed.
    dmarket_other_requests_per_second: float = setting(
        6.0, bounds="0.01..", signed=20.0, unit="requests/s"
    )
    dmarket_last_sales_requests_per_second: float = setting(
        6.0, bounds="0.01..", signed=6.0, unit="requests/s"
    )
    # The fleet's circuit breaker: this many 5xx/timeouts in a row open it (as does a
    # 401/403); after the cool-down one request probes.
    dmarket_breaker_failures: int = setting(5, bounds="1..", unit="failures")
    dmarket_breaker_cooldown_seconds: float = setting(30.0, bounds="0.1..", unit="s")
    # `marketscan bot`: the Telegram ids that may command it (none: it refuses everyone),
    # and how long one getUpdates long poll waits for an update.
    telegram_allowed_users: frozenset[int] = setting(frozenset(), parse=allowed_users_of)
    telegram_poll_timeout_seconds: int = setting(30, bounds="0..50", unit="s")
    # A stranger's command is refused once per this window; their other updates get nothing.
    telegram_refusal_window_seconds: float = setting(600.0, bounds="0.0..86400.0", unit="s")
    # What one chat user may have at once: scans running (or queued) and watches (at most
    # what one listing of a user's watches holds: worker.db.watches).
    chat_max_running_scans: int = setting(10, bounds="1..", unit="scans")
    chat_max_watches: int = setting(25, bounds="1..200", unit="watches")
    # The market (and its options, KEY=VALUE pairs) of the scans and watches the bot starts.
    bot_market: str = setting("simulated")
    bot_market_options: tuple[tuple[str, int | float | str], ...] = setting((), parse=options_of)
    # A development fleet (`marketscan dev` and `demo`, the test suites, the bench): only
    # there may a scan inject faults (crash a process, stall a page, fail requests).
    dev_mode: bool = setting(False)
    # --- Fresh watches (worker.markets.fresh): follow DMarket v2's newest offers.
    # Each poll re-reads this far below its watermark for listings that became visible
    # late (their createdAt earlier than a listing already seen), judging each one once.
    fresh_lookback_seconds: float = setting(10.0, bounds="0.0..600.0", unit="s")
    # A poll walks at most this many pages down to its watermark; a deeper gap (after an
    # outage) resumes from the newest listing, and says how much it skipped.
    fresh_max_gap_pages: int = setting(20, bounds="1..1000", unit="pages")
    # Polls of fresh watches on the same market, game and API that start within this long
    # share one walk (a single flight in the broker's Redis).
    fresh_share_seconds: float = setting(0.5, bounds="0.0..10.0", unit="s")
    # How often beat's fresh clock publishes the polls that are due, and how often the
    # alert follower looks for committed finds (an alert's latency is bounded by it).
    fresh_tick_seconds: float = setting(0.2, bounds="0.05..10.0", unit="s")
    alert_tick_seconds: float = setting(0.25, bounds="0.05..60.0", unit="s")
    # Every find in an alert links to its listing: this base, then the offer id.
    listing_link_url: str = setting(
        "https://dmarket.com/ingame-items/item-list/csgo-skins?userOfferId=", parse=http_url_of
    )
    # --- Real fees (issue 30): DMarket's published fees (worker.markets.fees).
    # Fleet budget of DMarket's customized fees, which its rate-limit article gives a budget
    # of its own: 2 requests/s unsigned (per IP), 110 signed (per account).
    dmarket_fee_requests_per_second: float = setting(
        2.0, bounds="0.01..", signed=110.0, unit="requests/s"
    )
    # --- Skinport as a second market (worker.markets.second_market.skinport): buy on DMarket,
    # sell there. Its API publishes the whole CS2 list in one answer, cached 5 min on its
    # side, at 8 requests per 5 min; its seller fee (its FAQ and fee page) is 8 %, 6 % on a
    # sale above $1,000. A find's Skinport price is the lowest listing less the undercut.
    skinport_url: str = setting("https://api.skinport.com", base_url=True)
    skinport_currency: str = setting("USD", parse=currency_setting)
    skinport_fee: float = setting(0.08, bounds="0.0..0.99", unit="fraction of a price")
    skinport_high_fee: float = setting(0.06, bounds="0.0..0.99", unit="fraction of a price")
    skinport_high_fee_above_cents: int = setting(100_000, bounds="0..", unit="cents")
    skinport_undercut_cents: int = setting(1, bounds="0..", unit="cents")
    # How long the fleet's read of the list is used before it is read again (Skinport's own
    # cache is 5 min: reading more often gains nothing and spends its small budget).
    skinport_list_seconds: float = setting(300.0, bounds="1.0..86400.0", unit="s")
    # Skinport's limit, 8 requests per 300 s, is the fleet's budget. RequestBudget makes it
    # 2 per 75.05 s (the fraction 2/75 plus its transit margin), sliding: any 300 s lie
    # within four such windows (4 x 75.05 s > 300 s), so they hold at most 8, never a 9th.
    skinport_requests_per_window: int = setting(8, bounds="1..1000", unit="requests")
    skinport_window_seconds: float = setting(300.0, bounds="1.0..86400.0", unit="s")
    skinport_breaker_failures: int = setting(3, bounds="1..", unit="failures")
    skinport_breaker_cooldown_seconds: float = setting(60.0, bounds="0.1..", unit="s")

    def __repr__(self) -> str:
        # Settings get logged and land in tracebacks (inside whatever carries them): the
        # keys and the token are left out (repr=False), and every URL's password hidden.
        shown = (
            f"{item.name}={redacted(repr(getattr(self, item.name)))}"
            for item in fields(self)
            if item.repr
        )
        return f"{type(self).__name__}({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (the process environment by default)."""
        env = _Filled(os.environ if environ is None else environ)
        signed = bool(env.get(variable_of("dmarket_public_key"), "").strip())
        return cls(**{item.name: _read(env, item, signed) for item in fields(cls)})


def spec_of(item: Field[Any]) -> Spec:
    spec: Spec = item.metadata[_SPEC]
    return spec


def variable_of(name: str) -> str:
    """The environment variable of the setting `name` (a field of Settings)."""
    return spec_of(_FIELDS[name]).variable or PREFIX + name.upper()


def default_of(name: str, *, signed: bool = False) -> Any:
    """The setting's default, while DMarket requests are `signed` or not."""
    item = _FIELDS[name]
    spec = spec_of(item)
    return spec.signed if signed and spec.signed is not None else item.default


def _read(env: Mapping[str, str], item: Field[Any], signed: bool) -> Any:
    """One setting from the environment: its default when unset or blank."""
    name, spec = variable_of(item.name), spec_of(item)
    raw = env.get(name, "").strip()
    if not raw:
        return default_of(item.name, signed=signed)
    if spec.parse is not None:
        # A list that names nothing (",") leaves the default, as an unset one does.
        return spec.parse(name, raw) or default_of(item.name, signed=signed)
    if item.type in _NUMBERS:
        return _number(name, raw, _NUMBERS[item.type], spec)
    if item.type == "bool":
        return _flag(name, raw)
    return raw.rstrip("/") if spec.base_url else raw


def _flag(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} must be one of 1, true, yes, on, 0, false, no, off")


def _number(name: str, raw: str, kind: type[int] | type[float], spec: Spec) -> int | float:
    minimum, maximum = cast(float, spec.minimum), spec.maximum
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
    try:
        number = float(value)
    except OverflowError:  # an int past every float is past every range too
        raise ConfigError(f"{name}={raw!r} is out of range: must be {allowed}") from None
    # NaN passes every comparison below, and an infinity any range without a maximum.
    if not math.isfinite(number):
        raise ConfigError(f"{name}={raw!r} is not a finite number")
    if number < minimum or (maximum is not None and number > maximum):
        raise ConfigError(f"{name}={raw!r} is out of range: must be {allowed}")
    return value


class _Filled(Mapping[str, str]):
    """The environment, refusing a value that still holds .env.example's placeholder.

    Every variable Settings reads goes through here, so a password left as `change-me`
    (alone, or inside DATABASE_URL or CELERY_BROKER_URL) stops the process at start-up
    instead of running with a password anyone can read in the repository.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __getitem__(self, name: str) -> str:
        value = self._env[name]
        if PLACEHOLDER in value.lower():
            # The value itself is not quoted: the rest of it may be a real secret.
            raise ConfigError(
                f"{name} still holds the placeholder {PLACEHOLDER!r} of .env.example: set a "
                "real value (a password, for instance, from `openssl rand -hex 32`)"
            )
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


_NUMBERS: dict[str, type[int] | type[float]] = {"int": int, "float": float}
_FIELDS: dict[str, Field[Any]] = {item.name: item for item in fields(Settings)}


def _check_fields() -> None:
    """A setting the loop could not read is a mistake in this file: it fails on import."""
    readable = (*_NUMBERS, "bool", "str", "str | None")
    for item in _FIELDS.values():
        spec = spec_of(item)
        if item.type in _NUMBERS and spec.minimum is None:
            raise TypeError(f"Settings.{item.name}: a number needs its bounds")
        if spec.parse is None and item.type not in readable:
            raise TypeError(f"Settings.{item.name}: a {item.type} needs its parse")


_check_fields()
# Switches development on: the simulated market's fault injection (worker.markets.simulated).
DEV_MODE_VARIABLE = variable_of("dev_mode")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()
