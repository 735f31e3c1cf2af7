"""StateManager on PostgreSQL: every method's success path and its refusals, sync flavour."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity, ScanStatus
from tests.support.opportunities import opportunity
from worker.domain.validation import METADATA_MAX_BYTES
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput, InvalidTransition
from worker.state.manager import StateManager, SyncStateManager


@pytest.fixture
def manager(session: Session) -> SyncStateManager:
    return StateManager(session)


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def test_state_manager_picks_the_sync_flavour_for_a_session(session: Session) -> None:
    assert isinstance(StateManager(session), SyncStateManager)
    assert StateManager(session).checkpoint_interval == 100
    assert StateManager(session, checkpoint_interval=250).checkpoint_interval == 250


@pytest.mark.parametrize("interval", [0, -5, 1.5, "100", True])
def test_checkpoint_interval_must_be_a_positive_integer(session: Session, interval: object) -> None:
    with pytest.raises(InvalidInput, match="checkpoint_interval"):
        StateManager(session, checkpoint_interval=interval)  # type: ignore[call-overload]


def test_create_then_load_returns_the_stored_checkpoint(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    created = manager.create_checkpoint(
        scan_id, 5_000_000_000, "market_scan", metadata={"game": "csgo"}, total_items=10
    )
    loaded = manager.load_checkpoint(scan_id)
    assert loaded == created
    assert loaded is not None
    assert loaded.user_id == 5_000_000_000  # beyond 32 bits: Telegram ids
    assert loaded.status is ScanStatus.IN_PROGRESS
    assert loaded.metadata == {"game": "csgo"}
    assert (loaded.cursor, loaded.processed_items, loaded.total_items) == (None, 0, 10)


def test_create_accepts_a_scan_id_string(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    manager.create_checkpoint(str(scan_id), 1, "market_scan")
    assert manager.load_checkpoint(scan_id) is not None


def test_create_with_duplicate_scan_id_is_refused_and_keeps_the_first(
    manager: SyncStateManager,
) -> None:
    scan_id = uuid.uuid4()
    manager.create_checkpoint(scan_id, 1, "market_scan", metadata={"first": True})
    with pytest.raises(DuplicateScan, match=str(scan_id)):
        manager.create_checkpoint(scan_id, 2, "other_scan")
    loaded = manager.load_checkpoint(scan_id)
    assert loaded is not None and loaded.metadata == {"first": True} and loaded.user_id == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scan_id": "not-a-uuid"}, "scan_id"),
        ({"user_id": "123"}, "user_id"),
        ({"user_id": 2**64}, "user_id"),
        ({"operation_type": ""}, "operation_type"),
        ({"operation_type": "x" * 51}, "operation_type"),
        ({"metadata": ["not", "a", "dict"]}, "metadata"),
        ({"metadata": {"when": object()}}, "metadata"),
        ({"total_items": -1}, "total_items"),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(
    manager: SyncStateManager, session: Session, kwargs: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {
        "scan_id": uuid.uuid4(),
        "user_id": 1,
        "operation_type": "market_scan",
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=field):
        manager.create_checkpoint(**arguments)  # type: ignore[arg-type]
    assert session.scalar(select(func.count()).select_from(ScanCheckpoint)) == 0


def test_save_updates_progress_and_merges_metadata(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    manager.create_checkpoint(scan_id, 1, "market_scan", metadata={"game": "csgo"})
    saved = manager.save_checkpoint(scan_id, "cursor-2", 200, total_items=1000, metadata={"p": 2})
    assert (saved.cursor, saved.processed_items, saved.total_items) == ("cursor-2", 200, 1000)
    assert saved.metadata == {"game": "csgo", "p": 2}
    assert manager.load_checkpoint(scan_id) == saved


def test_save_without_total_keeps_the_stored_total(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    manager.create_checkpoint(scan_id, 1, "market_scan", total_items=50)
    saved = manager.save_checkpoint(scan_id, None, 50)
    assert saved.total_items == 50


@pytest.mark.parametrize(
    ("processed", "total", "field"),
    [
        (-1, None, "processed_items"),
        (5, -1, "total_items"),
        (11, 10, "processed_items"),
        ("5", None, "processed_items"),
    ],
)
def test_save_refuses_bad_counts_and_writes_nothing(
    manager: SyncStateManager, processed: object, total: object, field: str
) -> None:
    scan_id = uuid.uuid4()
    before = manager.create_checkpoint(scan_id, 1, "market_scan")
    with pytest.raises(InvalidInput, match=field):
        manager.save_checkpoint(scan_id, "c", processed, total_items=total)  # type: ignore[arg-type]
    assert manager.load_checkpoint(scan_id) == before


def test_save_refuses_processed_beyond_the_stored_total(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    before = manager.create_checkpoint(scan_id, 1, "market_scan", total_items=10)
    with pytest.raises(InvalidInput, match=r"processed_items \(11\) must not exceed total_items"):
        manager.save_checkpoint(scan_id, "c", 11)
    assert manager.load_checkpoint(scan_id) == before


def test_save_refuses_non_json_and_oversized_metadata(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    before = manager.create_checkpoint(scan_id, 1, "market_scan")
    with pytest.raises(InvalidInput, match="JSON-serialisable"):
        manager.save_checkpoint(scan_id, "c", 1, metadata={"bad": {1, 2}})
    with pytest.raises(InvalidInput, match=f"at most {METADATA_MAX_BYTES} bytes"):
        manager.save_checkpoint(scan_id, "c", 1, metadata={"blob": "x" * METADATA_MAX_BYTES})
    assert manager.load_checkpoint(scan_id) == before


def test_save_refuses_metadata_that_grows_too_big_by_merging(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    half = "x" * (METADATA_MAX_BYTES // 2)
    manager.create_checkpoint(scan_id, 1, "market_scan", metadata={"a": half})
    with pytest.raises(InvalidInput, match="metadata"):
        manager.save_checkpoint(scan_id, "c", 1, metadata={"b": half})
    loaded = manager.load_checkpoint(scan_id)
    assert loaded is not None and set(loaded.metadata) == {"a"} and loaded.processed_items == 0


def test_save_of_unknown_scan_is_not_found(manager: SyncStateManager) -> None:
    with pytest.raises(CheckpointNotFound):
        manager.save_checkpoint(uuid.uuid4(), "c", 1)


def test_save_of_a_completed_scan_is_an_invalid_transition(manager: SyncStateManager) -> None:
    scan_id = uuid.uuid4()
    manager.create_checkpoint(scan_id, 1, "market_scan")
    manager.mark_checkpoint_completed(scan_id)
    with pytest.raises(InvalidTransition, match="completed"):
        manager.save_checkpoint(scan_id, "c", 1)


def test_load_of_unknown_scan_is_none(manager: SyncStateManager) -> None:
    assert manager.load_checkpoint(uuid.uuid4()) is None


def test_get_active_checkpoints_filters_and_orders_newest_first(
    manager: SyncStateManager,
) -> None:
    older, newer, other_user, other_op, done = (uuid.uuid4() for _ in range(5))
    manager.create_checkpoint(older, 7, "market_scan")
    manager.create_checkpoint(newer, 7, "market_scan")
    manager.create_checkpoint(other_user, 8, "market_scan")
    manager.create_checkpoint(other_op, 7, "arbitrage_scan")
    manager.create_checkpoint(done, 7, "market_scan")
    manager.mark_checkpoint_completed(done)
    manager.save_checkpoint(newer, "c", 3)  # the latest checkpoint of all
    mine = manager.get_active_checkpoints(user_id=7, operation_type="market_scan")
    assert [c.scan_id for c in mine] == [newer, older]
    assert {c.scan_id for c in manager.get_active_checkpoints()} == {
        older,
        newer,
        other_user,
        other_op,
    }
    with pytest.raises(InvalidInput, match="user_id"):
        manager.get_active_checkpoints(user_id="7")  # type: ignore[arg-type]


def test_mark_completed_and_failed_are_terminal(manager: SyncStateManager) -> None:
    ok, bad = uuid.uuid4(), uuid.uuid4()
    manager.create_checkpoint(ok, 1, "market_scan")
    manager.create_checkpoint(bad, 1, "market_scan")
    assert manager.mark_checkpoint_completed(ok).status is ScanStatus.COMPLETED
    failed = manager.mark_checkpoint_failed(bad, "market returned 403")
    assert failed.status is ScanStatus.FAILED and failed.error_message == "market returned 403"
    with pytest.raises(InvalidTransition, match="completed"):
        manager.mark_checkpoint_completed(ok)
    with pytest.raises(InvalidTransition, match="failed"):
        manager.mark_checkpoint_failed(bad, "again")
    with pytest.raises(CheckpointNotFound):
        manager.mark_checkpoint_completed(uuid.uuid4())
    with pytest.raises(InvalidInput, match="error_message"):
        manager.mark_checkpoint_failed(ok, "  ")


def _age(session: Session, scan_id: uuid.UUID, days: int) -> None:
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(updated_at=func.now() - timedelta(days=days))
    )
    session.commit()


def test_cleanup_deletes_only_old_terminal_rows_with_their_opportunities(
    manager: SyncStateManager, session: Session
) -> None:
    old_done, old_failed, old_live, recent_done = (uuid.uuid4() for _ in range(4))
    for scan_id in (old_done, old_failed, old_live, recent_done):
        manager.create_checkpoint(scan_id, 1, "market_scan")
    manager.mark_checkpoint_completed(old_done)
    manager.mark_checkpoint_failed(old_failed, "boom")
    manager.mark_checkpoint_completed(recent_done)
    session.add(opportunity(session, old_done))
    session.commit()
    for scan_id in (old_done, old_failed, old_live):
        _age(session, scan_id, 8)

    assert manager.cleanup_old_checkpoints(days=7) == 2

    left = set(session.scalars(select(ScanCheckpoint.scan_id)))
    assert left == {old_live, recent_done}
    assert session.scalar(select(func.count()).select_from(ScanOpportunity)) == 0
    assert manager.cleanup_old_checkpoints(days=7) == 0
    with pytest.raises(InvalidInput, match="days"):
        manager.cleanup_old_checkpoints(days=-1)


def test_cleanup_works_in_bounded_batches(session: Session) -> None:
    from worker.db import checkpoints as store
    from worker.db import retention

    scan_ids = [uuid.uuid4() for _ in range(7)]
    for scan_id in scan_ids:
        store.create_checkpoint(session, scan_id, 1, "market_scan")
        store.mark_checkpoint_completed(session, scan_id)
    session.commit()
    session.execute(update(ScanCheckpoint).values(updated_at=func.now() - timedelta(days=30)))
    session.commit()
    statements: list[str] = []
    deleted_ids: list[int] = []

    from sqlalchemy import event

    def record(
        conn: object, cursor: object, statement: str, parameters: object, *args: object
    ) -> None:
        if statement.startswith("DELETE FROM scan_checkpoints"):
            statements.append(statement)
            assert isinstance(parameters, dict)
            deleted_ids.append(len(parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert retention.cleanup_old_checkpoints(session, days=7, batch_size=3) == 7
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # 3 + 3 + 1: three bounded DELETEs (of the rows a LIMITed SELECT ... FOR UPDATE picked),
    # each committed on its own.
    assert len(statements) == 3
    assert deleted_ids == [3, 3, 1]
