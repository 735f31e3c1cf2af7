"""One behaviour suite over every checkpoint store: PostgreSQL, JSON files and memory.

What one implementation accepts, refuses or reports, every other does too, with the same
error and the same text; tests/contract/conftest.py lists the implementations.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from models.status import ScanStatus
from tests.contract.conftest import StoreUnderTest
from worker.domain.validation import CURSOR_MAX_CHARS, METADATA_MAX_BYTES
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput, InvalidTransition

ACTIVE_ONLY = "only an in_progress or paused scan can"


def test_create_then_load_returns_the_stored_checkpoint(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    created = store.create_checkpoint(
        str(scan_id), 5_000_000_000, "market_scan", metadata={"game": "csgo"}, total_items=10
    )
    loaded = store.load_checkpoint(scan_id)
    assert loaded == created
    assert loaded is not None and loaded.scan_id == scan_id
    assert loaded.user_id == 5_000_000_000  # beyond 32 bits: Telegram ids
    assert (loaded.status, loaded.operation_type, loaded.metadata) == (
        ScanStatus.IN_PROGRESS, "market_scan", {"game": "csgo"},
    )  # fmt: skip
    assert (loaded.cursor, loaded.processed_items, loaded.total_items) == (None, 0, 10)
    assert loaded.error_message is None and loaded.total_is_lower_bound is False


def test_a_second_create_of_a_scan_id_is_refused_and_keeps_the_first(
    under_test: StoreUnderTest,
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    first = store.create_checkpoint(scan_id, 1, "market_scan", metadata={"first": True})
    with pytest.raises(DuplicateScan) as refused:
        store.create_checkpoint(scan_id, 2, "other_scan")
    assert str(refused.value) == f"a checkpoint with scan_id {scan_id} already exists"
    assert store.load_checkpoint(scan_id) == first


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scan_id": "not-a-uuid"}, "scan_id"),
        ({"user_id": "123"}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 2**64}, "user_id"),
        ({"operation_type": ""}, "operation_type"),
        ({"operation_type": "x" * 51}, "operation_type"),
        ({"metadata": ["not", "a", "dict"]}, "metadata"),
        ({"metadata": {"when": object()}}, "metadata"),
        ({"metadata": {"blob": "x" * METADATA_MAX_BYTES}}, "metadata"),
        ({"total_items": -1}, "total_items"),
        ({"total_items": 2**31}, "total_items"),
        ({"total_is_lower_bound": "yes"}, "total_is_lower_bound"),
    ],
)
def test_create_refuses_bad_input_naming_the_field_and_stores_nothing(
    under_test: StoreUnderTest, kwargs: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {
        "scan_id": uuid.uuid4(),
        "user_id": 1,
        "operation_type": "market_scan",
        **kwargs,
    }
    with pytest.raises(InvalidInput) as refused:
        under_test.store.create_checkpoint(**arguments)  # type: ignore[arg-type]
    assert str(refused.value).startswith(field)
    assert under_test.store.get_active_checkpoints() == []


@pytest.mark.parametrize(
    "extra",
    [{"lease_token": uuid.uuid4()}, {"params": {"market": "simulated"}}, {"runner": "chain"}],
)
def test_a_create_with_a_keyword_the_seed_api_does_not_take_is_refused(
    under_test: StoreUnderTest, extra: dict[str, object]
) -> None:
    # Given a keyword the page chain gives the database, but the seed API does not take
    store, scan_id = under_test.store, uuid.uuid4()
    # When a program passes it, then the call is refused before anything is stored, so no
    # caller's row can pass for a chain scan's (invariant 7)
    with pytest.raises(TypeError, match=next(iter(extra))):
        store.create_checkpoint(scan_id, 1, "market_scan", **extra)  # type: ignore[arg-type]
    assert store.load_checkpoint(scan_id) is None


def test_save_records_progress_and_merges_metadata(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    created = store.create_checkpoint(scan_id, 1, "market_scan", metadata={"game": "csgo"})
    saved = store.save_checkpoint(scan_id, "cursor-2", 200, total_items=1000, metadata={"p": 2})
    assert (saved.cursor, saved.processed_items, saved.total_items) == ("cursor-2", 200, 1000)
    assert saved.metadata == {"game": "csgo", "p": 2}
    assert saved.timestamp >= created.timestamp
    assert store.load_checkpoint(scan_id) == saved
    # A save without a total or metadata keeps the stored ones; a None cursor is the first page.
    again = store.save_checkpoint(scan_id, None, 300)
    assert (again.cursor, again.processed_items, again.total_items) == (None, 300, 1000)
    assert again.metadata == {"game": "csgo", "p": 2}


@pytest.mark.parametrize(
    ("processed", "total", "cursor", "field"),
    [
        (-1, None, "c", "processed_items"),
        ("5", None, "c", "processed_items"),
        (2**31, None, "c", "processed_items"),
        (5, -1, "c", "total_items"),
        (11, 10, "c", "processed_items"),
        (5, None, 42, "cursor"),
    ],
)
def test_save_refuses_bad_input_naming_the_field_and_changes_nothing(
    under_test: StoreUnderTest, processed: object, total: object, cursor: object, field: str
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    before = store.create_checkpoint(scan_id, 1, "market_scan")
    with pytest.raises(InvalidInput) as refused:
        store.save_checkpoint(scan_id, cursor, processed, total_items=total)  # type: ignore[arg-type]
    assert str(refused.value).startswith(field)
    assert store.load_checkpoint(scan_id) == before


def test_a_cursor_of_64_kib_is_kept_and_one_character_more_is_refused(
    under_test: StoreUnderTest,
) -> None:
    # Given a scan, and a cursor as long as upstream's TEXT column takes in practice
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan")
    longest = "c" * 65_536
    # When it is saved, then it is kept to the last character
    saved = store.save_checkpoint(scan_id, longest, 1)
    assert saved.cursor == longest and store.load_checkpoint(scan_id) == saved
    # And one character more is refused by name, the stored checkpoint unchanged
    with pytest.raises(InvalidInput) as refused:
        store.save_checkpoint(scan_id, longest + "c", 2)
    assert str(refused.value) == (
        f"cursor must be at most {CURSOR_MAX_CHARS} characters, got {CURSOR_MAX_CHARS + 1}"
    )
    assert store.load_checkpoint(scan_id) == saved


def test_a_save_naming_no_cursor_or_count_records_the_first_page_as_upstreams_does(
    under_test: StoreUnderTest,
) -> None:
    # Given a scan some way in
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan", total_items=100)
    store.save_checkpoint(scan_id, "page-3", 30)
    # When a save names neither cursor nor count (upstream's defaults: None and 0)
    saved = store.save_checkpoint(scan_id=scan_id, status="paused")
    # Then the scan is back at the first page, with nothing counted, and keeps its total
    assert (saved.cursor, saved.processed_items, saved.total_items) == (None, 0, 100)
    assert saved.status == ScanStatus.PAUSED and store.load_checkpoint(scan_id) == saved


def test_save_refuses_a_count_beyond_the_stored_total(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    before = store.create_checkpoint(scan_id, 1, "market_scan", total_items=10)
    with pytest.raises(InvalidInput) as refused:
        store.save_checkpoint(scan_id, "c", 11)
    assert str(refused.value) == (
        "processed_items (11) must not exceed total_items (10) unless the total is a lower "
        "bound (pass total_is_lower_bound=True)"
    )
    assert store.load_checkpoint(scan_id) == before


def test_a_lower_bound_total_grows_with_the_count_and_stays_one(
    under_test: StoreUnderTest,
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan", total_items=10, total_is_lower_bound=True)
    saved = store.save_checkpoint(scan_id, "c", 15)
    assert (saved.processed_items, saved.total_items, saved.total_is_lower_bound) == (15, 15, True)
    later = store.save_checkpoint(scan_id, "d", 20, total_items=12)
    assert (later.total_items, later.total_is_lower_bound) == (20, True)


def test_save_refuses_metadata_that_grows_too_big_by_merging(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    half = "x" * (METADATA_MAX_BYTES // 2)
    before = store.create_checkpoint(scan_id, 1, "market_scan", metadata={"a": half})
    with pytest.raises(InvalidInput) as refused:
        store.save_checkpoint(scan_id, "c", 1, metadata={"b": half})
    assert str(refused.value).startswith("metadata")
    assert store.load_checkpoint(scan_id) == before


@pytest.mark.parametrize("finish", ["completed", "failed"])
def test_a_finished_scan_takes_no_checkpoint(under_test: StoreUnderTest, finish: str) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan")
    if finish == "completed":
        finished = store.mark_checkpoint_completed(scan_id)
    else:
        finished = store.mark_checkpoint_failed(scan_id, "boom")
    with pytest.raises(InvalidTransition) as refused:
        store.save_checkpoint(scan_id, "c", 1)
    assert str(refused.value) == f"scan {scan_id} is {finish}; {ACTIVE_ONLY} take checkpoints"
    assert store.load_checkpoint(scan_id) == finished


def test_a_save_of_an_unknown_scan_is_not_found_or_creates_it(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    if under_test.creates_on_save:
        saved = store.save_checkpoint(scan_id, "next", 250)
        assert store.load_checkpoint(scan_id) == saved
        assert (saved.status, saved.processed_items) == (ScanStatus.IN_PROGRESS, 250)
        return
    with pytest.raises(CheckpointNotFound) as refused:
        store.save_checkpoint(scan_id, "next", 250)
    assert str(refused.value) == f"no scan with scan_id {scan_id}"
    assert store.load_checkpoint(scan_id) is None


def test_load_of_an_unknown_scan_is_none_and_of_a_bad_id_is_refused(
    under_test: StoreUnderTest,
) -> None:
    assert under_test.store.load_checkpoint(uuid.uuid4()) is None
    with pytest.raises(InvalidInput) as refused:
        under_test.store.load_checkpoint("not-a-uuid")
    assert str(refused.value) == "scan_id must be a UUID, got 'not-a-uuid'"


def test_active_checkpoints_are_filtered_and_newest_first(under_test: StoreUnderTest) -> None:
    store = under_test.store
    older, newer, other_user, other_op, done, failed = (uuid.uuid4() for _ in range(6))
    store.create_checkpoint(older, 7, "market_scan")
    store.create_checkpoint(newer, 7, "market_scan")
    store.create_checkpoint(other_user, 8, "market_scan")
    store.create_checkpoint(other_op, 7, "arbitrage_scan")
    for finished in (done, failed):
        store.create_checkpoint(finished, 7, "market_scan")
    store.mark_checkpoint_completed(done)
    store.mark_checkpoint_failed(failed, "boom")
    store.save_checkpoint(newer, "c", 3)  # the latest checkpoint of all

    mine = store.get_active_checkpoints(user_id=7, operation_type="market_scan")

    assert [checkpoint.scan_id for checkpoint in mine] == [newer, older]
    everyone = store.get_active_checkpoints()
    assert {checkpoint.scan_id for checkpoint in everyone} == {older, newer, other_user, other_op}
    assert everyone[0].scan_id == newer
    assert [c.scan_id for c in store.get_active_checkpoints(user_id=8)] == [other_user]
    assert [c.scan_id for c in store.get_active_checkpoints(operation_type="arbitrage_scan")] == [
        other_op
    ]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"user_id": "7"}, "user_id"),
        ({"user_id": False}, "user_id"),
        ({"operation_type": ""}, "operation_type"),
    ],
)
def test_active_checkpoints_refuse_bad_filters(
    under_test: StoreUnderTest, filters: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        under_test.store.get_active_checkpoints(**filters)  # type: ignore[arg-type]
    assert str(refused.value).startswith(field)


def test_completing_and_failing_finish_a_scan_and_keep_its_progress(
    under_test: StoreUnderTest,
) -> None:
    store, ok, bad = under_test.store, uuid.uuid4(), uuid.uuid4()
    for scan_id in (ok, bad):
        store.create_checkpoint(scan_id, 1, "market_scan")
        store.save_checkpoint(scan_id, "page-3", 30)
    completed = store.mark_checkpoint_completed(ok)
    failed = store.mark_checkpoint_failed(bad, "market returned 403")
    assert (completed.status, completed.error_message) == (ScanStatus.COMPLETED, None)
    assert (failed.status, failed.error_message) == (ScanStatus.FAILED, "market returned 403")
    for finished in (completed, failed):
        assert (finished.cursor, finished.processed_items) == ("page-3", 30)
        assert store.load_checkpoint(finished.scan_id) == finished


@pytest.mark.parametrize("first", ["completed", "failed"])
@pytest.mark.parametrize("then", ["completed", "failed"])
def test_a_finished_scan_cannot_finish_again(
    under_test: StoreUnderTest, first: str, then: str
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan")
    if first == "completed":
        finished = store.mark_checkpoint_completed(scan_id)
    else:
        finished = store.mark_checkpoint_failed(scan_id, "first")
    with pytest.raises(InvalidTransition) as refused:
        if then == "completed":
            store.mark_checkpoint_completed(scan_id)
        else:
            store.mark_checkpoint_failed(scan_id, "again")
    assert str(refused.value) == f"scan {scan_id} is {first}; {ACTIVE_ONLY} become {then}"
    assert store.load_checkpoint(scan_id) == finished


@pytest.mark.parametrize("finish", ["completed", "failed"])
def test_finishing_an_unknown_scan_is_not_found(under_test: StoreUnderTest, finish: str) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    with pytest.raises(CheckpointNotFound) as refused:
        if finish == "completed":
            store.mark_checkpoint_completed(scan_id)
        else:
            store.mark_checkpoint_failed(scan_id, "boom")
    assert str(refused.value) == f"no scan with scan_id {scan_id}"
    assert store.load_checkpoint(scan_id) is None


@pytest.mark.parametrize("error_message", ["", "   ", None, 42])
def test_failing_needs_an_error_message(under_test: StoreUnderTest, error_message: object) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    before = store.create_checkpoint(scan_id, 1, "market_scan")
    with pytest.raises(InvalidInput) as refused:
        store.mark_checkpoint_failed(scan_id, error_message)  # type: ignore[arg-type]
    assert str(refused.value).startswith("error_message")
    assert store.load_checkpoint(scan_id) == before


def test_cleanup_deletes_only_old_finished_checkpoints(under_test: StoreUnderTest) -> None:
    store = under_test.store
    old_done, old_failed, old_live, recent_done = (uuid.uuid4() for _ in range(4))
    for scan_id in (old_done, old_failed, old_live, recent_done):
        store.create_checkpoint(scan_id, 1, "market_scan")
    store.mark_checkpoint_completed(old_done)
    store.mark_checkpoint_failed(old_failed, "boom")
    store.mark_checkpoint_completed(recent_done)
    for scan_id in (old_done, old_failed, old_live):
        under_test.age(scan_id, 8)

    assert store.cleanup_old_checkpoints(days=7) == 2

    assert store.load_checkpoint(old_done) is None and store.load_checkpoint(old_failed) is None
    assert store.load_checkpoint(old_live) is not None
    assert store.load_checkpoint(recent_done) is not None
    assert store.cleanup_old_checkpoints(days=7) == 0
    assert store.cleanup_old_checkpoints(days=0) == 1  # recent_done, finished a moment ago


@pytest.mark.parametrize("days", [-1, 1.5, "7", True])
def test_cleanup_refuses_bad_days_and_deletes_nothing(
    under_test: StoreUnderTest, days: object
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan")
    store.mark_checkpoint_completed(scan_id)
    under_test.age(scan_id, 30)
    with pytest.raises(InvalidInput) as refused:
        store.cleanup_old_checkpoints(days=days)  # type: ignore[arg-type]
    assert str(refused.value).startswith("days")
    assert store.load_checkpoint(scan_id) is not None


# The upstream module's error counter, pause and emergency shutdown (worker.state.error_guard).


def test_a_new_manager_has_upstreams_defaults(under_test: StoreUnderTest) -> None:
    manager = under_test.build()
    assert (manager.max_consecutive_errors, manager.consecutive_errors) == (5, 0)
    assert manager.is_paused is False
    built = under_test.build(checkpoint_interval=50, max_consecutive_errors=3)
    assert built.max_consecutive_errors == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_consecutive_errors": -1}, "max_consecutive_errors"),
        ({"max_consecutive_errors": "5"}, "max_consecutive_errors"),
        ({"max_consecutive_errors": True}, "max_consecutive_errors"),
        ({"checkpoint_interval": -1}, "checkpoint_interval"),
    ],
)
def test_construction_refuses_bad_limits_by_name(
    under_test: StoreUnderTest, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        under_test.build(**kwargs)
    assert str(refused.value).startswith(field)


def test_record_error_says_shut_down_once_the_count_reaches_the_maximum(
    under_test: StoreUnderTest,
) -> None:
    manager = under_test.build(max_consecutive_errors=3)
    assert [manager.record_error() for _ in range(4)] == [False, False, True, True]
    assert manager.consecutive_errors == 4
    manager.reset_error_counter()
    assert manager.consecutive_errors == 0
    assert manager.record_error() is False


def test_a_maximum_of_zero_says_shut_down_at_the_first_error(under_test: StoreUnderTest) -> None:
    manager = under_test.build(max_consecutive_errors=0)
    assert manager.record_error() is True
    assert manager.consecutive_errors == 1


def test_pausing_twice_is_harmless_and_resuming_resets_the_counter(
    under_test: StoreUnderTest,
) -> None:
    manager = under_test.store
    manager.record_error()
    manager.record_error()
    manager.pause_operations()
    manager.pause_operations()
    assert manager.is_paused is True and manager.consecutive_errors == 2
    manager.resume_operations()
    assert manager.is_paused is False and manager.consecutive_errors == 0


def test_an_emergency_shutdown_pauses_then_calls_the_callback_once(
    under_test: StoreUnderTest,
) -> None:
    manager, calls = under_test.store, []
    manager.set_shutdown_callback(lambda reason: calls.append((reason, manager.is_paused)))
    manager.trigger_emergency_shutdown("5 errors in a row")
    assert calls == [("5 errors in a row", True)]
    assert manager.is_paused is True


def test_an_async_callback_is_awaited_to_its_end(under_test: StoreUnderTest) -> None:
    manager, calls = under_test.store, []

    async def notify(reason: str) -> None:
        await asyncio.sleep(0)  # a callback that really waits, as a bot's send_message does
        calls.append(reason)

    manager.set_shutdown_callback(notify)
    manager.trigger_emergency_shutdown("market down")
    assert calls == ["market down"]
    assert manager.is_paused is True


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_failing_callback_is_swallowed_and_the_pause_stands(
    under_test: StoreUnderTest, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    manager = under_test.store

    def fail(reason: str) -> None:
        raise RuntimeError(f"telegram unreachable ({reason})")

    async def fail_later(reason: str) -> None:
        await asyncio.sleep(0)
        fail(reason)

    manager.set_shutdown_callback(fail if flavour == "sync" else fail_later)
    manager.trigger_emergency_shutdown("boom")
    assert manager.is_paused is True
    assert "shutdown callback failed" in caplog.text
    assert "telegram unreachable (boom)" in caplog.text


def test_without_a_callback_a_shutdown_only_pauses(under_test: StoreUnderTest) -> None:
    manager, calls = under_test.store, []
    manager.set_shutdown_callback(calls.append)
    manager.set_shutdown_callback(None)  # None clears it
    manager.trigger_emergency_shutdown("no one to tell")
    assert manager.is_paused is True and calls == []


@pytest.mark.parametrize("callback", ["not callable", 42])
def test_a_callback_that_cannot_be_called_is_refused(
    under_test: StoreUnderTest, callback: object
) -> None:
    manager, calls = under_test.store, []
    manager.set_shutdown_callback(calls.append)
    with pytest.raises(InvalidInput) as refused:
        manager.set_shutdown_callback(callback)  # type: ignore[arg-type]
    assert str(refused.value).startswith("callback")
    manager.trigger_emergency_shutdown("kept")
    assert calls == ["kept"]  # the callback set before stands


# The upstream module's keywords: extra_data (our metadata) and save_checkpoint's status.


def test_extra_data_is_metadata_under_upstreams_name(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    created = store.create_checkpoint(scan_id, 1, "market_scan", extra_data={"game": "csgo"})
    assert created.metadata == created.extra_data == {"game": "csgo"}
    saved = store.save_checkpoint(scan_id, "c", 5, extra_data={"page": 2})
    assert saved.extra_data == {"game": "csgo", "page": 2}
    assert store.load_checkpoint(scan_id) == saved


@pytest.mark.parametrize("call", ["create", "save"])
def test_extra_data_and_metadata_together_are_refused_by_name(
    under_test: StoreUnderTest, call: str
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    both = {"metadata": {"a": 1}, "extra_data": {"b": 2}}
    if call == "create":
        with pytest.raises(InvalidInput) as refused:
            store.create_checkpoint(scan_id, 1, "market_scan", **both)  # type: ignore[arg-type]
        assert store.load_checkpoint(scan_id) is None
    else:
        before = store.create_checkpoint(scan_id, 1, "market_scan")
        with pytest.raises(InvalidInput) as refused:
            store.save_checkpoint(scan_id, "c", 1, **both)  # type: ignore[arg-type]
        assert store.load_checkpoint(scan_id) == before
    assert str(refused.value).startswith("extra_data is the upstream module's name for metadata")


def test_extra_data_keeps_the_64_kib_rule(under_test: StoreUnderTest) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    half = "x" * (METADATA_MAX_BYTES // 2)
    with pytest.raises(InvalidInput) as refused:
        store.create_checkpoint(scan_id, 1, "market_scan", extra_data={"blob": half * 2})
    assert str(refused.value).startswith("extra_data must be at most 65536 bytes")
    before = store.create_checkpoint(scan_id, 1, "market_scan", extra_data={"a": half})
    with pytest.raises(InvalidInput) as merged:
        store.save_checkpoint(scan_id, "c", 1, extra_data={"b": half})
    assert str(merged.value).startswith("metadata must be at most")  # the merged whole
    assert store.load_checkpoint(scan_id) == before


def test_save_with_a_status_moves_the_scan_where_the_table_allows(
    under_test: StoreUnderTest,
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "market_scan", total_items=100)
    same = store.save_checkpoint(scan_id, "p1", 10, status="in_progress")  # upstream's default
    assert same.status == ScanStatus.IN_PROGRESS
    paused = store.save_checkpoint(scan_id, "p2", 20, status="paused")
    assert (paused.status, paused.cursor, paused.processed_items) == (ScanStatus.PAUSED, "p2", 20)
    assert [c.scan_id for c in store.get_active_checkpoints()] == [scan_id]
    resumed = store.save_checkpoint(scan_id, "p3", 30, status=ScanStatus.IN_PROGRESS)
    assert resumed.status == ScanStatus.IN_PROGRESS
    done = store.save_checkpoint(scan_id, None, 100, status="completed")
    assert (done.status, done.processed_items) == (ScanStatus.COMPLETED, 100)
    assert store.load_checkpoint(scan_id) == done
    with pytest.raises(InvalidTransition) as refused:
        store.save_checkpoint(scan_id, None, 100, status="in_progress")
    assert str(refused.value) == (
        f"scan {scan_id} is completed; {ACTIVE_ONLY} take checkpoints as in_progress"
    )
    assert store.load_checkpoint(scan_id) == done


@pytest.mark.parametrize("status", ["interrupted", "", 3, "COMPLETED"])
def test_save_refuses_a_status_that_does_not_exist(
    under_test: StoreUnderTest, status: object
) -> None:
    store, scan_id = under_test.store, uuid.uuid4()
    before = store.create_checkpoint(scan_id, 1, "market_scan")
    with pytest.raises(InvalidInput) as refused:
        store.save_checkpoint(scan_id, "c", 1, status=status)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "status must be one of 'in_progress', 'paused', 'completed', 'failed', 'cancelled', "
        f"got {status!r}"
    )
    assert store.load_checkpoint(scan_id) == before
