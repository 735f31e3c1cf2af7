"""Marketscan's settings: read from the environment once, validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from worker.domain.opportunities import LEVELS, Level
from worker.errors import ConfigError, InvalidInput

T = TypeVar("T")

DEFAULT_DATABASE_URL = "postgresql://marketscan:marketscan@localhost:5432/marketscan"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the runtime, with its unit in its name."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
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
    # so a logged Settings never shows them.
    dmarket_public_key: str | None = field(default=None, repr=False)
    dmarket_secret_key: str | None = field(default=None, repr=False)
    http_timeout_seconds: float = 15.0
    visibility_timeout_seconds: int = 3600
    telegram_bot_token: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_min_interval_seconds: float = 3.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (the process environment by default)."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        defaults = cls()
        dmarket_public_key, dmarket_secret_key = _dmarket_keys(env)
        return cls(
            database_url=reader.text("DATABASE_URL", defaults.database_url),
            broker_url=reader.text("CELERY_BROKER_URL", defaults.broker_url),
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
                defaults.dmarket_requests_per_second,
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
        )


def _dmarket_keys(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The DMarket key pair, checked now so a bad key fails at start-up naming its variable."""
    from worker.markets.dmarket_auth import signer_from

    public_key = env.get("MARKETSCAN_DMARKET_PUBLIC_KEY", "").strip() or None
    secret_key = env.get("MARKETSCAN_DMARKET_SECRET_KEY", "").strip() or None
    signer_from(public_key, secret_key)
    return public_key, secret_key


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


class _Reader:
    """Parses environment variables, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

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
        number = float(value)  # type: ignore[arg-type]
        if number < minimum or (maximum is not None and number > maximum):
            allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ConfigError(f"{name}={raw!r} is out of range: must be {allowed}")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()
