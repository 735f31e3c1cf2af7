"""The partition each running chain's row lives in, as this process learned it.

`scan_checkpoints` is partitioned by its rows' `created_at` (one partition a day). A
statement that matches on `scan_id` alone is planned against every day's partition: an
UPDATE by `scan_id` took 3.5 ms instead of 1.1 ms with 18 days (pgbench). A statement that
also names `created_at` is pruned to one partition when it is planned.

A page task's claim returns its row's `created_at`; every later statement of that chain in
this process names it. The key is the chain, (scan_id, lease_token): a row's `created_at`
never changes, and a lease token is a fresh UUID each time a chain starts, so what is
remembered can never name another row. A row that is gone (a dropped day) matches nothing
either way, as its fenced statement would without the day.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Final

# Chains a process remembers: far more than a process runs between two pages of one scan.
CAPACITY: Final = 4096

_lock = threading.Lock()
_days: OrderedDict[tuple[uuid.UUID, uuid.UUID], datetime] = OrderedDict()


def remember(scan_id: uuid.UUID, lease_token: uuid.UUID, created_at: datetime) -> None:
    with _lock:
        _days[(scan_id, lease_token)] = created_at
        _days.move_to_end((scan_id, lease_token))
        while len(_days) > CAPACITY:
            _days.popitem(last=False)


def created_at_of(scan_id: uuid.UUID, lease_token: uuid.UUID) -> datetime | None:
    with _lock:
        return _days.get((scan_id, lease_token))


def forget_all() -> None:
    """Start empty (tests; a forked child keeps its parent's, which stay true)."""
    with _lock:
        _days.clear()
