"""The ledger's audit: a page whose marker has said `sent` for long is looked for in the
queue itself, since no marker is trusted for ever.

kombu's Redis transport pops a message (BRPOP) and records it in its unacked set in one
Python call, but in two Redis commands: a worker killed between them loses the message,
which is then in no queue and not unacked, while its marker still says `sent`. Nothing
else would notice before the marker expires, a week later.

Walking the queue is O(queue), so it runs rarely: at most once per half audit bound in a
recovering process, and only while some settled page's marker has said `sent` for half the
bound; a lost message is thus found within the bound. The walk reads the queue lists
left to right in chunks (kombu pushes at the left and pops at the right, so nothing is
skipped while it moves), then the unacked set, then re-reads the markers and the unacked
set: a message a live worker popped meanwhile is marked `taken` by then, or found unacked.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from worker.chain import broker_ledger
from worker.domain.page_message import PageMessage

CHUNK = 1000


@dataclass
class LedgerAudit:
    """Looks for messages in `queues` (kombu's list names) at most every `seconds` / 2."""

    queues: tuple[str, ...]
    seconds: float
    chunk: int = CHUNK
    _last_run: float | None = field(default=None, repr=False)

    @property
    def suspect_after_seconds(self) -> float:
        """How long a `sent` marker is trusted before its page is looked for."""
        return self.seconds / 2

    def due(self) -> bool:
        """Whether a walk may run now (and, if so, counts it as run)."""
        now = time.monotonic()
        if self._last_run is not None and now - self._last_run < self.seconds / 2:
            return False
        self._last_run = now
        return True

    def lost(self, messages: Sequence[PageMessage]) -> set[str]:
        """The fences of `messages` that no queue holds, no worker holds unacked, and whose
        marker still says `sent`."""
        missing = {broker_ledger.fence_of(message): message for message in messages}
        for fence in itertools.chain(self._fences_queued(), self._fences_unacked()):
            missing.pop(fence, None)
            if not missing:
                return set()
        suspects = list(missing.values())
        lost = {
            broker_ledger.fence_of(message)
            for message, marker in zip(suspects, broker_ledger.markers(suspects), strict=True)
            if marker.state is broker_ledger.State.SENT
        }
        # A message popped as the walk passed the unacked set is there by now: the pop and
        # its bookkeeping are microseconds apart, unless the popping worker died between.
        return lost - set(self._fences_unacked()) if lost else lost

    def _fences_queued(self) -> Iterator[str]:
        client = broker_ledger.connection()
        for queue in self.queues:
            start = 0
            while chunk := client.lrange(queue, start, start + self.chunk - 1):
                start += len(chunk)
                yield from _fences(chunk, unacked=False)

    def _fences_unacked(self) -> Iterator[str]:
        client = broker_ledger.connection()
        for _, value in client.hscan_iter(broker_ledger.KOMBU_UNACKED_KEY, count=self.chunk):
            yield from _fences([value], unacked=True)


def _fences(raws: Sequence[bytes | str], unacked: bool) -> Iterator[str]:
    """The page fences in kombu's stored messages (unacked: [message, exchange, key])."""
    for raw in raws:
        try:
            payload = json.loads(raw)
            fence = broker_ledger.fence_in_message(payload[0] if unacked else payload)
        except (ValueError, LookupError, TypeError):
            continue  # not a message of ours
        if fence is not None:
            yield fence
