"""The page store in process memory: worker.db.pages' fenced reads and writes, no database.

`MemoryPageStore` keeps the same rules as the PostgreSQL statements of
worker.db.page_sql (fences, claim rules, keep-or-queue, the last page completing the scan,
delivery counting, opportunities once per item), so the page runner, the bench and the
tests can run a scan chain with the database taken away. tests/contract/test_page_store.py
holds both stores to one behaviour suite.

Each call takes effect at once: there is no transaction to roll back, so the `session` the
protocol hands in is accepted and ignored.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from models import ScanStatus
from worker.db.pages import ClaimedPage, Lease, PageResult
from worker.domain.opportunities import Opportunity
from worker.domain.page_message import PageMessage
from worker.domain.progress import merged_total
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidTransition

# A scan the user paused or cancelled still takes the commit of the page in flight.
_COMMITTABLE = frozenset({ScanStatus.IN_PROGRESS, ScanStatus.PAUSED, ScanStatus.CANCELLED})


@dataclass
class MemoryScan:
    """One scan's row, as the columns of scan_checkpoints the page chain reads and writes.

    `lease_expires_at` is in the store's clock (time.monotonic() unless given another);
    `opportunities` maps an item id to the page that found it and what was found.
    """

    scan_id: uuid.UUID
    lease_token: uuid.UUID
    params: dict[str, Any]
    user_id: int = 0
    status: ScanStatus = ScanStatus.IN_PROGRESS
    cursor: str | None = None
    page_seq: int = 0
    page_offset: int = 0
    page_judged_ids: list[str] = field(default_factory=list)
    processed_items: int = 0
    skipped_items: int = 0
    total_items: int | None = None
    total_is_lower_bound: bool = False
    page_deliveries: int = 0
    lease_owner: str | None = None
    lease_task_id: str | None = None
    lease_expires_at: float | None = None
    # A chain's first page is queued: it is published right after the scan is stored.
    queued: bool = True
    # A fresh scan resting between polls (worker.db.page_sql.COMMIT_POLL): neither queued
    # nor running; beat's fresh clock queues it when its next poll is due.
    resting: bool = False
    error_message: str | None = None
    opportunities: dict[str, tuple[int, Opportunity]] = field(default_factory=dict)

    def fenced_by(self, message: PageMessage) -> bool:
        """Whether `message` still names this row's chain and position."""
        return (self.lease_token, self.page_seq, self.page_offset) == (
            message.lease_token,
            message.page_seq,
            message.page_offset,
        )

    def held_by(self, task_id: str) -> bool:
        return self.status is ScanStatus.IN_PROGRESS and self.lease_task_id == task_id


