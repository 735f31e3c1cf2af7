"""The page stores as tests/contract/test_page_store.py drives them: PostgreSQL
(worker.db.pages on the test's database) and memory (worker.testing.memory_pages).

A backend only sets a scan up, steers it (pause, cancel, a lapsed lease) and reads its row
back; every write under test goes through the store's own protocol methods.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker.chain import lifecycle
from worker.db import pages, session_scope
from worker.db.pages import PageStore
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings
from worker.testing.memory_pages import MemoryPageStore


@dataclass(frozen=True)
class Row:
    """What the chain's rules decide about a scan's row, read back from either store."""

    status: str
    cursor: str | None
    page_seq: int
    page_offset: int
    judged_ids: tuple[str, ...]
    processed_items: int
    total_items: int | None
    total_is_lower_bound: bool
    deliveries: int
    lease_task_id: str | None
    leased: bool
    queued: bool
    error_message: str | None


class Backend(Protocol):
    store: PageStore

    def start(self) -> PageMessage: ...
    def session(self) -> AbstractContextManager[Session]: ...
    def row(self, scan_id: uuid.UUID) -> Row: ...
    def opportunities(self, scan_id: uuid.UUID) -> list[tuple[str, int]]: ...
    def lapse_lease(self, scan_id: uuid.UUID) -> None: ...
    def pause(self, scan_id: uuid.UUID) -> None: ...
    def cancel(self, scan_id: uuid.UUID) -> None: ...


class PostgresBackend:
    """worker.db.pages on this test's database; each call is committed, as the runner does."""

    store: PageStore = pages

    def __init__(self, session: Session) -> None:
        self._reader = session

    def start(self) -> PageMessage:
        published: list[PageMessage] = []
        params = ScanParams(game="csgo", page_size=100, market_options={"items": 250})
        with session_scope() as session:
            lifecycle.start_scan(session, params, get_settings(), published.append)
        (first,) = published
        return first

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope() as session:
            yield session
            session.commit()

    def row(self, scan_id: uuid.UUID) -> Row:
        self._reader.expire_all()
        found = self._reader.scalars(
            select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)
        ).one()
        self._reader.commit()
        return Row(
            status=found.status,
            cursor=found.cursor,
            page_seq=found.page_seq,
            page_offset=found.page_offset,
            judged_ids=tuple(found.page_judged_ids),
            processed_items=found.processed_items,
            total_items=found.total_items,
            total_is_lower_bound=found.total_is_lower_bound,
            deliveries=found.page_deliveries,
            lease_task_id=found.lease_task_id,
            leased=found.lease_expires_at is not None,
            queued=found.queued_at is not None,
            error_message=found.error_message,
        )

    def opportunities(self, scan_id: uuid.UUID) -> list[tuple[str, int]]:
        rows = self._reader.execute(
            select(ScanOpportunity.item_id, ScanOpportunity.page_seq).where(
                ScanOpportunity.scan_id == scan_id
            )
        ).all()
        self._reader.commit()
        return sorted((item_id, page_seq) for item_id, page_seq in rows)

    def lapse_lease(self, scan_id: uuid.UUID) -> None:
        a_second_ago = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1)
        self._reader.execute(
            update(ScanCheckpoint)
            .where(ScanCheckpoint.scan_id == scan_id)
            .values(lease_expires_at=a_second_ago)
        )
        self._reader.commit()

    def pause(self, scan_id: uuid.UUID) -> None:
        with self.session() as session:
            lifecycle.pause_scan(session, scan_id)

    def cancel(self, scan_id: uuid.UUID) -> None:
        with self.session() as session:
            lifecycle.cancel_scan(session, scan_id)


class MemoryBackend:
    """worker.testing.memory_pages, handed an unbound session it must ignore."""

    def __init__(self) -> None:
        self.memory = MemoryPageStore()
        self.store: PageStore = self.memory

    def start(self) -> PageMessage:
        return self.memory.start_scan({"game": "csgo", "market_options": {"items": 250}})

    @contextmanager
    def session(self) -> Iterator[Session]:
        yield Session()

    def row(self, scan_id: uuid.UUID) -> Row:
        scan = self.memory.scans[scan_id]
        return Row(
            status=scan.status.value,
            cursor=scan.cursor,
            page_seq=scan.page_seq,
            page_offset=scan.page_offset,
            judged_ids=tuple(scan.page_judged_ids),
            processed_items=scan.processed_items,
            total_items=scan.total_items,
            total_is_lower_bound=scan.total_is_lower_bound,
            deliveries=scan.page_deliveries,
            lease_task_id=scan.lease_task_id,
            leased=scan.lease_expires_at is not None,
            queued=scan.queued,
            error_message=scan.error_message,
        )

    def opportunities(self, scan_id: uuid.UUID) -> list[tuple[str, int]]:
        found = self.memory.scans[scan_id].opportunities
        return sorted((item_id, page_seq) for item_id, (page_seq, _) in found.items())

    def lapse_lease(self, scan_id: uuid.UUID) -> None:
        self.memory.lapse_lease(scan_id)

    def pause(self, scan_id: uuid.UUID) -> None:
        self.memory.pause(scan_id)

    def cancel(self, scan_id: uuid.UUID) -> None:
        self.memory.cancel(scan_id)
