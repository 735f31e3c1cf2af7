"""A second market's whole price list kept in the broker's Redis, fetched once for the fleet.

Skinport answers its list in one request, caches it 5 minutes and allows 8 requests per 5
minutes, so every process of every host reads one stored copy: the list is fetched at most
once per life. A process that finds no fresh list claims the fetch (SET NX with an expiry)
and fetches; every other asker meanwhile waits for the stored list and never fetches while
a claim stands, so a page waits for at most one fetch. A fetch that fails stores nothing,
releases its claim and leaves a note naming it, so its waiters fail with it instead of
fetching one after another; the next asker fetches at once. A fetcher that dies lets its
claim lapse.

A list of ~20,000 titles is stored as one hash per read (a generation), written whole,
then a small pointer to it is set: a reader follows the pointer and reads only its page's
titles, so it sees the old list or the new one, never half of one, and an old generation
expires on its own. Redis that does not answer is a retryable error: without the fleet's
copy each process would spend the market's few requests itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import redis

from worker import redis_keys
from worker.domain.price_list import MarketPrice, PriceList
from worker.errors import RateBudgetWait, RetryableMarketError
from worker.markets.second_market.source import PriceListSource

log = logging.getLogger(__name__)

# A claim outlives one fetch: two requests (the list and its sales history), each after a
# budget wait of up to 75 s, and their downloads. A dead fetcher's claim lapses by then.
CLAIM_SECONDS: Final = 240.0
# How often an asker waiting for another's fetch looks for the stored list: a fetch takes
# seconds, and the fleet's waiters should not keep Redis busy meanwhile.
WAIT_POLL_SECONDS: Final = 0.1
# Titles per HSET when a list is stored: bounded commands, all in one pipeline.
STORE_CHUNK: Final = 1000

# Releases the claim only if it is still ours (a late fetcher must not free another's).
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A failed fetch: releases the claim if ours and, in the same step, notes the failure for
# the askers waiting on it (they must never see the claim gone without the note).
_ABANDON: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Points readers at a stored generation, unless the pointer names a newer read: a fetcher
# whose claim lapsed must not replace the list another fetched after it.
_PUBLISH: Final = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, pointer = pcall(cjson.decode, current)
  if ok and type(pointer) == 'table' and tonumber(pointer['fetched_at'])
      and tonumber(pointer['fetched_at']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""

Prices = tuple[float, dict[str, MarketPrice | None]]


@dataclass(frozen=True)
class _Pointer:
    """The stored read readers follow: its generation's hash and what the list says."""

    generation: str
    fetched_at: float
    skipped: int
    count: int


