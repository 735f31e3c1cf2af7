"""The upstream module's names and file format, for programs and state directories moving
from it (the seed guide's `src/utils/state_manager.py`).

`CheckpointData` is upstream's checkpoint model, here our `Checkpoint` with upstream's
defaults; `decode_upstream_checkpoint` reads the `<scan_id>.json` files its
LocalStateManager wrote (no `format_version`, `extra_data` for our metadata).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from worker.domain import validation
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.errors import InvalidInput

# What a checkpoint records when upstream did not say: its files and its model carry no
# user or operation (the same defaults as a file store's save of an unknown scan).
UPSTREAM_USER_ID = 0
UPSTREAM_OPERATION_TYPE = "market_scan"
# Upstream's SIGTERM handler meant to save this status (it exits before the save runs, so
# it is rare on disk): a scan stopped mid-way that may go on, which is our `paused`.
UPSTREAM_STATUS_ALIASES = {"interrupted": ScanStatus.PAUSED.value}
UPSTREAM_FILE_KEYS = frozenset(
    {"scan_id", "cursor", "processed_items", "total_items", "timestamp", "extra_data", "status"}
)


class CheckpointData(Checkpoint):
    """Upstream's checkpoint model: our Checkpoint, buildable from a scan_id alone.

    Defaults as upstream: cursor None, processed_items 0, total_items None, status
    "in_progress", extra_data {}, and the time of construction (timezone-aware). Our own
    fields (user_id, operation_type, ...) may be given by keyword.
    """

    def __init__(
        self,
        scan_id: uuid.UUID | str,
        cursor: str | None = None,
        processed_items: int = 0,
        total_items: int | None = None,
        timestamp: datetime | None = None,
        extra_data: dict[str, Any] | None = None,
        status: ScanStatus | str = ScanStatus.IN_PROGRESS,
        *,
        metadata: dict[str, Any] | None = None,
        user_id: int = UPSTREAM_USER_ID,
        operation_type: str = UPSTREAM_OPERATION_TYPE,
        **ours: Any,
    ) -> None:
        super().__init__(
            scan_id=validation.scan_id_of(scan_id),
            user_id=validation.user_id_of(user_id),
            operation_type=validation.operation_type_of(operation_type),
            cursor=validation.cursor_of(cursor),
            processed_items=_count("processed_items", processed_items),
            total_items=validation.count_of("total_items", total_items, optional=True),
            # A timestamp given is kept as given, naive or not, as upstream's model keeps it.
            timestamp=datetime.now(UTC) if timestamp is None else timestamp,
            metadata=validation.metadata_patch_of(metadata, extra_data) or {},
            status=validation.status_of(status),
            **ours,
        )

    def model_dump(self) -> dict[str, Any]:
        """Upstream's fields as a dict of Python values (pydantic's name for it)."""
        return {
            "scan_id": self.scan_id,
            "cursor": self.cursor,
            "processed_items": self.processed_items,
            "total_items": self.total_items,
            "timestamp": self.timestamp,
            "extra_data": dict(self.metadata),
            "status": self.status.value,
        }

    def model_dump_json(self) -> str:
        """Upstream's fields as JSON: the shape of one of its checkpoint files."""
        data = self.model_dump()
        data["scan_id"] = str(self.scan_id)
        data["timestamp"] = self.timestamp.isoformat()
        return json.dumps(data)


def decode_upstream_checkpoint(data: dict[str, Any], written_at: datetime) -> Checkpoint:
    """A Checkpoint from a parsed upstream file; absent keys take upstream's defaults, and an
    absent timestamp is `written_at` (the file's modification time).

    A naive timestamp is read as UTC: upstream wrote `datetime.now(UTC)` and, in its model,
    `datetime.utcnow()`. Raises InvalidInput (or ValueError for a bad date) naming the field.
    """
    if unknown := sorted(set(data) - UPSTREAM_FILE_KEYS):
        raise InvalidInput(f"unknown fields {unknown} for an upstream checkpoint file")
    if "scan_id" not in data:
        raise InvalidInput("scan_id is missing")
    processed = _count("processed_items", data.get("processed_items", 0))
    total = validation.count_of("total_items", data.get("total_items"), optional=True)
    status = data.get("status", ScanStatus.IN_PROGRESS.value)
    timestamp = _upstream_time(data.get("timestamp"), written_at)
    return Checkpoint(
        scan_id=validation.scan_id_of(data["scan_id"]),
        user_id=UPSTREAM_USER_ID,
        operation_type=UPSTREAM_OPERATION_TYPE,
        cursor=validation.cursor_of(data.get("cursor")),
        processed_items=processed,
        total_items=total,
        timestamp=timestamp,
        metadata=validation.metadata_of(data.get("extra_data"), "extra_data"),
        status=validation.status_of(UPSTREAM_STATUS_ALIASES.get(status, status)),
        # Upstream kept one time only; its cleanup judges by it, and so does ours.
        created_at=None,
        updated_at=None,
    )


def _count(name: str, value: object) -> int:
    count = validation.count_of(name, value)
    assert count is not None
    return count


def _upstream_time(value: object, default: datetime) -> datetime:
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"timestamp must be an ISO 8601 string, got {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
