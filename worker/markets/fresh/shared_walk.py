"""One walk of a listing's newest offers serves every fresh watch polling it at once.

Fresh watches on the same market, game and listing API poll on the same whole multiples of
their interval (worker.db.page_sql.COMMIT_POLL), so their polls start together. The first
to ask walks the market and stores the walk in the broker's Redis; the others wait for it
(a single flight: a claim taken with SET NX) and read it. A walk is shared for
`share_seconds` after it read the market, and only with a poll whose watermark it reaches:
a watch that lags further back (just resumed, say) walks on its own. So the requests a
second that fresh watches cost do not grow with their number.

Redis is an optimisation here, never a condition: if it does not answer, each poll walks
alone, which costs requests, not correctness.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import redis

from worker import redis_keys
from worker.domain.listing import Item

log = logging.getLogger(__name__)

# How long a claim to walk lives: a walker that died frees it after this.
CLAIM_MS: Final = 20_000
# How long a stored walk is kept (far longer than it is shared: only for the readers).
KEPT_MS: Final = 60_000
# How often a poll waiting for another's walk looks for it.
WAIT_POLL_SECONDS: Final = 0.02
# Releases the claim only if it is still ours.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Walk:
    """A listing's newest offers, newest first, as read at `as_of` (Unix seconds).

    `bottom_second`: the second of the last offer walked (None: none); `complete`: the walk
    reached the end of the listing. It covers every offer from `bottom_second` up.
    """

    items: tuple[Item, ...]
    seconds: tuple[int, ...]
    bottom_second: int | None
    complete: bool
    as_of: float

    def reaches(self, second: int) -> bool:
        """Whether it holds every offer created at `second` or later."""
        return self.complete or (self.bottom_second is not None and self.bottom_second < second)

    def to_json(self) -> str:
        return json.dumps(
            {
                "items": [
                    [item.item_id, item.title, item.price_cents, item.extra] for item in self.items
                ],
                "seconds": list(self.seconds),
                "bottom_second": self.bottom_second,
                "complete": self.complete,
                "as_of": self.as_of,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Walk:
        data: dict[str, Any] = json.loads(text)
        items = tuple(
            Item(item_id, title, price, None, dict(extra))
            for item_id, title, price, extra in data["items"]
        )
        return cls(
            items=items,
            seconds=tuple(data["seconds"]),
            bottom_second=data["bottom_second"],
            complete=bool(data["complete"]),
            as_of=float(data["as_of"]),
        )


# Walks the market down to a second, within a page bound: (second, max_pages) -> Walk.
WalkMarket = Callable[[int, int], Walk]


class SharedWalk:
    """The fleet's latest walk of one listing (`group`: market, game and API)."""

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        share_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._walk_key = f"{redis_keys.FRESH_WALK_PREFIX}{group}:walk"
        self._claim_key = f"{redis_keys.FRESH_WALK_PREFIX}{group}:claim"
        self._share_seconds = share_seconds
        self._clock = clock
        self._sleep = sleep
        self._release = client.register_script(_RELEASE)

    def newest(self, down_to_second: int, max_pages: int, walk: WalkMarket) -> Walk:
        """A walk down to `down_to_second` read at most `share_seconds` ago: another
        poll's if there is one, else this poll's own (stored for the others)."""
        asked_at = self._clock()
        try:
            return self._shared_or_walked(asked_at, down_to_second, max_pages, walk)
        except redis.RedisError as exc:
            log.warning("fresh walks are not shared now (%s): this poll walks alone", exc)
            return walk(down_to_second, max_pages)

    def _shared_or_walked(
        self, asked_at: float, down_to_second: int, max_pages: int, walk: WalkMarket
    ) -> Walk:
        stored = self._usable(asked_at - self._share_seconds, down_to_second)
        if stored is not None:
            return stored
        token = secrets.token_hex(8)
        if self._client.set(self._claim_key, token, nx=True, px=CLAIM_MS):
            try:
                # The poll that held the claim may have stored its walk and let go between
                # the look above and this claim: look again, or the market is walked twice.
                stored = self._usable(asked_at - self._share_seconds, down_to_second)
                if stored is not None:
                    return stored
                walked = walk(down_to_second, max_pages)
                self._client.set(self._walk_key, walked.to_json(), px=KEPT_MS)
                return walked
            finally:
                self._release(keys=[self._claim_key], args=[token])
        # Another poll walks now: wait for its walk while its claim lasts.
        while self._client.exists(self._claim_key):
            self._sleep(WAIT_POLL_SECONDS)
            stored = self._usable(asked_at - self._share_seconds, down_to_second)
            if stored is not None:
                return stored
        stored = self._usable(asked_at - self._share_seconds, down_to_second)
        return stored if stored is not None else walk(down_to_second, max_pages)

    def _usable(self, read_after: float, down_to_second: int) -> Walk | None:
        raw = self._client.get(self._walk_key)
        if raw is None:
            return None
        stored = Walk.from_json(raw)
        if stored.as_of < read_after or not stored.reaches(down_to_second):
            return None
        return stored
