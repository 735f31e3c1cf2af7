"""A page store that keeps a scan's position in process memory: the database taken away.

It answers the page runner's reads and writes (worker.chain.runner.PageStore) the way the
PostgreSQL store does for a single uninterrupted chain, and writes nothing anywhere, so
the same run_page measured with it and with worker.db.pages gives the checkpoint cost.
It remembers the first and last commit times for the bench to read back.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from models import ScanStatus
from worker.db.pages import ClaimedPage, Lease, PageResult
from worker.domain.page_message import PageMessage


@dataclass
class MemoryPageStore:
    """One scan's cursor and counts, in memory; `commit_times` maps page_seq to time.time()."""

    params: dict[str, Any]
    cursor: str | None = None
    processed_items: int = 0
    total_items: int | None = None
    commit_times: dict[int, float] = field(default_factory=dict)

    def claim(
        self,
        session: Session,
        message: PageMessage,
        owner: str,
        task_id: str,
        lease_seconds: float,
        *,
        count_delivery: bool = True,
    ) -> ClaimedPage | None:
        return ClaimedPage(
            cursor=self.cursor,
            params=self.params,
            processed_items=self.processed_items,
            total_items=self.total_items,
            deliveries=1,
            user_id=0,
            page_seq=message.page_seq,
            page_offset=message.page_offset,
        )

    def renew(
        self, session: Session, message: PageMessage, task_id: str, lease_seconds: float
    ) -> bool:
        return True

    def release(self, session: Session, message: PageMessage, task_id: str) -> bool:
        return True

    def commit_page(
        self,
        session: Session,
        message: PageMessage,
        result: PageResult,
        *,
        keep: Lease | None = None,
    ) -> str | None:
        self.commit_times[message.page_seq] = time.time()
        if result.page_complete:
            self.cursor = result.next_cursor
        self.processed_items += result.items_done
        self.total_items = result.total_items or self.total_items
        return ScanStatus.COMPLETED.value if result.final else ScanStatus.IN_PROGRESS.value

    def fail(self, session: Session, message: PageMessage, error_message: str) -> bool:
        return True

    def current_status(self, session: Session, message: PageMessage) -> str | None:
        return ScanStatus.IN_PROGRESS.value


_stores: dict[uuid.UUID, MemoryPageStore] = {}


def store_of(scan_id: uuid.UUID, params: dict[str, Any]) -> MemoryPageStore:
    """This process's store of `scan_id` (a solo or one-child pool runs the whole chain)."""
    return _stores.setdefault(scan_id, MemoryPageStore(params))


def forget(scan_id: uuid.UUID) -> None:
    _stores.pop(scan_id, None)
