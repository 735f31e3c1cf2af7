"""A chain's statements after its claim name its row's day, so each is planned against that
one partition of `scan_checkpoints` rather than every day's; a remembered day never makes a
statement match another row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from tests.support.scans import queued_page
from worker.db import chain_days, relaxed_session_scope, session_scope, sync_engine
from worker.db import pages as page_store
from worker.db.pages import PageResult
from worker.settings import Settings, get_settings

# One "Update on <partition> <alias>" line per partition the UPDATE is planned against.
PARTITION = re.compile(r"Update on (\w+) scan_checkpoints_\d+")


@pytest.fixture
def settings(env: dict[str, str]) -> Iterator[Settings]:
    chain_days.forget_all()
    yield get_settings()
    chain_days.forget_all()


def _partitions_planned(session: Session, statement: str, parameters: Any) -> set[str]:
    cursor = session.connection().connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    return set(PARTITION.findall(plan))


def _checkpoint_statements(run: Any) -> list[tuple[str, Any]]:
    """The UPDATEs of scan_checkpoints that `run()` sends, as sent."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("UPDATE scan_checkpoints"):
            sent.append((statement, parameters))

    engines = [sync_engine()]
    with relaxed_session_scope() as relaxed:
        engines.append(relaxed.get_bind().engine)  # type: ignore[union-attr]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", capture)
    return sent


def test_after_its_claim_a_chains_statements_are_planned_against_its_day_alone(
    settings: Settings, session: Session
) -> None:
    message = queued_page(settings)
    partitions = session.scalar(
        text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'scan_checkpoints'::regclass")
    )
    assert partitions and partitions > 2

    def walk_a_page() -> None:
        with relaxed_session_scope() as relaxed:
            assert page_store.claim(relaxed, message, "w1@test", "task-1", 30) is not None
            assert page_store.renew(relaxed, message, "task-1", 30)
        with session_scope() as own:
            result = PageResult(100, True, "c-1", 200, ())
            assert page_store.commit_page(own, message, result) == "in_progress"

    claim, renew, commit = _checkpoint_statements(walk_a_page)
    # The claim learns the day: it is planned against every partition
    assert len(_partitions_planned(session, *claim)) == partitions
    # Every statement after it is planned against one
    assert len(_partitions_planned(session, *renew)) == 1
    assert len(_partitions_planned(session, *commit)) == 1
    session.rollback()


def test_a_remembered_day_matches_only_its_own_chains_row(
    settings: Settings, session: Session
) -> None:
    # Given a chain claimed (its day remembered), then its row gone and its id started anew
    old = queued_page(settings)
    with relaxed_session_scope() as relaxed:
        assert page_store.claim(relaxed, old, "w1@test", "task-1", 30) is not None
    session.execute(text("DELETE FROM scan_checkpoints WHERE scan_id = :s"), {"s": old.scan_id})
    session.commit()
    new = queued_page(settings, old.scan_id)
    # Then the old chain's message matches nothing, and the new chain's is claimed
    with relaxed_session_scope() as relaxed:
        assert not page_store.renew(relaxed, old, "task-1", 30)
        assert page_store.claim(relaxed, old, "w1@test", "task-1", 30) is None
        assert page_store.claim(relaxed, new, "w1@test", "task-2", 30) is not None
        assert page_store.renew(relaxed, new, "task-2", 30)
