"""Marketscan's settings: read from the environment once, validated at start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TypeVar

from worker.domain.opportunities import LEVELS, Level
from worker.domain.reference import DMARKET_APIS
from worker.errors import ConfigError, InvalidInput
from worker.markets.dmarket import limits as dmarket_limits
from worker.redaction import redacted

T = TypeVar("T")

DEFAULT_DATABASE_URL = "postgresql://marketscan:marketscan@localhost:5432/marketscan"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
DEFAULT_SENTINEL_MASTER = "mymaster"
# What .env.example puts where a secret goes; a value still holding it was never filled in.
PLACEHOLDER = "change-me"
# Switches development on: the simulated market's fault injection (worker.markets.simulated).
DEV_MODE_VARIABLE = "MARKETSCAN_DEV_MODE"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the runtime, with its unit in its name."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    # Bounds on waiting for PostgreSQL (worker.db.engine): a connection attempt, and one
    # statement, lock waits included (0: none). A database that never answers, or a row
    # locked by a stuck transaction, then ends in an error instead of a hung CLI or bot.
    # Cleanup lifts the statement bound for its batches; migrations run without it.
    database_connect_timeout_seconds: int = 10
    database_statement_timeout_seconds: int = 60
    retention_days: int = 7
    lease_seconds: int = 30
    recovery_interval_seconds: float = 10.0
    cleanup_batch_size: int = 1000
    # After each cleanup batch, pause this many times the batch's duration (0: no pause),
    # so a running scan's commits are not queued behind the deletes' WAL and I/O.
    cleanup_pause_ratio: float = 1.0
    cleanup_hour_utc: int = 3
    max_retries: int = 5
    retry_backoff_seconds: float = 1.0
    retry_backoff_max_seconds: float = 60.0
    max_page_deliveries: int = 5
    # While no other page waits in the queue, a page task walks the scan's next pages, up
    # to this many or this long, before it re-enqueues: the hop is paid per slice.
    slice_ms: int = 10_000
    slice_pages: int = 10
    # While other pages wait, a slice still walks pages for this long (0: one page per
    # task): the hop is amortised under a backlog too, and fairness is this bound (short,
    # since a queued scan waits for the slice of every scan ahead of it).
    slice_backlog_ms: int = 50
    fee: float = 0.07
    # Named price bands and their minimum profit; a scan names one (ScanParams.level).
    levels: tuple[Level, ...] = tuple(LEVELS.values())
    dmarket_url: str = "https://api.dmarket.com"
    dmarket_requests_per_second: float = 2.0
    # Optional DMarket API keys (hex): with both set, requests are signed. Kept out of repr
    # (see __repr__), as the bot token is.
    dmarket_public_key: str | None = field(default=None, repr=False)
    dmarket_secret_key: str | None = field(default=None, repr=False)
    http_timeout_seconds: float = 15.0
    visibility_timeout_seconds: int = 3600
    # Watches (worker.schedules): how often beat's watch clock looks for due slots; how old a
    # missed slot may be and still run after an outage; how long one listing at one price is
    # not alerted again to a chat; the finds an alert lists; Telegram's per-chat and overall
    # message rates for alerts.
    watch_tick_seconds: float = 1.0
    watch_catchup_seconds: float = 300.0
    alert_dedup_seconds: int = 3600
    alert_top: int = 5
    alert_chat_interval_seconds: float = 1.0
    alert_messages_per_second: int = 30
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = "https://api.telegram.org"
    telegram_min_interval_seconds: float = 3.0
    # Metrics (docs/monitoring.md): off, workers note nothing and flush nothing; the
    # counters read from the rows are exported all the same.
    metrics_enabled: bool = True
    # The broker's Redis behind Sentinel (CELERY_BROKER_URL=sentinel://h1:26379;...): the
    # master's name, for kombu and for worker.broker_redis alike.
    sentinel_master: str = DEFAULT_SENTINEL_MASTER
    # A page whose ledger marker has said `sent` this long is looked for in the queue
    # itself, in case its message was lost between kombu's pop and its unacked bookkeeping.
    ledger_audit_seconds: float = 300.0
    # --- DMarket today (issue 17): which listing API, which reference, quirks' bounds.
    # "v2": GET /marketplace-api/v2/offers; "v1": the deprecated /exchange/v1/market/items.
    dmarket_api: str = "v2"
    # How long a looked-up reference price (best bid, last sales) is trusted, fleet-wide.
    reference_ttl_seconds: float = 300.0
    # Empty pages in a row that still carry a cursor before the walk is ended.
    dmarket_max_empty_pages: int = 3
    # Fleet budgets of DMarket's other endpoint classes (market items: the rate above).
    # From the environment, each defaults to DMarket's figure for the auth mode
    # (worker.markets.dmarket.limits); last sales has a budget of its own only when signed.
    dmarket_other_requests_per_second: float = 6.0
    dmarket_last_sales_requests_per_second: float = 6.0
    # The fleet's circuit breaker: this many 5xx/timeouts in a row open it (as does a
    # 401/403); after the cool-down one request probes.
    dmarket_breaker_failures: int = 5
    dmarket_breaker_cooldown_seconds: float = 30.0
    # `marketscan bot`: the Telegram ids that may command it (none: it refuses everyone),
    # and how long one getUpdates long poll waits for an update.
    telegram_allowed_users: frozenset[int] = frozenset()
    telegram_poll_timeout_seconds: int = 30
    # A stranger's command is refused once per this window; their other updates get nothing.
    telegram_refusal_window_seconds: float = 600.0
    # What one chat user may have at once: scans running (or queued) and watches.
    chat_max_running_scans: int = 10
    chat_max_watches: int = 25
    # The market (and its options, KEY=VALUE pairs) of the scans and watches the bot starts.
    bot_market: str = "simulated"
    bot_market_options: tuple[tuple[str, int | float | str], ...] = ()
    # A development fleet (`marketscan dev` and `demo`, the test suites, the bench): only
    # there may a scan inject faults (crash a process, stall a page, fail requests).
    dev_mode: bool = False

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
        reader = _Reader(env)
        defaults = cls()
        dmarket_public_key, dmarket_secret_key = _dmarket_keys(env)
        limits = dmarket_limits.limits_for(signed=dmarket_public_key is not None)
        return cls(
            database_url=reader.text("DATABASE_URL", defaults.database_url),
            broker_url=reader.text("CELERY_BROKER_URL", defaults.broker_url),
            database_connect_timeout_seconds=reader.number(
                "MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS",
                int,
                defaults.database_connect_timeout_seconds,
                1,
                600,
            ),
            database_statement_timeout_seconds=reader.number(
                "MARKETSCAN_DATABASE_STATEMENT_TIMEOUT_SECONDS",
                int,
                defaults.database_statement_timeout_seconds,
                0,
                86_400,
            ),
            retention_days=reader.number(
                "MARKETSCAN_RETENTION_DAYS", int, defaults.retention_days, 1
            ),
            lease_seconds=reader.number("MARKETSCAN_LEASE_SECONDS", int, defaults.lease_seconds, 2),
            recovery_interval_seconds=reader.number(
                "MARKETSCAN_RECOVERY_INTERVAL_SECONDS",
                float,
                defaults.recovery_interval_seconds,
                0.5,
            ),
            cleanup_batch_size=reader.number(
                "MARKETSCAN_CLEANUP_BATCH_SIZE", int, defaults.cleanup_batch_size, 1
            ),
            cleanup_pause_ratio=reader.number(
                "MARKETSCAN_CLEANUP_PAUSE_RATIO", float, defaults.cleanup_pause_ratio, 0.0, 100.0
            ),
            cleanup_hour_utc=reader.number(
                "MARKETSCAN_CLEANUP_HOUR_UTC", int, defaults.cleanup_hour_utc, 0, 23
            ),
            max_retries=reader.number("MARKETSCAN_MAX_RETRIES", int, defaults.max_retries, 0),
            retry_backoff_seconds=reader.number(
                "MARKETSCAN_RETRY_BACKOFF_SECONDS", float, defaults.retry_backoff_seconds, 0.0
            ),
            retry_backoff_max_seconds=reader.number(
                "MARKETSCAN_RETRY_BACKOFF_MAX_SECONDS",
                float,
                defaults.retry_backoff_max_seconds,
                0.0,
            ),
            max_page_deliveries=reader.number(
                "MARKETSCAN_MAX_PAGE_DELIVERIES", int, defaults.max_page_deliveries, 1
            ),
            slice_ms=reader.number("MARKETSCAN_SLICE_MS", int, defaults.slice_ms, 0, 60_000),
            slice_pages=reader.number("MARKETSCAN_SLICE_PAGES", int, defaults.slice_pages, 1, 1000),
            slice_backlog_ms=reader.number(
                "MARKETSCAN_SLICE_BACKLOG_MS", int, defaults.slice_backlog_ms, 0, 60_000
            ),
            fee=reader.number("MARKETSCAN_FEE", float, defaults.fee, 0.0, 0.99),
            levels=levels_of("MARKETSCAN_LEVELS", env.get("MARKETSCAN_LEVELS", ""))
            or defaults.levels,
            dmarket_url=reader.text("MARKETSCAN_DMARKET_URL", defaults.dmarket_url).rstrip("/"),
            dmarket_requests_per_second=reader.number(
                "MARKETSCAN_DMARKET_REQUESTS_PER_SECOND",
                float,
                limits.market_items,
                0.01,
            ),
            dmarket_public_key=dmarket_public_key,
            dmarket_secret_key=dmarket_secret_key,
            http_timeout_seconds=reader.number(
                "MARKETSCAN_HTTP_TIMEOUT_SECONDS", float, defaults.http_timeout_seconds, 0.1
            ),
            visibility_timeout_seconds=reader.number(
                "MARKETSCAN_VISIBILITY_TIMEOUT_SECONDS",
                int,
                defaults.visibility_timeout_seconds,
                60,
            ),
            watch_tick_seconds=reader.number(
                "MARKETSCAN_WATCH_TICK_SECONDS", float, defaults.watch_tick_seconds, 0.1, 60.0
            ),
            watch_catchup_seconds=reader.number(
                "MARKETSCAN_WATCH_CATCHUP_SECONDS", float, defaults.watch_catchup_seconds, 0.0
            ),
            alert_dedup_seconds=reader.number(
                "MARKETSCAN_ALERT_DEDUP_SECONDS", int, defaults.alert_dedup_seconds, 1
            ),
            alert_top=reader.number("MARKETSCAN_ALERT_TOP", int, defaults.alert_top, 1, 20),
            # Telegram allows one message a second per chat and about 30 a second overall.
            alert_chat_interval_seconds=reader.number(
                "MARKETSCAN_ALERT_CHAT_INTERVAL_SECONDS",
                float,
                defaults.alert_chat_interval_seconds,
                1.0,
            ),
            alert_messages_per_second=reader.number(
                "MARKETSCAN_ALERT_MESSAGES_PER_SECOND",
                int,
                defaults.alert_messages_per_second,
                1,
                30,
            ),
            telegram_bot_token=env.get("MARKETSCAN_TELEGRAM_BOT_TOKEN") or None,
            telegram_api_url=reader.text(
                "MARKETSCAN_TELEGRAM_API_URL", defaults.telegram_api_url
            ).rstrip("/"),
            telegram_min_interval_seconds=reader.number(
                "MARKETSCAN_TELEGRAM_MIN_INTERVAL_SECONDS",
                float,
                defaults.telegram_min_interval_seconds,
                0.0,
            ),
            metrics_enabled=reader.flag("MARKETSCAN_METRICS_ENABLED", defaults.metrics_enabled),
            sentinel_master=reader.text("MARKETSCAN_SENTINEL_MASTER", defaults.sentinel_master),
            ledger_audit_seconds=reader.number(
                "MARKETSCAN_LEDGER_AUDIT_SECONDS", float, defaults.ledger_audit_seconds, 1.0
            ),
            dmarket_api=_choice(env, "MARKETSCAN_DMARKET_API", DMARKET_APIS, defaults.dmarket_api),
            reference_ttl_seconds=reader.number(
                "MARKETSCAN_REFERENCE_TTL_SECONDS", float, defaults.reference_ttl_seconds, 1.0
            ),
            dmarket_max_empty_pages=reader.number(
                "MARKETSCAN_DMARKET_MAX_EMPTY_PAGES", int, defaults.dmarket_max_empty_pages, 1
            ),
            dmarket_other_requests_per_second=reader.number(
                "MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND", float, limits.other, 0.01
            ),
            dmarket_last_sales_requests_per_second=reader.number(
                "MARKETSCAN_DMARKET_LAST_SALES_REQUESTS_PER_SECOND",
                float,
                limits.last_sales,
                0.01,
            ),
            dmarket_breaker_failures=reader.number(
                "MARKETSCAN_DMARKET_BREAKER_FAILURES", int, defaults.dmarket_breaker_failures, 1
            ),
            dmarket_breaker_cooldown_seconds=reader.number(
                "MARKETSCAN_DMARKET_BREAKER_COOLDOWN_SECONDS",
                float,
                defaults.dmarket_breaker_cooldown_seconds,
                0.1,
            ),
            telegram_allowed_users=allowed_users_of(
                "MARKETSCAN_TELEGRAM_ALLOWED_USERS",
                env.get("MARKETSCAN_TELEGRAM_ALLOWED_USERS", ""),
            ),
            telegram_poll_timeout_seconds=reader.number(
                "MARKETSCAN_TELEGRAM_POLL_TIMEOUT_SECONDS",
                int,
                defaults.telegram_poll_timeout_seconds,
                0,
                50,
            ),
            telegram_refusal_window_seconds=reader.number(
                "MARKETSCAN_TELEGRAM_REFUSAL_WINDOW_SECONDS",
                float,
                defaults.telegram_refusal_window_seconds,
                0.0,
                86_400.0,
            ),
            chat_max_running_scans=reader.number(
                "MARKETSCAN_CHAT_MAX_RUNNING_SCANS", int, defaults.chat_max_running_scans, 1
            ),
            # At most what one listing of a user's watches holds (worker.db.watches).
            chat_max_watches=reader.number(
                "MARKETSCAN_CHAT_MAX_WATCHES", int, defaults.chat_max_watches, 1, 200
            ),
            bot_market=reader.text("MARKETSCAN_BOT_MARKET", defaults.bot_market),
            bot_market_options=options_of(
                "MARKETSCAN_BOT_MARKET_OPTIONS", env.get("MARKETSCAN_BOT_MARKET_OPTIONS", "")
            ),
            dev_mode=reader.flag(DEV_MODE_VARIABLE, defaults.dev_mode),
        )


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed` (case-insensitive), or ConfigError naming the variable and the values."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} is not allowed: must be one of {', '.join(allowed)}")
    return raw


def _dmarket_keys(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The DMarket key pair, checked now so a bad key fails at start-up naming its variable."""
    from worker.markets.dmarket.auth import signer_from

    public_key = env.get("MARKETSCAN_DMARKET_PUBLIC_KEY", "").strip() or None
    secret_key = env.get("MARKETSCAN_DMARKET_SECRET_KEY", "").strip() or None
    signer_from(public_key, secret_key)
    return public_key, secret_key


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


