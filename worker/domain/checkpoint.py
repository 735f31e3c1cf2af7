"""The `Checkpoint` snapshot handed to users: a read-only picture of one scan's row."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from worker.domain.status import ScanStatus

if TYPE_CHECKING:
    from models import ScanCheckpoint


@dataclass(frozen=True)
class Checkpoint:
    """A read-only picture of one scan's checkpoint, detached from any session."""

    scan_id: uuid.UUID
    user_id: int
    operation_type: str
    cursor: str | None
    processed_items: int
    total_items: int | None
    timestamp: datetime
    metadata: dict[str, Any]
    status: ScanStatus
    error_message: str | None = None
    params: dict[str, Any] | None = None
    page_seq: int = 0
    page_offset: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    recoveries: int = 0
    skipped_items: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # total_items is only "at least total_items" (worker.domain.progress).
    total_is_lower_bound: bool = False
    # Listings judged no opportunity for want of a reference price (no bid, no sale).
    unreferenced_items: int = 0
    illiquid_items: int = 0
    # Why a completed scan's walk ended early (the market's cursor repeated, or too many
    # empty pages in a row); None for a walk that reached the market's end.
    note: str | None = None

    @property
    def extra_data(self) -> dict[str, Any]:
        """The upstream module's name for `metadata`."""
        return self.metadata

    @classmethod
    def from_row(cls, row: ScanCheckpoint) -> Checkpoint:
        return cls(
            scan_id=row.scan_id,
            user_id=row.user_id,
            operation_type=row.operation_type,
            cursor=row.cursor,
            processed_items=row.processed_items,
            total_items=row.total_items,
            timestamp=row.timestamp,
            metadata=dict(row.meta),
            status=ScanStatus(row.status),
            error_message=row.error_message,
            params=row.params,
            page_seq=row.page_seq,
            page_offset=row.page_offset,
            lease_owner=row.lease_owner,
            lease_expires_at=row.lease_expires_at,
            recoveries=row.recoveries,
            skipped_items=row.skipped_items,
            created_at=row.created_at,
            updated_at=row.updated_at,
            total_is_lower_bound=row.total_is_lower_bound,
            unreferenced_items=row.unreferenced_items,
            illiquid_items=row.illiquid_items,
            note=row.note,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (UUID and datetimes as strings)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, uuid.UUID):
                data[key] = str(value)
            elif isinstance(value, datetime):
                data[key] = value.isoformat()
        data["status"] = self.status.value
        return data
