"""A market's fee table kept in the broker's Redis, fetched once for the whole fleet.

The table is kept until its `expires_at()`: the first reduced fee to expire, or a day after
the fetch (worker.domain.fees). A process that finds none claims the fetch (SET NX with an
expiry) and fetches; every other process that asks meanwhile waits for the stored table
instead of asking the market too (a single flight, as worker.markets.fresh.shared_walk's).
A fetch that fails stores nothing and releases its claim, so the next asker fetches at once;
a fetcher that dies lets its claim expire. Redis that does not answer is a retryable
error: without the fleet's table, each process would ask the market for the whole list.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import Final

import redis

from worker import redis_keys
from worker.domain.fees import FeeTable, ReducedFee
from worker.errors import RetryableMarketError

# A claim outlives one fetch of every page (worker.markets.fees.dmarket.MAX_PAGES at the
# unsigned 2 requests/s is 50 s); a dead fetcher's lapses by then.
CLAIM_MS: Final = 120_000
# How often an asker waiting for another's fetch looks for the stored table.
WAIT_POLL_SECONDS: Final = 0.05
# Releases the claim only if it is still ours (a late fetcher must not free another's).
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Fetch = Callable[[], FeeTable]

# The last table this process decoded per key: a page asks for the table each time, and a
# list of thousands of titles is decoded only when its stored bytes change.
_decoded: dict[str, tuple[bytes, FeeTable]] = {}
_decoded_lock = threading.Lock()


class FeeCache:
    """The fee table of one market and game, shared by the fleet until it expires."""

    def __init__(
        self,
        client: redis.Redis,
        market: str,
        game_id: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table_key = f"{redis_keys.FEE_PREFIX}{market}:{game_id}:table"
        self._claim_key = f"{redis_keys.FEE_PREFIX}{market}:{game_id}:claim"
        self._clock = clock
        self._sleep = sleep
        self._release = client.register_script(_RELEASE)

    def table(self, fetch: Fetch) -> FeeTable:
        """The stored table while it has not expired; else one fetched by this process
        (and stored for the others) or by another that fetches now."""
        try:
            return self._stored_or_fetched(fetch)
        except redis.RedisError as exc:
            raise RetryableMarketError(f"fee cache unreachable in Redis: {exc!r}") from exc

    def _stored_or_fetched(self, fetch: Fetch) -> FeeTable:
        # Two claims' lives: one asker never waits out more than a dead fetcher and a slow one.
        deadline = time.monotonic() + 2 * CLAIM_MS / 1000
        while True:
            stored = self._stored()
            if stored is not None:
                return stored
            token = secrets.token_hex(8)
            if self._client.set(self._claim_key, token, nx=True, px=CLAIM_MS):
                try:
                    # Another fetcher may have stored and released between our miss and our
                    # claim: read again, or the fleet fetches twice.
                    stored = self._stored()
                    if stored is not None:
                        return stored
                    fetched = fetch()
                    self._store(fetched)
                    return fetched
                finally:
                    self._release(keys=[self._claim_key], args=[token])
            # Another process fetches now: wait for its table while its claim lasts. A claim
            # gone with no table stored is a fetch that failed: this asker fetches itself.
            while self._client.exists(self._claim_key):
                if time.monotonic() > deadline:
                    raise RetryableMarketError(
                        f"waited {2 * CLAIM_MS / 1000:.0f}s for another process's fee fetch"
                    )
                self._sleep(WAIT_POLL_SECONDS)
                stored = self._stored()
                if stored is not None:
                    return stored

    def _stored(self) -> FeeTable | None:
        raw = self._client.get(self._table_key)
        if raw is None:
            return None
        stored = _decoded_table(self._table_key, raw if isinstance(raw, bytes) else raw.encode())
        # Redis drops the key at the expiry too; this says so on the caller's clock.
        if stored is None or stored.expires_at() <= self._clock():
            return None
        return stored

    def _store(self, fetched: FeeTable) -> None:
        keep_ms = max(1, math.ceil((fetched.expires_at() - self._clock()) * 1000))
        self._client.set(self._table_key, encoded(fetched), px=keep_ms)


def encoded(table: FeeTable) -> bytes:
    """The table as stored in Redis (JSON)."""
    return json.dumps(
        {
            "default_bps": table.default_bps,
            "min_amount_cents": table.min_amount_cents,
            "fetched_at": table.fetched_at,
            "default_source": table.default_source,
            "reduced": [
                [fee.title, fee.bps, fee.min_price_cents, fee.max_price_cents, fee.expires_at]
                for fee in table.reduced
            ],
        },
        separators=(",", ":"),
    ).encode()


def decoded(raw: bytes) -> FeeTable:
    """A stored table; ValueError (KeyError, TypeError) for anything else."""
    data = json.loads(raw)
    return FeeTable(
        default_bps=data["default_bps"],
        min_amount_cents=data["min_amount_cents"],
        reduced=tuple(
            ReducedFee(title, bps, low, high, float(expires_at))
            for title, bps, low, high, expires_at in data["reduced"]
        ),
        fetched_at=float(data["fetched_at"]),
        default_source=data["default_source"],
    )


def _decoded_table(key: str, raw: bytes) -> FeeTable | None:
    """The table stored under `key`, decoded once per value; None for a value this version
    cannot read (it is fetched again, and overwritten)."""
    with _decoded_lock:
        known = _decoded.get(key)
    if known is not None and known[0] == raw:
        return known[1]
    try:
        table = decoded(raw)
    except (ValueError, KeyError, TypeError):
        return None
    with _decoded_lock:
        _decoded[key] = (raw, table)
    return table