LEVELS_FORMAT = "NAME=MIN_CENTS-MAX_CENTS:MIN_PROFIT[,...]"


def levels_of(name: str, raw: str) -> tuple[Level, ...]:
    """Levels from `raw` in LEVELS_FORMAT, e.g. `standard=100-10000:0.05`; {} when empty."""
    levels: dict[str, Level] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        level_name, _, rule = entry.partition("=")
        band, _, profit = rule.partition(":")
        low, _, high = band.partition("-")
        try:
            level = Level(level_name.strip(), int(low), int(high), float(profit))
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


class _Reader:
    """Parses environment variables, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def flag(self, name: str, default: bool) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} must be one of 1, true, yes, on, 0, false, no, off")

    def number(
        self,
        name: str,
        kind: Callable[[str], T],
        default: T,
        minimum: float,
        maximum: float | None = None,
    ) -> T:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(
                f"{name}={raw!r} is not a valid {getattr(kind, '__name__', 'value')}"
            ) from None
        allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int past every float is past every range too
            raise ConfigError(f"{name}={raw!r} is out of range: must be {allowed}") from None
        # NaN passes every comparison below, and an infinity any range without a maximum.
        if not math.isfinite(number):
            raise ConfigError(f"{name}={raw!r} is not a finite number")
        if number < minimum or (maximum is not None and number > maximum):
            raise ConfigError(f"{name}={raw!r} is out of range: must be {allowed}")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()
