"""How long to wait before retrying a market request."""

from __future__ import annotations

import math
import random

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
