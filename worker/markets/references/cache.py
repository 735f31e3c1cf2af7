"""Reference prices cached in the broker's Redis per (kind, game, title), shared by the fleet.

Each title is looked up once per TTL by the whole fleet: a process that misses a title
claims it (SET NX with a short expiry) before asking DMarket; others that miss it meanwhile
wait for the claimer's answer instead of asking too. A claimer that dies lets its claim
expire, and the next process asks. "No reference" is cached too, so a title without buy
orders is not asked about on every page.

`refresh` asks anew for titles whatever the cache holds, and overwrites their entries: a
reference older than its TTL is looked up again before a find is stored.

An entry is a JSON list `[price_cents, order_count, fetched_unix, sales_7d,
last_sale_unix]`; entries of three (stored before the sales history was kept) still read,
with no sales history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import redis

from worker import redis_keys
from worker.domain.reference import Reference
from worker.errors import RetryableMarketError

# A claim outlives one lookup, its budget wait included; a dead claimer's expires by then.
CLAIM_SECONDS: Final = 15.0
CLAIM_POLL_SECONDS: Final = 0.05
_NONE: Final = b"[]"

Lookup = Callable[[list[str]], Mapping[str, Reference | None]]


class ReferenceCache:
    """Looked-up references of one kind and game, for `ttl_seconds`, across the fleet."""

    def __init__(self, client: redis.Redis, kind: str, game_id: str, ttl_seconds: float) -> None:
        self._client = client
        self._kind = kind
        self._prefix = f"{redis_keys.REFERENCE_PREFIX}{kind}:{game_id}:"
        self._claim_prefix = f"{redis_keys.REFERENCE_PREFIX}claim:{kind}:{game_id}:"
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        # This process's counts, for the bench's hit rate.
        self.hits = 0
        self.misses = 0

    def lookup(self, titles: Sequence[str], fetch: Lookup) -> dict[str, Reference | None]:
        """The reference of every title: cached, fetched by this process, or by another."""
        try:
            return self._lookup(list(dict.fromkeys(titles)), fetch)
        except redis.RedisError as exc:
            raise RetryableMarketError(f"reference cache unreachable in Redis: {exc!r}") from exc

    def refresh(self, titles: Sequence[str], fetch: Lookup) -> dict[str, Reference | None]:
        """Every title's reference fetched now, whatever is cached, and stored over it.

        No claim is taken: a refresh must not wait for another process's lookup, which
        may be as old as the entry being replaced.
        """
        unique = list(dict.fromkeys(titles))
        if not unique:
            return {}
        fetched = dict(fetch(unique))
        answers = {title: fetched.get(title) for title in unique}
        self.misses += len(unique)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for title, reference in answers.items():
                    pipe.set(self._key(title), _encoded(reference), px=self._ttl_ms)
                pipe.execute()
        except redis.RedisError as exc:
            raise RetryableMarketError(f"reference cache unreachable in Redis: {exc!r}") from exc
        return answers

    def _lookup(self, titles: list[str], fetch: Lookup) -> dict[str, Reference | None]:
        found = self._cached(titles)
        self.hits += len(found)
        missing = [title for title in titles if title not in found]
        self.misses += len(missing)
        deadline = time.monotonic() + 2 * CLAIM_SECONDS
        while missing:
            mine = self._claim(missing)
            if mine:
                # Another process may have stored and released a title between our miss and
                # our claim: read again, or the fleet asks twice within one TTL.
                stored = self._cached(mine)
                found.update(stored)
                if stored:
                    self._release(list(stored))
                unanswered = [title for title in mine if title not in stored]
                if unanswered:
                    found.update(self._fetch_and_store(unanswered, fetch))
            others = [title for title in missing if title not in found]
            if others:
                if time.monotonic() > deadline:
                    raise RetryableMarketError(
                        f"waited {2 * CLAIM_SECONDS:.0f}s for another process's reference "
                        f"lookup of {len(others)} titles"
                    )
                time.sleep(CLAIM_POLL_SECONDS)
                found.update(self._cached(others))
            missing = [title for title in others if title not in found]
        return found

    def _fetch_and_store(self, titles: list[str], fetch: Lookup) -> dict[str, Reference | None]:
        try:
            fetched = dict(fetch(titles))
        except BaseException:
            # Let another process (or this one's retry) ask at once, not after the claim.
            self._release(titles)
            raise
        answers = {title: fetched.get(title) for title in titles}
        with self._client.pipeline(transaction=False) as pipe:
            for title, reference in answers.items():
                pipe.set(self._key(title), _encoded(reference), px=self._ttl_ms)
                pipe.delete(self._claim_key(title))
            pipe.execute()
        return answers

    def _cached(self, titles: list[str]) -> dict[str, Reference | None]:
        if not titles:
            return {}
        values = self._client.mget([self._key(title) for title in titles])
        return {
            title: _decoded(self._kind, value)
            for title, value in zip(titles, values, strict=True)
            if value is not None
        }

    def _claim(self, titles: list[str]) -> list[str]:
        with self._client.pipeline(transaction=False) as pipe:
            for title in titles:
                pipe.set(self._claim_key(title), b"1", nx=True, px=round(CLAIM_SECONDS * 1000))
            granted = pipe.execute()
        return [title for title, ok in zip(titles, granted, strict=True) if ok]

    def _release(self, titles: list[str]) -> None:
        self._client.delete(*(self._claim_key(title) for title in titles))

    def _key(self, title: str) -> str:
        return self._prefix + title

    def _claim_key(self, title: str) -> str:
        return self._claim_prefix + title


def _encoded(reference: Reference | None) -> bytes:
    if reference is None:
        return _NONE
    last_sale_at = reference.last_sale_at
    return json.dumps(
        [
            reference.price_cents,
            reference.order_count,
            reference.fetched_at.timestamp(),
            reference.sales_7d,
            None if last_sale_at is None else last_sale_at.timestamp(),
        ]
    ).encode()


def _decoded(kind: str, value: bytes | str) -> Reference | None:
    fields = json.loads(value)
    if not fields:
        return None
    price_cents, order_count, fetched_unix, *history = fields
    # Three fields: stored by a worker that kept no sales history.
    sales_7d, last_sale_unix = history if history else (None, None)
    return Reference(
        kind,
        price_cents,
        order_count,
        datetime.fromtimestamp(fetched_unix, UTC),
        sales_7d=sales_7d,
        last_sale_at=None
        if last_sale_unix is None
        else datetime.fromtimestamp(last_sale_unix, UTC),
    )