class SharedPriceList:
    """One market's price list for one `scope` (e.g. "730:USD"), shared by the fleet for
    `life_seconds` after the market answered it."""

    def __init__(
        self,
        client: redis.Redis,
        market: str,
        scope: str,
        life_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """`should_stop`: a wait for another process's fetch ends when it says so (the
        worker drains: the page hands over instead of waiting out a fetch it does not need)."""
        self._client = client
        self._should_stop = should_stop
        self._market = market
        self._base = f"{redis_keys.PRICE_LIST_PREFIX}{market}:{scope}:"
        self._life_seconds = life_seconds
        self._clock = clock
        self._sleep = sleep
        self._release = client.register_script(_RELEASE)
        self._abandon = client.register_script(_ABANDON)
        self._publish = client.register_script(_PUBLISH)
        # This process's fetches (failed ones too: each cost the market a request).
        self.fetches = 0

    def prices(self, titles: Sequence[str], source: PriceListSource) -> Prices:
        """The stored list's `fetched_at` and each title's price (None: not on the list),
        read from the fleet's copy while fresh; else fetched once from `source`."""
        try:
            return self._stored_or_fetched(list(dict.fromkeys(titles)), source)
        except redis.RedisError as exc:
            raise RetryableMarketError(
                f"{self._market} price list unreachable in Redis: {exc!r}"
            ) from exc

    def _stored_or_fetched(self, titles: list[str], source: PriceListSource) -> Prices:
        claim_seconds = CLAIM_SECONDS
        # Two claims' lives: one asker never waits out more than a dead fetcher and a slow one.
        deadline = time.monotonic() + 2 * claim_seconds
        claim_key = self._base + "claim"
        while True:
            stored = self._stored(titles)
            if stored is not None:
                return stored
            token = secrets.token_hex(8)
            if self._client.set(claim_key, token, nx=True, px=math.ceil(claim_seconds * 1000)):
                return self._fetched(titles, source, token)
            # Another process fetches now: wait for its list while its claim lasts.
            seen: set[str] = set()
            while (holder := self._client.get(claim_key)) is not None:
                seen.add(_text(holder))
                if self._should_stop():
                    raise RateBudgetWait(
                        f"waiting for another process's fetch of the {self._market} price "
                        "list when the worker began to drain",
                        retry_after_seconds=WAIT_POLL_SECONDS,
                    )
                if time.monotonic() > deadline:
                    raise RetryableMarketError(
                        f"waited {2 * claim_seconds:.0f}s for another process's fetch of "
                        f"the {self._market} price list"
                    )
                self._sleep(WAIT_POLL_SECONDS)
                stored = self._stored(titles)
                if stored is not None:
                    return stored
            # The claim is gone: a fetch we waited on failed (its note says so), or one
            # stored its list (read at the loop's top), or a dead fetcher's claim lapsed.
            failure = self._failure(seen)
            if failure is not None:
                raise RetryableMarketError(
                    f"another process's fetch of the {self._market} price list failed: {failure}"
                )

    def _fetched(self, titles: list[str], source: PriceListSource, token: str) -> Prices:
        """The list fetched under our claim (`token`) and stored, the claim then released."""
        try:
            # Another fetcher may have stored and released between our miss and our claim:
            # read again, or the fleet fetches twice within one life.
            stored = self._stored(titles)
            if stored is None:
                self.fetches += 1
                fetched = source.fetch()
                self._store(fetched, token)
                if fetched.skipped:
                    # Unpriced for the fleet until the next read: worth an operator's look.
                    log.warning(
                        "%s price list: %d of %d items skipped, their price not a finite "
                        "number >= 0",
                        self._market,
                        fetched.skipped,
                        fetched.skipped + len(fetched.prices),
                    )
                stored = (
                    fetched.fetched_at,
                    {title: fetched.prices.get(title) for title in titles},
                )
        except BaseException as exc:
            self._note_failure(token, exc)
            raise
        self._release(keys=[self._base + "claim"], args=[token])
        return stored

    def _stored(self, titles: list[str]) -> Prices | None:
        """The fresh stored list's answer for `titles`; None if there is none to read."""
        pointer = _pointer(self._client.get(self._base + "pointer"))
        if pointer is None or pointer.fetched_at + self._life_seconds <= self._clock():
            return None
        if pointer.count == 0:
            return pointer.fetched_at, dict.fromkeys(titles)
        list_key = self._list_key(pointer.generation)
        with self._client.pipeline(transaction=False) as pipe:
            pipe.exists(list_key)
            if titles:
                pipe.hmget(list_key, titles)
            answers = pipe.execute()
        # A generation gone (evicted) or written by a version that stores values otherwise
        # is no list: it is fetched again, and replaced.
        if not answers[0]:
            return None
        try:
            prices = {
                title: _price(value)
                for title, value in zip(titles, answers[1] if titles else [], strict=True)
            }
        except (ValueError, TypeError):
            return None
        return pointer.fetched_at, prices

    def _store(self, fetched: PriceList, generation: str) -> None:
        """The list written as a new generation, then the pointer moved to it."""
        claim_ms = CLAIM_SECONDS * 1000
        life_ms = self._life_seconds * 1000
        list_key = self._list_key(generation)
        items = [(title, _encoded(price)) for title, price in fetched.prices.items()]
        with self._client.pipeline(transaction=False) as pipe:
            for start in range(0, len(items), STORE_CHUNK):
                pipe.hset(list_key, mapping=dict(items[start : start + STORE_CHUNK]))
                if start == 0:
                    # Set with the first chunk: a writer dying mid-list leaves nothing forever.
                    # It outlives the pointer naming it (set later, kept shorter), so a reader
                    # that followed the pointer always finds it.
                    pipe.pexpire(list_key, max(1, math.ceil(2 * life_ms + claim_ms)))
            pipe.execute()
        pointer = json.dumps(
            {
                "generation": generation,
                "fetched_at": fetched.fetched_at,
                "skipped": fetched.skipped,
                "count": len(items),
            },
            separators=(",", ":"),
        )
        self._publish(
            keys=[self._base + "pointer"],
            args=[pointer, repr(fetched.fetched_at), max(1, math.ceil(life_ms + claim_ms))],
        )

    def _note_failure(self, token: str, exc: BaseException) -> None:
        note = json.dumps({"token": token, "error": str(exc) or type(exc).__name__})
        # Redis failing here too: the claim lapses on its own, and the fetch's own error is
        # the one to raise.
        with contextlib.suppress(redis.RedisError):
            self._abandon(
                keys=[self._base + "claim", self._base + "failed"],
                args=[token, note, math.ceil(CLAIM_SECONDS * 1000)],
            )

    def _failure(self, seen: set[str]) -> str | None:
        """What failed a fetch whose claim this asker saw (its token among `seen`)."""
        raw = self._client.get(self._base + "failed")
        if raw is None:
            return None
        try:
            note = json.loads(raw)
            token, error = note["token"], note["error"]
        except (ValueError, KeyError, TypeError):
            return None
        return str(error) if str(token) in seen else None

    def _list_key(self, generation: str) -> str:
        return f"{self._base}list:{generation}"


def _encoded(price: MarketPrice) -> str:
    """A title's stored value: `[min_price_cents, volume_7d]`, either null."""
    return json.dumps([price.min_price_cents, price.volume_7d], separators=(",", ":"))


def _price(value: bytes | str | None) -> MarketPrice | None:
    """A stored value read back (None: not on the list); ValueError for any other value."""
    if value is None:
        return None
    fields = json.loads(value)
    if not isinstance(fields, list) or len(fields) != 2:
        raise ValueError(f"not a stored price: {value!r}")
    if not all(field is None or type(field) is int for field in fields):
        raise ValueError(f"not a stored price: {value!r}")
    return MarketPrice(fields[0], fields[1])


def _pointer(raw: bytes | str | None) -> _Pointer | None:
    """The stored pointer; None for none, or one this version cannot read."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return _Pointer(
            generation=str(data["generation"]),
            fetched_at=float(data["fetched_at"]),
            skipped=int(data["skipped"]),
            count=int(data["count"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _text(value: bytes | str) -> str:
    """A value as read from a client that decodes responses or one that does not."""
    return value.decode() if isinstance(value, bytes) else value
