"""One import for programs coming from the upstream module, and its CheckpointData."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

import worker.state.local
import worker.state.manager
import worker.state_manager
from models import ScanCheckpoint as OurTable
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.errors import InvalidInput
from worker.state_manager import CheckpointData, LocalStateManager, ScanCheckpoint, StateManager


def test_the_upstream_import_names_our_classes() -> None:
    # The guide's examples keep their homes; the upstream import is the same classes.
    assert StateManager is worker.state.manager.StateManager
    assert LocalStateManager is worker.state.local.LocalStateManager
    assert ScanCheckpoint is OurTable and ScanCheckpoint.__tablename__ == "scan_checkpoints"
    assert issubclass(CheckpointData, Checkpoint)
    assert set(worker.state_manager.__all__) >= {
        "StateManager", "LocalStateManager", "CheckpointData", "ScanCheckpoint",
    }  # fmt: skip


def test_checkpoint_data_from_a_scan_id_alone_has_upstreams_defaults() -> None:
    scan_id = uuid.uuid4()
    before = datetime.now(UTC)
    checkpoint = CheckpointData(scan_id=scan_id)
    assert checkpoint.scan_id == scan_id
    assert (checkpoint.cursor, checkpoint.processed_items, checkpoint.total_items) == (
        None, 0, None,
    )  # fmt: skip
    assert checkpoint.status == "in_progress" and checkpoint.status is ScanStatus.IN_PROGRESS
    assert checkpoint.extra_data == {}
    assert checkpoint.timestamp.tzinfo is not None
    assert before <= checkpoint.timestamp <= datetime.now(UTC)


def test_checkpoint_data_takes_upstreams_fields_and_dumps_them() -> None:
    scan_id, moment = uuid.uuid4(), datetime.now(UTC) - timedelta(hours=1)
    checkpoint = CheckpointData(
        scan_id=str(scan_id),
        cursor="next_page_token",
        processed_items=50,
        total_items=100,
        timestamp=moment,
        extra_data={"key": "value"},
        status="completed",
    )
    assert checkpoint.scan_id == scan_id  # a str is taken as the UUID it spells
    assert (checkpoint.timestamp, checkpoint.status) == (moment, ScanStatus.COMPLETED)
    assert checkpoint.model_dump() == {
        "scan_id": scan_id,
        "cursor": "next_page_token",
        "processed_items": 50,
        "total_items": 100,
        "timestamp": moment,
        "extra_data": {"key": "value"},
        "status": "completed",
    }
    assert json.loads(checkpoint.model_dump_json())["scan_id"] == str(scan_id)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scan_id": "nope"}, "scan_id"),
        ({"processed_items": -1}, "processed_items"),
        ({"status": "interrupted"}, "status"),
        ({"extra_data": {"a": 1}, "metadata": {"b": 2}}, "extra_data"),
    ],
)
def test_checkpoint_data_refuses_bad_fields_by_name(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"scan_id": uuid.uuid4(), **kwargs}
    with pytest.raises(InvalidInput) as refused:
        CheckpointData(**arguments)  # type: ignore[arg-type]
    assert str(refused.value).startswith(field)
