"""How long to wait before retrying a market request, and what a market asked for."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from worker.errors import InvalidInput

# 2**64 times any sane base already exceeds any sane cap; bounding the exponent keeps
# int-to-float conversion from overflowing on absurd attempt numbers.
_MAX_EXPONENT = 64

_shared_rng = random.Random()


def retry_delay_seconds(
    attempt: int,
    base_seconds: float,
    max_seconds: float,
    retry_after_seconds: float | None,
    rng: random.Random | None = None,
) -> float:
    """The wait before retry number `attempt` (0 for the first retry).

    The server's requested wait wins when it gave one (capped at `max_seconds`, so a
    hostile or broken header cannot park a worker for hours). Otherwise exponential
    backoff with full jitter: uniform in [0, min(max_seconds, base_seconds * 2**attempt)],
    which spreads concurrent retries instead of having them collide again in lockstep.
    """
    if attempt < 0:
        raise InvalidInput(f"attempt: must be >= 0, got {attempt}")
    if base_seconds < 0:
        raise InvalidInput(f"base_seconds: must be >= 0, got {base_seconds}")
    if max_seconds < 0:
        raise InvalidInput(f"max_seconds: must be >= 0, got {max_seconds}")
    if retry_after_seconds is not None:
        if math.isnan(retry_after_seconds):
            raise InvalidInput("retry_after_seconds: must be a number, got nan")
        return min(max(retry_after_seconds, 0.0), max_seconds)
    ceiling_seconds = min(max_seconds, base_seconds * 2 ** min(attempt, _MAX_EXPONENT))
    return (rng or _shared_rng).uniform(0.0, ceiling_seconds)


def retry_after_from_headers(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """The wait a 429/5xx asked for: Retry-After (seconds or HTTP-date), else RateLimit-Reset.

    None when neither header is there or parses; the caller then backs off on its own.
    """
    retry_after = headers.get("Retry-After", "").strip()
    if retry_after:
        seconds = non_negative_seconds(retry_after)
        if seconds is None:
            seconds = _seconds_until_http_date(retry_after, now or datetime.now(UTC))
        if seconds is not None:
            return seconds
    reset = headers.get("RateLimit-Reset", "").strip()
    return non_negative_seconds(reset) if reset else None


def non_negative_seconds(text: str) -> float | None:
    """A header's count of seconds, or None for anything that is not a finite one >= 0."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until_http_date(text: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are GMT; parsedate gives naive datetimes for "-0000".
        moment = moment.replace(tzinfo=UTC)
    # A date already past means "now", not a negative wait.
    return max(0.0, (moment - now).total_seconds())
