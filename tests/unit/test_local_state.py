"""LocalStateManager and LocalCheckpointStore: the DB StateManager's semantics, in JSON files."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.domain.validation import CURSOR_MAX_CHARS, METADATA_MAX_BYTES
from worker.errors import (
    CheckpointNotFound,
    CorruptCheckpoint,
    DuplicateScan,
    InvalidInput,
    InvalidTransition,
)
from worker.state.file_format import FORMAT_VERSION
from worker.state.local import (
    DEFAULT_LOCAL_OPERATION_TYPE,
    DEFAULT_LOCAL_USER_ID,
    LocalCheckpointStore,
    LocalStateManager,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalCheckpointStore:
    return LocalCheckpointStore(tmp_path / "checkpoints")


def file_of(store: LocalCheckpointStore, scan_id: uuid.UUID) -> Path:
    return store.state_dir / f"{scan_id}.json"


def edit_file(store: LocalCheckpointStore, scan_id: uuid.UUID, **changes: Any) -> None:
    path = file_of(store, scan_id)
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def files_in(store: LocalCheckpointStore) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in store.state_dir.iterdir()}


def assert_utc(moment: datetime | None) -> None:
    assert moment is not None and moment.utcoffset() == timedelta(0)


# --- create_checkpoint ---------------------------------------------------------------------


def test_create_writes_an_in_progress_checkpoint_with_utc_times(tmp_path: Path) -> None:
    # Given a state directory that does not exist yet
    store = LocalCheckpointStore(tmp_path / "data" / "checkpoints")
    scan_id = uuid.uuid4()
    before = datetime.now(UTC)
    # When a checkpoint is created
    created = store.create_checkpoint(
        scan_id, 42, "market_scan", metadata={"game": "csgo"}, total_items=500
    )
    # Then it is in progress at zero, in its own versioned file, and loads back equal
    assert (created.status, created.processed_items, created.cursor) == (
        ScanStatus.IN_PROGRESS,
        0,
        None,
    )
    assert (created.user_id, created.operation_type, created.total_items) == (
        42,
        "market_scan",
        500,
    )
    assert created.metadata == {"game": "csgo"}
    for moment in (created.timestamp, created.created_at, created.updated_at):
        assert_utc(moment)
        assert moment is not None and before <= moment <= datetime.now(UTC)
    assert json.loads(file_of(store, scan_id).read_text())["format_version"] == FORMAT_VERSION
    assert store.load_checkpoint(scan_id) == created
    assert store.load_checkpoint(str(scan_id)) == created


def test_create_rejects_a_scan_id_that_exists_and_keeps_the_original(
    store: LocalCheckpointStore,
) -> None:
    scan_id = uuid.uuid4()
    original = store.create_checkpoint(scan_id, 1, "market_scan", metadata={"v": 1})
    with pytest.raises(DuplicateScan, match=str(scan_id)):
        store.create_checkpoint(scan_id, 2, "other", metadata={"v": 2})
    assert store.load_checkpoint(scan_id) == original


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scan_id": "not-a-uuid"}, "scan_id must be a UUID"),
        ({"scan_id": 123}, "scan_id must be a UUID"),
        ({"user_id": "42"}, "user_id must be an integer"),
        ({"user_id": True}, "user_id must be an integer"),
        ({"user_id": 2**63}, "user_id must fit in 64 bits"),
        ({"operation_type": ""}, "operation_type must be a non-empty string"),
        ({"operation_type": "x" * 51}, "at most 50 characters"),
        ({"metadata": ["not", "a", "dict"]}, "metadata must be a JSON object"),
        ({"metadata": {"when": datetime.now(UTC)}}, "metadata must be JSON-serialisable"),
        ({"metadata": {"price": float("nan")}}, "metadata must be JSON-serialisable"),
        ({"metadata": {"blob": "x" * METADATA_MAX_BYTES}}, "metadata must be at most 65536"),
        ({"total_items": -1}, "total_items must be a non-negative integer"),
        ({"total_items": 2**31}, "total_items must be below 2\\*\\*31"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(
    store: LocalCheckpointStore, changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"scan_id": uuid.uuid4(), "user_id": 1, "operation_type": "scan"}
    with pytest.raises(InvalidInput, match=message):
        store.create_checkpoint(**(arguments | changes))
    assert list(store.state_dir.glob("*.json")) == []


# --- save_checkpoint -----------------------------------------------------------------------


def test_save_records_progress_and_merges_metadata_like_jsonb(
    store: LocalCheckpointStore,
) -> None:
    # Given a scan created with some metadata and a total
    scan_id = uuid.uuid4()
    created = store.create_checkpoint(
        scan_id, 1, "scan", metadata={"game": "csgo", "level": "pro"}, total_items=300
    )
    # When progress is saved with a metadata patch and no total
    saved = store.save_checkpoint(scan_id, "page-3", 250, metadata={"level": "expert", "page": 3})
    # Then cursor and count change, the total stays, and metadata is merged key by key
    assert (saved.cursor, saved.processed_items, saved.total_items) == ("page-3", 250, 300)
    assert saved.metadata == {"game": "csgo", "level": "expert", "page": 3}
    assert saved.timestamp > created.timestamp and saved.updated_at == saved.timestamp
    assert saved.created_at == created.created_at
    assert store.load_checkpoint(scan_id) == saved
    # And a save without metadata keeps it, a save with a total replaces the total
    again = store.save_checkpoint(scan_id, None, 260, total_items=400)
    assert (again.cursor, again.total_items, again.metadata) == (None, 400, saved.metadata)


def test_save_on_a_paused_scan_is_allowed(store: LocalCheckpointStore) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    edit_file(store, scan_id, status="paused")
    assert store.save_checkpoint(scan_id, "c", 5).status == ScanStatus.PAUSED


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"processed_items": -1}, "processed_items must be a non-negative integer"),
        ({"processed_items": 1.5}, "processed_items must be a non-negative integer"),
        ({"processed_items": 11, "total_items": 10}, "must not exceed total_items \\(10\\)"),
        ({"processed_items": 101}, "must not exceed total_items \\(100\\)"),  # stored total
        ({"total_items": -5}, "total_items must be a non-negative integer"),
        ({"cursor": 7}, "cursor must be a string or None"),
        ({"cursor": "c" * (CURSOR_MAX_CHARS + 1)}, "cursor must be at most 65536"),
        ({"metadata": {"bad": {1, 2}}}, "metadata must be JSON-serialisable"),
        ({"metadata": "text"}, "metadata must be a JSON object"),
        ({"metadata": {"b": "x" * 40_000}}, "metadata must be at most 65536"),  # once merged
    ],
)
def test_save_rejects_bad_input_and_leaves_the_file_alone(
    store: LocalCheckpointStore, arguments: dict[str, Any], message: str
) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan", metadata={"a": "x" * 40_000}, total_items=100)
    before = files_in(store)
    call: dict[str, Any] = {"scan_id": scan_id, "cursor": "c", "processed_items": 1}
    with pytest.raises(InvalidInput, match=message):
        store.save_checkpoint(**(call | arguments))
    assert files_in(store) == before


@pytest.mark.parametrize("finish", ["completed", "failed"])
def test_save_on_a_finished_scan_is_an_invalid_transition(
    store: LocalCheckpointStore, finish: str
) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    if finish == "completed":
        store.mark_checkpoint_completed(scan_id)
    else:
        store.mark_checkpoint_failed(scan_id, "boom")
    before = files_in(store)
    with pytest.raises(InvalidTransition, match=f"is {finish}"):
        store.save_checkpoint(scan_id, "c", 1)
    assert files_in(store) == before


# --- load_checkpoint and get_active_checkpoints --------------------------------------------


def test_load_of_an_unknown_scan_is_none(store: LocalCheckpointStore) -> None:
    assert store.load_checkpoint(uuid.uuid4()) is None


def test_load_rejects_a_bad_scan_id(store: LocalCheckpointStore) -> None:
    with pytest.raises(InvalidInput, match="scan_id must be a UUID"):
        store.load_checkpoint("../etc/passwd")


def test_active_checkpoints_are_newest_first_filtered_and_exclude_finished(
    store: LocalCheckpointStore,
) -> None:
    # Given scans of two users and two operations, some of them finished
    oldest, middle, newest, done, failed = (uuid.uuid4() for _ in range(5))
    store.create_checkpoint(oldest, 1, "scan")
    store.create_checkpoint(middle, 2, "scan")
    store.create_checkpoint(newest, 1, "arbitrage")
    store.create_checkpoint(done, 1, "scan")
    store.create_checkpoint(failed, 1, "scan")
    store.mark_checkpoint_completed(done)
    store.mark_checkpoint_failed(failed, "boom")
    store.save_checkpoint(newest, "c", 3)  # a save makes a checkpoint the newest
    edit_file(store, middle, status="paused")

    # Then only the active ones are listed, by timestamp, newest first
    def ids(found: list[Checkpoint]) -> list[uuid.UUID]:
        return [checkpoint.scan_id for checkpoint in found]

    assert ids(store.get_active_checkpoints()) == [newest, middle, oldest]
    assert ids(store.get_active_checkpoints(user_id=1)) == [newest, oldest]
    assert ids(store.get_active_checkpoints(operation_type="scan")) == [middle, oldest]
    assert ids(store.get_active_checkpoints(user_id=1, operation_type="scan")) == [oldest]
    assert store.get_active_checkpoints(user_id=3) == []


@pytest.mark.parametrize("filters", [{"user_id": "1"}, {"user_id": False}, {"operation_type": ""}])
def test_active_checkpoints_reject_bad_filters(
    store: LocalCheckpointStore, filters: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput):
        store.get_active_checkpoints(**filters)


def test_listing_ignores_temp_files_left_by_a_crash(store: LocalCheckpointStore) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    (store.state_dir / f".{scan_id}.json.deadbeef.tmp").write_text('{"torn": ')
    assert [c.scan_id for c in store.get_active_checkpoints()] == [scan_id]


# --- mark_checkpoint_completed and mark_checkpoint_failed ----------------------------------


def test_completing_sets_the_status_and_keeps_progress(store: LocalCheckpointStore) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan", total_items=10)
    saved = store.save_checkpoint(scan_id, "end", 10)
    completed = store.mark_checkpoint_completed(scan_id)
    assert completed.status == ScanStatus.COMPLETED and completed.error_message is None
    assert (completed.cursor, completed.processed_items) == ("end", 10)
    assert completed.updated_at is not None and saved.updated_at is not None
    assert completed.updated_at > saved.updated_at
    assert_utc(completed.updated_at)
    assert store.load_checkpoint(scan_id) == completed


def test_failing_stores_the_error_message(store: LocalCheckpointStore) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    failed = store.mark_checkpoint_failed(scan_id, "market answered 503")
    assert (failed.status, failed.error_message) == (ScanStatus.FAILED, "market answered 503")
    assert store.load_checkpoint(scan_id) == failed


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("complete", "complete"),
        ("complete", "fail"),
        ("fail", "fail"),
        ("fail", "complete"),
    ],
)
def test_a_finished_scan_cannot_finish_again(
    store: LocalCheckpointStore, first: str, second: str
) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    finish: dict[str, Callable[[], Checkpoint]] = {
        "complete": lambda: store.mark_checkpoint_completed(scan_id),
        "fail": lambda: store.mark_checkpoint_failed(scan_id, "boom"),
    }
    finished = finish[first]()
    with pytest.raises(InvalidTransition, match="only an in_progress or paused scan"):
        finish[second]()
    assert store.load_checkpoint(scan_id) == finished


def test_finishing_an_unknown_scan_is_checkpoint_not_found(store: LocalCheckpointStore) -> None:
    with pytest.raises(CheckpointNotFound):
        store.mark_checkpoint_completed(uuid.uuid4())
    with pytest.raises(CheckpointNotFound):
        store.mark_checkpoint_failed(uuid.uuid4(), "boom")


@pytest.mark.parametrize("error_message", ["", "   ", None, 42])
def test_failing_needs_an_error_message(store: LocalCheckpointStore, error_message: Any) -> None:
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    with pytest.raises(InvalidInput, match="error_message must be a non-empty string"):
        store.mark_checkpoint_failed(scan_id, error_message)
    checkpoint = store.load_checkpoint(scan_id)
    assert checkpoint is not None and checkpoint.status == ScanStatus.IN_PROGRESS


def test_concurrent_completions_let_exactly_one_through(store: LocalCheckpointStore) -> None:
    # Given one scan and eight threads racing to complete it
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def complete() -> None:
        start.wait()
        try:
            store.mark_checkpoint_completed(scan_id)
            outcomes.append("completed")
        except InvalidTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=complete) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the guarded update lets one win, as the DB's UPDATE ... WHERE status IN (...) does
    assert sorted(outcomes) == ["completed"] + ["refused"] * 7


# --- cleanup_old_checkpoints ---------------------------------------------------------------


def test_cleanup_deletes_only_old_terminal_checkpoints_and_stray_temp_files(
    store: LocalCheckpointStore,
) -> None:
    # Given finished and active scans, some untouched for eight days, and a crash's temp file
    old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    scans = {name: uuid.uuid4() for name in ("old_done", "old_failed", "new_done", "old_active")}
    for scan_id in scans.values():
        store.create_checkpoint(scan_id, 1, "scan")
    store.mark_checkpoint_completed(scans["old_done"])
    store.mark_checkpoint_failed(scans["old_failed"], "boom")
    store.mark_checkpoint_completed(scans["new_done"])
    for name in ("old_done", "old_failed", "old_active"):
        edit_file(store, scans[name], updated_at=old, timestamp=old)
    stray = store.state_dir / f".{scans['old_active']}.json.0123abcd.tmp"
    stray.write_text('{"torn')
    # When checkpoints older than seven days are cleaned up
    deleted = store.cleanup_old_checkpoints(days=7)
    # Then only the old finished ones and the temp file are gone
    assert deleted == 2
    assert store.load_checkpoint(scans["old_done"]) is None
    assert store.load_checkpoint(scans["old_failed"]) is None
    assert store.load_checkpoint(scans["new_done"]) is not None
    assert store.load_checkpoint(scans["old_active"]) is not None
    assert not stray.exists()
    # And with days=0 the recent finished one goes too
    assert store.cleanup_old_checkpoints(days=0) == 1
    assert store.cleanup_old_checkpoints(days=0) == 0


@pytest.mark.parametrize("days", [-1, 1.5, "7", True])
def test_cleanup_rejects_bad_days(store: LocalCheckpointStore, days: Any) -> None:
    with pytest.raises(InvalidInput, match="days must be a non-negative integer"):
        store.cleanup_old_checkpoints(days)


# --- corrupt files -------------------------------------------------------------------------


def truncated(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def with_fields(**changes: Any) -> Callable[[bytes], bytes]:
    def mutate(raw: bytes) -> bytes:
        return json.dumps(json.loads(raw) | changes).encode()

    return mutate


def without(name: str) -> Callable[[bytes], bytes]:
    def mutate(raw: bytes) -> bytes:
        data = json.loads(raw)
        del data[name]
        return json.dumps(data).encode()

    return mutate


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (truncated, "is not valid JSON"),
        (lambda raw: b"", "is not valid JSON"),
        (lambda raw: b"\xff\xfe garbage", "is not valid JSON"),
        (lambda raw: b"[1, 2]", "top level must be a JSON object"),
        (with_fields(format_version=2), "format_version is 2"),
        # No format_version: taken for the upstream module's file, whose keys these are not.
        (without("format_version"), "unknown fields .* for an upstream checkpoint file"),
        (without("status"), "missing fields \\['status'\\]"),
        (with_fields(surprise=1), "unknown fields \\['surprise'\\]"),
        (with_fields(processed_items=-3), "processed_items must be a non-negative integer"),
        (with_fields(processed_items=11, total_items=10), "must not exceed total_items"),
        (with_fields(user_id="1"), "user_id must be an integer"),
        (with_fields(status="exploded"), "'exploded' is not a valid ScanStatus"),
        (with_fields(timestamp="yesterday"), "Invalid isoformat string"),
        (with_fields(timestamp="2025-01-01T00:00:00"), "timestamp must carry a UTC offset"),
        (with_fields(updated_at=17), "updated_at must be a str"),
        (with_fields(metadata=[1]), "metadata must be a dict"),
        (with_fields(extra_data={"edited": True}), "extra_data must equal metadata"),
        (with_fields(error_message=5), "error_message must be a str"),
        (with_fields(page_seq=-1), "page_seq must be a non-negative integer"),
        (with_fields(scan_id=str(uuid.uuid4())), "holds scan_id"),
    ],
)
def test_a_corrupt_file_is_reported_by_every_method_that_reads_it(
    store: LocalCheckpointStore, mutate: Callable[[bytes], bytes], problem: str
) -> None:
    # Given a checkpoint file damaged on disk
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan", total_items=10)
    path = file_of(store, scan_id)
    path.write_bytes(mutate(path.read_bytes()))
    # Then each read names the file and the problem, and never takes it for a missing scan
    calls: list[Callable[[], object]] = [
        lambda: store.load_checkpoint(scan_id),
        lambda: store.get_active_checkpoints(),
        lambda: store.save_checkpoint(scan_id, "c", 1),
        lambda: store.mark_checkpoint_completed(scan_id),
        lambda: store.cleanup_old_checkpoints(days=0),
    ]
    for call in calls:
        with pytest.raises(CorruptCheckpoint, match=problem) as raised:
            call()
        assert str(path) in str(raised.value)
        assert not isinstance(raised.value, InvalidInput)  # callers catching bad input miss it
    with pytest.raises(DuplicateScan):
        store.create_checkpoint(scan_id, 1, "scan")


def test_a_file_written_before_extra_data_was_mirrored_is_read_and_gains_it(
    store: LocalCheckpointStore,
) -> None:
    # Given a format 1 file without extra_data, as saves wrote it before upstream's key
    scan_id = uuid.uuid4()
    created = store.create_checkpoint(scan_id, 1, "scan", metadata={"game": "csgo"})
    path = file_of(store, scan_id)
    path.write_bytes(without("extra_data")(path.read_bytes()))
    # When it is read and saved again
    assert store.load_checkpoint(scan_id) == created
    store.save_checkpoint(scan_id, "c", 1)
    # Then the file carries extra_data beside metadata from then on
    data = json.loads(path.read_text())
    assert data["extra_data"] == data["metadata"] == {"game": "csgo"}


def test_one_corrupt_file_fails_the_whole_listing(store: LocalCheckpointStore) -> None:
    good, bad = uuid.uuid4(), uuid.uuid4()
    store.create_checkpoint(good, 1, "scan")
    store.create_checkpoint(bad, 1, "scan")
    file_of(store, bad).write_text("{")
    with pytest.raises(CorruptCheckpoint, match=str(bad)):
        store.get_active_checkpoints(user_id=1)


def test_a_foreign_json_file_in_the_state_dir_is_reported(store: LocalCheckpointStore) -> None:
    (store.state_dir / "notes.json").write_text("{}")
    with pytest.raises(CorruptCheckpoint, match=r"notes\.json"):
        store.get_active_checkpoints()


# --- LocalStateManager ---------------------------------------------------------------------


# The seed guide's own example runs verbatim in tests/integration/test_seed_examples.py.


def test_a_save_of_an_unknown_scan_creates_it_with_the_documented_defaults(
    store: LocalCheckpointStore,
) -> None:
    scan_id = uuid.uuid4()
    saved = store.save_checkpoint(scan_id, "next_page_token", 250, 1000, {"game": "csgo"})
    assert store.load_checkpoint(scan_id) == saved
    assert (saved.user_id, saved.operation_type) == (
        DEFAULT_LOCAL_USER_ID, DEFAULT_LOCAL_OPERATION_TYPE,
    )  # fmt: skip
    assert (saved.status, saved.cursor, saved.processed_items, saved.total_items) == (
        ScanStatus.IN_PROGRESS, "next_page_token", 250, 1000,
    )  # fmt: skip
    assert saved.metadata == {"game": "csgo"}


def test_a_save_of_a_finished_scan_is_still_refused(store: LocalCheckpointStore) -> None:
    scan_id = uuid.uuid4()
    store.save_checkpoint(scan_id, "page-2", 200)
    store.mark_checkpoint_completed(scan_id)
    with pytest.raises(InvalidTransition):
        store.save_checkpoint(scan_id, "page-3", 300)


def test_manager_runs_a_whole_scan_lifecycle_through_the_store(tmp_path: Path) -> None:
    # Given a manager and a plain store on the same directory
    manager = LocalStateManager(tmp_path, checkpoint_interval=50)
    store = LocalCheckpointStore(tmp_path)
    done, broken = uuid.uuid4(), uuid.uuid4()

    async def scan() -> list[Checkpoint]:
        await manager.create_checkpoint(done, 7, "market_scan", {"game": "csgo"}, 100)
        await manager.create_checkpoint(broken, 7, "market_scan")
        for processed in range(50, 101, 50):
            await manager.save_checkpoint(done, f"page-{processed}", processed)
        active = await manager.get_active_checkpoints(user_id=7, operation_type="market_scan")
        await manager.mark_checkpoint_completed(done)
        try:
            raise RuntimeError("market went away")
        except RuntimeError as exc:
            await manager.mark_checkpoint_failed(scan_id=broken, error_message=str(exc))
        return active

    # When a scan runs through the awaitable API
    active = asyncio.run(scan())
    # Then the sync store sees what the manager wrote
    assert manager.checkpoint_interval == 50
    assert [c.scan_id for c in active] == [done, broken]
    finished = store.load_checkpoint(done)
    assert finished is not None
    assert (finished.status, finished.processed_items, finished.cursor) == (
        ScanStatus.COMPLETED,
        100,
        "page-100",
    )
    failed = asyncio.run(manager.load_checkpoint(broken))
    assert failed is not None and failed.error_message == "market went away"
    assert asyncio.run(manager.get_active_checkpoints()) == []
    assert asyncio.run(manager.cleanup_old_checkpoints(days=0)) == 2
    assert store.load_checkpoint(done) is None


def test_manager_raises_the_stores_errors(tmp_path: Path) -> None:
    manager = LocalStateManager(tmp_path)
    scan_id = uuid.uuid4()
    asyncio.run(manager.create_checkpoint(scan_id, 1, "scan", total_items=5))
    with pytest.raises(DuplicateScan):
        asyncio.run(manager.create_checkpoint(scan_id, 1, "scan"))
    with pytest.raises(InvalidInput, match="must not exceed total_items"):
        asyncio.run(manager.save_checkpoint(scan_id, "c", 6))
    asyncio.run(manager.mark_checkpoint_completed(scan_id))
    with pytest.raises(InvalidTransition):
        asyncio.run(manager.mark_checkpoint_completed(scan_id))
    with pytest.raises(CheckpointNotFound):
        asyncio.run(manager.mark_checkpoint_failed(uuid.uuid4(), "boom"))


@pytest.mark.parametrize("interval", [0, -1, 2.5, "100", True])
def test_manager_rejects_a_bad_checkpoint_interval(tmp_path: Path, interval: Any) -> None:
    with pytest.raises(InvalidInput, match="checkpoint_interval must be a positive integer"):
        LocalStateManager(tmp_path, checkpoint_interval=interval)


def test_record_progress_rejects_a_bad_scan_id(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="scan_id must be a UUID"):
        LocalStateManager(tmp_path).record_progress("nope", "c", 1)


# --- file modes ------------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o002, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_checkpoint_files_lock_and_directory_are_private_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    # Given a permissive umask and a state directory that does not exist yet
    state_dir = tmp_path / "data" / "checkpoints"
    manager = LocalStateManager(state_dir=state_dir)
    scan_id = uuid.uuid4()

    # When a scan is created, saved and finished
    async def scan() -> None:
        await manager.create_checkpoint(scan_id, 7, "market_scan")
        await manager.save_checkpoint(scan_id, "page-2", 200)
        await manager.mark_checkpoint_completed(scan_id)

    asyncio.run(scan())

    # Then only the owner can read the files (user ids, metadata) or list the directory
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(state_dir) == 0o700
    assert mode(state_dir / f"{scan_id}.json") == 0o600
    assert mode(state_dir / ".lock") == 0o600
