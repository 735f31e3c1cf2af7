"""A bot's upstream state directory carries over: LocalStateManager reads, saves and cleans
the `<scan_id>.json` files the upstream module wrote, written here by hand in its format."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from worker.domain.status import ScanStatus
from worker.errors import CorruptCheckpoint
from worker.state.file_format import FORMAT_VERSION
from worker.state_manager import LocalStateManager


def write_upstream_file(state_dir: Path, scan_id: uuid.UUID, **fields: Any) -> Path:
    """A file as upstream's LocalStateManager.save_checkpoint wrote it (json.dumps, indent 2)."""
    path = state_dir / f"{scan_id}.json"
    path.write_text(json.dumps({"scan_id": str(scan_id), **fields}, indent=2), encoding="utf-8")
    return path


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_upstream_files_are_read_with_upstreams_defaults(tmp_path: Path) -> None:
    # Given a state directory the upstream module wrote: a full file and a bare one
    now = datetime.now(UTC)
    full, bare = uuid.uuid4(), uuid.uuid4()
    write_upstream_file(
        tmp_path,
        full,
        cursor="page_3",
        processed_items=75,
        total_items=100,
        timestamp=iso(now - timedelta(minutes=5)),
        extra_data={"game": "csgo"},
        status="in_progress",
    )
    bare_path = write_upstream_file(tmp_path, bare)
    # When our LocalStateManager opens it, by a str as upstream's callers pass it
    manager = LocalStateManager(state_dir=str(tmp_path))
    assert manager.state_dir == tmp_path and isinstance(manager.state_dir, Path)
    loaded = asyncio.run(manager.load_checkpoint(full))
    # Then every field upstream wrote is there, extra_data as our metadata
    assert loaded is not None
    assert (loaded.cursor, loaded.processed_items, loaded.total_items) == ("page_3", 75, 100)
    assert loaded.extra_data == loaded.metadata == {"game": "csgo"}
    assert loaded.status == ScanStatus.IN_PROGRESS
    assert loaded.timestamp == now - timedelta(minutes=5)
    # And absent keys take upstream's defaults; an absent timestamp is the file's own time
    minimal = asyncio.run(manager.load_checkpoint(bare))
    assert minimal is not None
    assert (minimal.cursor, minimal.processed_items, minimal.total_items) == (None, 0, None)
    assert (minimal.status, minimal.extra_data) == (ScanStatus.IN_PROGRESS, {})
    assert minimal.timestamp == datetime.fromtimestamp(bare_path.stat().st_mtime, UTC)
    assert {c.scan_id for c in asyncio.run(manager.get_active_checkpoints())} == {full, bare}


def test_a_saved_upstream_file_keeps_its_progress_and_is_rewritten_in_our_format(
    tmp_path: Path,
) -> None:
    # Given an upstream file of a scan half done
    scan_id = uuid.uuid4()
    path = write_upstream_file(
        tmp_path,
        scan_id,
        cursor="page_2",
        processed_items=50,
        total_items=100,
        timestamp=iso(datetime.now(UTC)),
        extra_data={"game": "csgo"},
        status="in_progress",
    )
    manager = LocalStateManager(tmp_path)
    # When the program saves its next page, upstream's way
    saved = asyncio.run(
        manager.save_checkpoint(
            scan_id=scan_id,
            cursor="page_3",
            processed_items=75,
            total_items=100,
            extra_data={"page": 3},
            status="in_progress",
        )
    )
    # Then the scan goes on from the file's state, and the file is ours from now on
    assert (saved.cursor, saved.processed_items) == ("page_3", 75)
    assert saved.extra_data == {"game": "csgo", "page": 3}
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION
    assert asyncio.run(manager.load_checkpoint(scan_id)) == saved


