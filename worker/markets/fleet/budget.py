"""One request budget per market API, shared by every process and host through Redis.

Why two short Lua scripts and not `limits`: it stamps each hit with the calling host's own
clock, so skew between hosts bends the shared window, and its windows are whole seconds,
which cannot hold the transit margin below. Measured: four
processes sharing 2 requests/s through `limits` 5.8 (moving window, Redis storage) against
a loopback server enforcing 2/s sent, in 30 s, 25 requests that put a one-second window
over budget and drew 15 429s; this budget, same harness, 0 and 0. Here the window is
measured on Redis's clock (TIME) alone, and the fleet-wide "paused until" that a 429 sets
is checked in the same atomic step as the grant.

A budget has two lanes. A priority caller (a fresh watch's poll) waits for at most one
slot however many full-scan pages queue: refused, it leaves a mark in the same atomic step,
and while any mark stands every slot goes to a priority caller. A mark lapses a couple of
windows after its waiter last asked, so a waiter that died stops holding the lane.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import uuid
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
# How long a priority waiter's mark outlives its last ask, in windows. Its asks are at most
# a window apart (a longer wait is handed back, and the mark withdrawn), so one window of
# slack covers a slow wake-up; a waiter that died holds the lane no longer than this.
PRIORITY_MARK_WINDOWS: Final = 2
# How long a full scan waits when a slot is free but a priority waiter is about to take it.
PRIORITY_YIELD_SECONDS: Final = 0.02

# KEYS[1] grants (sorted set scored by grant time in microseconds), KEYS[2] paused-until
# marker, KEYS[3] grant counter, KEYS[4] priority waiters (sorted set scored by the time
# their mark lapses, in microseconds).
# ARGV[1] requests per window, ARGV[2] window in microseconds, ARGV[3] the priority
# waiter's name ('' for a full scan), ARGV[4] a mark's life in microseconds, ARGV[5] a full
# scan's wait behind a priority waiter about to take a free slot, in microseconds.
# Returns the wait in microseconds, 0 when granted.
_ACQUIRE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local waiter = ARGV[3]
local mark_life = tonumber(ARGV[4])
local function mark()
  if waiter ~= '' then
    redis.call('ZADD', KEYS[4], now + mark_life, waiter)
    redis.call('PEXPIRE', KEYS[4], math.ceil(mark_life / 1000))
  end
end
local paused_ms = redis.call('PTTL', KEYS[2])
if paused_ms > 0 then
  -- A priority caller queues through a pause too: the first slot after it is its.
  mark()
  return paused_ms * 1000
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local free = limit - redis.call('ZCARD', KEYS[1])
local waiting = 0
if waiter == '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  waiting = redis.call('ZCARD', KEYS[4])
end
if free > 0 and waiting == 0 then
  -- Members must be unique even for grants in the same microsecond.
  redis.call('ZADD', KEYS[1], now, redis.call('INCR', KEYS[3]))
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  redis.call('PEXPIRE', KEYS[3], math.ceil(window / 1000))
  if waiter ~= '' then redis.call('ZREM', KEYS[4], waiter) end
  return 0
end
mark()
-- The next `waiting` slots are the priority waiters'; a caller may have the one after:
-- the slot the (waiting + 1 - free)-th oldest grant frees, or a window hence if the
-- window holds fewer grants than that.
local ahead = waiting - free
if ahead < 0 then return tonumber(ARGV[5]) end
local grant = redis.call('ZRANGE', KEYS[1], ahead, ahead, 'WITHSCORES')
if grant[2] == nil then return window end
return math.max(waiting > 0 and tonumber(ARGV[5]) or 1, tonumber(grant[2]) + window - now)
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
        self._priority_key = f"{redis_keys.BUDGET_PREFIX}{api}:priority"
        # A priority waiter is a thread of this handle: a thread waits for one slot at a
        # time, so its asks refresh one mark. The pid tells a forked child from its parent.
        self._handle = uuid.uuid4().hex
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    def try_acquire(self, priority: bool = False) -> float:
        """Take a slot now and return 0, or return the seconds until one may free up.

        `priority`: a refusal queues this thread ahead of every full scan until it is
        granted or its mark lapses (PRIORITY_MARK_WINDOWS after this ask).
        """
        window_us = round(self.window_seconds * 1_000_000)
        try:
            wait_us = self._acquire(
                keys=[self._grants_key, self._paused_key, self._counter_key, self._priority_key],
                args=[
                    self.limit,
                    window_us,
                    self._waiter() if priority else "",
                    PRIORITY_MARK_WINDOWS * window_us,
                    round(PRIORITY_YIELD_SECONDS * 1_000_000),
                ],
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

    def acquire(self, drain_requested: Callable[[], bool], *, priority: bool = False) -> None:
        """Block until a slot is ours; RateBudgetWait if the API is paused or a drain began.

        Waiting one's turn never takes longer than a window, however many processes queue,
        so it happens here. A longer wait is a fleet-wide pause after a 429: it goes back to
        the page runner, which waits it out watching the drain flag and the lease, and does
        not count it as a retry.

        `priority`: wait for at most one slot, ahead of every full scan (the fresh watches'
        lane); a priority caller that gives up takes its mark back.
        """
        started = time.monotonic()
        try:
            while (wait_seconds := self.try_acquire(priority)) > 0:
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
        except BaseException:
            if priority:
                self._give_up_priority()
            raise
        observe.budget_wait(time.monotonic() - started)

    def _waiter(self) -> str:
        return f"{self._handle}:{os.getpid()}:{threading.get_ident()}"

    def _give_up_priority(self) -> None:
        """Take this thread's mark back, so full scans need not wait for it to lapse."""
        # Best effort: the mark lapses on its own, and the error being raised says more.
        with contextlib.suppress(redis.RedisError):
            self._client.zrem(self._priority_key, self._waiter())
