"""The fleet's circuit breaker for a market that is down, kept in the broker's Redis.

Closed, every request goes. `failures_to_open` server errors or timeouts in a row across
the fleet, or one 401/403, open it: then no process sends anything to that market, and its
scans wait (alive, heartbeating, spending no retry: DESIGN invariants 8 and 11). After the
cool-down one process wins the probe; its success closes the breaker and the scans go on
by themselves, its failure opens it for another cool-down. Times are Redis's clock (TIME),
so hosts' clocks need not agree. Every transition is logged with its cause.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import redis
from redis.commands.core import Script

from worker import redis_keys
from worker.errors import RateBudgetWait, RetryableMarketError

log = logging.getLogger(__name__)

# How long a waiting page sleeps between looks at an open breaker, at most.
WAIT_POLL_SECONDS: Final = 1.0
_FAILURES_TTL_MS: Final = 3_600_000

# KEYS[1] failure counter, KEYS[2] open hash. ARGV[1] threshold, ARGV[2] 1 to open at once,
# ARGV[3] cause, ARGV[4] counter expiry in ms. Returns 0 (still closed), 1 (opened now),
# 2 (was open: a failed probe or a late answer; the cool-down starts again).
_FAILURE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'opened_at', tostring(now), 'cause', ARGV[3])
  return 2
end
if tonumber(ARGV[2]) == 0 and failures < tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'since', tostring(now), 'opened_at', tostring(now), 'cause', ARGV[3])
return 1
"""
# KEYS[1] failure counter, KEYS[2] open hash, KEYS[3] probe claim. Returns 1 if it closed.
_SUCCESS: Final = """
redis.call('DEL', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[3])
  return 1
end
return 0
"""
# KEYS[1] open hash, KEYS[2] probe claim; ARGV[1] cool-down in ms. Returns -1 (closed: go),
# 0 (this request is the probe: go) or the milliseconds to wait.
_CHECK: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local opened_ms = math.floor(tonumber(redis.call('HGET', KEYS[1], 'opened_at')) * 1000)
local left = opened_ms + tonumber(ARGV[1]) - now_ms
if left > 0 then return left end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
return tonumber(ARGV[1])
"""


class MarketUnavailable(RateBudgetWait):
    """The market's circuit breaker is open: nothing was sent, and waiting is not failing."""


@dataclass(frozen=True)
class BreakerState:
    """An open breaker: since when the market has been unavailable, and why."""

    since: datetime
    cause: str


class CircuitBreaker:
    """The breaker of one market API (keyed by its base URL), shared by the fleet."""

    def __init__(
        self, client: redis.Redis, market: str, failures_to_open: int, cooldown_seconds: float
    ) -> None:
        self.market = market
        self._client = client
        self._failures_to_open = failures_to_open
        self._cooldown_ms = max(1, round(cooldown_seconds * 1000))
        self._keys = _keys(market)
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)
        self._check = client.register_script(_CHECK)

    def before_request(self) -> None:
        """Return if a request may go now; MarketUnavailable (wait this long) if not."""
        _, open_key, probe_key = self._keys
        wait_ms = self._guarded(self._check, [open_key, probe_key], [self._cooldown_ms])
        if wait_ms == 0:
            log.warning("%s: breaker half-open: one request probes the market", self.market)
        if wait_ms > 0:
            state = self.state()
            raise MarketUnavailable(
                f"market unavailable since {_since(state)}: waiting for the breaker",
                retry_after_seconds=min(wait_ms / 1000, WAIT_POLL_SECONDS),
            )

    def record_success(self) -> None:
        if self._guarded(self._success, list(self._keys), []) == 1:
            log.warning("%s: breaker closed: the probe succeeded", self.market)

    def record_failure(self, cause: str, *, at_once: bool = False) -> bool:
        """Count a failure (a 5xx, a timeout; `at_once` for a 401/403); True if now open."""
        outcome = self._guarded(
            self._failure,
            [self._keys[0], self._keys[1]],
            [self._failures_to_open, int(at_once), cause, _FAILURES_TTL_MS],
        )
        if outcome == 1:
            log.warning("%s: breaker opened: %s", self.market, cause)
        elif outcome == 2:
            log.warning("%s: breaker stays open: %s", self.market, cause)
        return outcome != 0

    def state(self) -> BreakerState | None:
        return breaker_state(self._client, self.market)

    def _guarded(self, script: Script, keys: list[str], args: list[str | int]) -> int:
        try:
            return int(script(keys=keys, args=args))
        except redis.RedisError as exc:
            raise RetryableMarketError(f"circuit breaker unreachable in Redis: {exc!r}") from exc


def breaker_state(client: redis.Redis, market: str) -> BreakerState | None:
    """The open breaker of `market` (its base URL), or None while it is closed."""
    fields = {_text(name): _text(value) for name, value in client.hgetall(_keys(market)[1]).items()}
    if not fields:
        return None
    since = float(fields.get("since", "0"))
    cause = fields.get("cause", "")
    return BreakerState(datetime.fromtimestamp(since, UTC), cause)


def is_open(client: redis.Redis, market: str) -> bool:
    """Whether the breaker of `market` is open (for metrics and status)."""
    return bool(client.exists(_keys(market)[1]))


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _keys(market: str) -> tuple[str, str, str]:
    prefix = f"{redis_keys.BREAKER_PREFIX}{market}:"
    return prefix + "failures", prefix + "open", prefix + "probe"


def _since(state: BreakerState | None) -> str:
    return "now" if state is None else state.since.isoformat(timespec="seconds")