class MemoryPageStore:
    """Scans by scan_id, with the page store's reads and writes and the lifecycle's steps."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.scans: dict[uuid.UUID, MemoryScan] = {}
        self._clock = clock
        # Page tasks of one process may run in threads; each call is one atomic step.
        self._lock = threading.Lock()

    # --- the scan's lifecycle, as worker.chain.lifecycle does it on PostgreSQL ----------

    def start_scan(
        self,
        params: dict[str, Any],
        *,
        user_id: int = 0,
        scan_id: uuid.UUID | None = None,
        lease_token: uuid.UUID | None = None,
    ) -> PageMessage:
        """Store a new scan with its first page queued; the message to publish for it."""
        scan = MemoryScan(
            scan_id=scan_id or uuid.uuid4(),
            lease_token=lease_token or uuid.uuid4(),
            params=dict(params),
            user_id=user_id,
        )
        with self._lock:
            if scan.scan_id in self.scans:
                raise DuplicateScan(f"a checkpoint with scan_id {scan.scan_id} already exists")
            self.scans[scan.scan_id] = scan
        return PageMessage(scan.scan_id, scan.lease_token, 0, 0)

    def pause(self, scan_id: uuid.UUID) -> None:
        """Stop at the next item boundary; the page in flight still commits."""
        self._transition(scan_id, {ScanStatus.IN_PROGRESS}, ScanStatus.PAUSED)

    def cancel(self, scan_id: uuid.UUID) -> None:
        """Give the scan up; the page in flight still commits what it did."""
        allowed = {ScanStatus.IN_PROGRESS, ScanStatus.PAUSED, ScanStatus.FAILED}
        self._transition(scan_id, allowed, ScanStatus.CANCELLED, stop_the_chain=True)

    def lapse_lease(self, scan_id: uuid.UUID) -> None:
        """Let the running page's lease run out, as when its worker died."""
        with self._lock:
            self._scan(scan_id).lease_expires_at = self._clock() - 1.0

    def forget(self, scan_id: uuid.UUID) -> None:
        with self._lock:
            self.scans.pop(scan_id, None)

    # --- worker.db.pages.PageStore -----------------------------------------------------

    def claim(
        self,
        session: object,
        message: PageMessage,
        owner: str,
        task_id: str,
        lease_seconds: float,
        *,
        count_delivery: bool = True,
    ) -> ClaimedPage | None:
        """Take the page's lease, by the rules of worker.db.page_sql.CLAIM."""
        with self._lock:
            scan = self.scans.get(message.scan_id)
            if scan is None or scan.status is not ScanStatus.IN_PROGRESS:
                return None
            claimable = (
                scan.queued
                or scan.lease_expires_at is None
                or scan.lease_expires_at < self._clock()
                or scan.lease_task_id == task_id
            )
            # A redelivery of the message whose slice walked on takes the row where it is.
            walked_on = scan.lease_token == message.lease_token and scan.lease_task_id == task_id
            if not ((scan.fenced_by(message) and claimable) or walked_on):
                return None
            scan.page_deliveries += 1 if count_delivery else 0
            scan.lease_owner, scan.lease_task_id = owner, task_id
            scan.lease_expires_at = self._clock() + lease_seconds
            scan.queued = scan.resting = False
            return ClaimedPage(
                cursor=scan.cursor,
                params=dict(scan.params),
                processed_items=scan.processed_items,
                total_items=scan.total_items,
                deliveries=scan.page_deliveries,
                user_id=scan.user_id,
                page_seq=scan.page_seq,
                page_offset=scan.page_offset,
                total_is_lower_bound=scan.total_is_lower_bound,
                judged_ids=frozenset(scan.page_judged_ids),
            )

    def renew(
        self, session: object, message: PageMessage, task_id: str, lease_seconds: float
    ) -> bool:
        with self._lock:
            scan = self._fenced(message)
            if scan is None or not scan.held_by(task_id):
                return False
            scan.lease_expires_at = self._clock() + lease_seconds
            return True

    def release(self, session: object, message: PageMessage, task_id: str) -> bool:
        """Back to the queue uncommitted; the delivery returned, so it is not counted."""
        with self._lock:
            scan = self._fenced(message)
            if scan is None or not scan.held_by(task_id):
                return False
            scan.page_deliveries = max(scan.page_deliveries - 1, 0)
            scan.lease_task_id, scan.lease_expires_at, scan.queued = None, None, True
            return True

    def commit_page(
        self,
        session: object,
        message: PageMessage,
        result: PageResult,
        *,
        keep: Lease | None = None,
    ) -> str | None:
        """Write the page's progress, by the rules of worker.db.page_sql.COMMIT_*."""
        if keep is not None and (not result.page_complete or result.rests):
            raise ValueError("only a whole page that is not a poll can keep the scan running")
        with self._lock:
            scan = self._fenced(message)
            if scan is None or scan.status not in _COMMITTABLE:
                return None
            was_running = scan.status is ScanStatus.IN_PROGRESS
            continues = was_running and keep is not None and not result.final
            self._count(scan, result)
            self._advance(scan, message, result)
            scan.page_deliveries = 1 if continues else 0
            scan.lease_task_id = keep.task_id if continues and keep else None
            scan.lease_expires_at = self._clock() + keep.seconds if continues and keep else None
            scan.resting = was_running and result.rests
            scan.queued = was_running and not continues and not result.final and not result.rests
            for found in result.opportunities:
                scan.opportunities.setdefault(found.item_id, (message.page_seq, found))
            return scan.status.value

    def fail(self, session: object, message: PageMessage, error_message: str) -> bool:
        """Mark the scan failed if this message still holds it running."""
        with self._lock:
            scan = self._fenced(message)
            if scan is None or scan.status is not ScanStatus.IN_PROGRESS:
                return False
            scan.status, scan.error_message = ScanStatus.FAILED, error_message
            scan.lease_expires_at, scan.lease_task_id, scan.queued = None, None, False
            return True

    def current_status(self, session: object, message: PageMessage) -> str | None:
        with self._lock:
            scan = self._fenced(message)
            return None if scan is None else scan.status.value

    # --- inside -----------------------------------------------------------------------

    def _scan(self, scan_id: uuid.UUID) -> MemoryScan:
        scan = self.scans.get(scan_id)
        if scan is None:
            raise CheckpointNotFound(f"no scan with scan_id {scan_id}")
        return scan

    def _fenced(self, message: PageMessage) -> MemoryScan | None:
        scan = self.scans.get(message.scan_id)
        return scan if scan is not None and scan.fenced_by(message) else None

    def _transition(
        self,
        scan_id: uuid.UUID,
        allowed: Collection[ScanStatus],
        target: ScanStatus,
        *,
        stop_the_chain: bool = False,
    ) -> None:
        with self._lock:
            scan = self._scan(scan_id)
            if scan.status not in allowed:
                raise InvalidTransition(
                    f"scan {scan_id} is {scan.status.value}; only a scan that is "
                    f"{' or '.join(sorted(status.value for status in allowed))} can become "
                    f"{target.value}"
                )
            scan.status = target
            if stop_the_chain:
                scan.lease_expires_at, scan.queued = None, False

    @staticmethod
    def _count(scan: MemoryScan, result: PageResult) -> None:
        processed = scan.processed_items + result.items_done
        reported = scan.total_items if result.total_items is None else result.total_items
        lower_bound = scan.total_is_lower_bound or result.total_is_lower_bound
        scan.total_items, scan.total_is_lower_bound = merged_total(reported, processed, lower_bound)
        scan.processed_items = processed
        scan.skipped_items += result.skipped

    @staticmethod
    def _advance(scan: MemoryScan, message: PageMessage, result: PageResult) -> None:
        if not result.page_complete:
            # Part of a page: same page, further on, its judged listings kept to skip.
            scan.page_offset = message.page_offset + result.items_done
            scan.page_judged_ids.extend(result.judged_ids)
            return
        scan.cursor = result.next_cursor
        scan.page_seq += 1
        scan.page_offset = 0
        scan.page_judged_ids = []
        if result.final and scan.status is not ScanStatus.CANCELLED:
            # Nothing is left after the last page, even for a scan paused during it.
            scan.status = ScanStatus.COMPLETED