def test_cleanup_judges_upstream_files_by_their_timestamp(tmp_path: Path) -> None:
    # Given upstream files: finished long ago (one with a naive timestamp, as upstream's
    # datetime.utcnow() wrote), finished lately, and one in progress long ago
    now = datetime.now(UTC)
    old_done, old_failed, recent_done, old_live = (uuid.uuid4() for _ in range(4))
    long_ago = now - timedelta(days=10)
    write_upstream_file(tmp_path, old_done, status="completed", timestamp=iso(long_ago))
    write_upstream_file(
        tmp_path, old_failed, status="failed", timestamp=long_ago.replace(tzinfo=None).isoformat()
    )
    write_upstream_file(tmp_path, recent_done, status="completed", timestamp=iso(now))
    live = write_upstream_file(tmp_path, old_live, status="in_progress", timestamp=iso(long_ago))
    # The files' own times are new: only the timestamp inside says how old they are
    os.utime(live)
    manager = LocalStateManager(tmp_path)
    # When the cleanup runs with upstream's default retention
    deleted = asyncio.run(manager.cleanup_old_checkpoints(days=7))
    # Then the two old finished scans are gone, and nothing else
    assert deleted == 2
    remaining = {path.stem for path in tmp_path.glob("*.json")}
    assert remaining == {str(recent_done), str(old_live)}


def test_upstreams_interrupted_status_reads_as_paused(tmp_path: Path) -> None:
    scan_id = uuid.uuid4()
    write_upstream_file(tmp_path, scan_id, processed_items=10, status="interrupted")
    loaded = asyncio.run(LocalStateManager(tmp_path).load_checkpoint(scan_id))
    assert loaded is not None and loaded.status == ScanStatus.PAUSED


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"processed_items": "ten"}, "processed_items must be a non-negative integer"),
        ({"status": "exploded"}, "status must be one of"),
        ({"timestamp": "yesterday"}, "Invalid isoformat string"),
        ({"extra_data": [1]}, "extra_data must be a JSON object"),
        ({"surprise": 1}, "unknown fields \\['surprise'\\]"),
    ],
)
def test_a_bad_upstream_file_is_corrupt_naming_the_field(
    tmp_path: Path, fields: dict[str, Any], problem: str
) -> None:
    scan_id = uuid.uuid4()
    path = write_upstream_file(tmp_path, scan_id, **fields)
    with pytest.raises(CorruptCheckpoint, match=problem) as raised:
        asyncio.run(LocalStateManager(tmp_path).load_checkpoint(scan_id))
    assert str(path) in str(raised.value)


def test_upstreams_file_helper_names_the_file_a_save_writes(tmp_path: Path) -> None:
    manager, scan_id = LocalStateManager(tmp_path), uuid.uuid4()
    path = manager._get_checkpoint_file(scan_id)
    assert path == tmp_path / f"{scan_id}.json" and not path.exists()
    asyncio.run(manager.save_checkpoint(scan_id=scan_id, cursor="page_2", processed_items=50))
    data = json.loads(path.read_text())
    assert (data["scan_id"], data["cursor"], data["processed_items"]) == (
        str(scan_id), "page_2", 50,
    )  # fmt: skip


def test_a_save_called_upstreams_way_without_a_cursor_writes_the_scan(tmp_path: Path) -> None:
    # Given upstream's calls: a count and no cursor, then neither (its tests save this way)
    manager, scan_id = LocalStateManager(tmp_path), uuid.uuid4()
    # When they run
    first = asyncio.run(manager.save_checkpoint(scan_id=scan_id, processed_items=50))
    bare = asyncio.run(manager.save_checkpoint(scan_id))
    # Then each is saved, the cursor None (the first page) and the count 0 when not named
    assert (first.cursor, first.processed_items) == (None, 50)
    assert (bare.cursor, bare.processed_items) == (None, 0)
    assert asyncio.run(manager.load_checkpoint(scan_id)) == bare


def test_the_file_a_save_writes_carries_upstreams_extra_data(tmp_path: Path) -> None:
    # Given a scan saved with upstream's keywords
    manager, scan_id = LocalStateManager(tmp_path), uuid.uuid4()
    asyncio.run(
        manager.save_checkpoint(
            scan_id=scan_id,
            cursor="cursor_123",
            processed_items=50,
            total_items=100,
            extra_data={"game": "csgo"},
            status="in_progress",
        )
    )
    # When the file is read as upstream's LocalStateManager reads it
    data = json.loads(manager._get_checkpoint_file(scan_id).read_text(encoding="utf-8"))
    # Then every key upstream reads is there, extra_data holding the scan's metadata
    assert {key: data[key] for key in ("cursor", "processed_items", "total_items", "status")} == {
        "cursor": "cursor_123", "processed_items": 50, "total_items": 100, "status": "in_progress",
    }  # fmt: skip
    assert data["extra_data"] == data["metadata"] == {"game": "csgo"}
    assert datetime.fromisoformat(data["timestamp"]).tzinfo is not None
