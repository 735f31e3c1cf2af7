"""A page's claim and lease renewals go through the relaxed engine (one round trip each):
they commit as they run, with no WAL flush waited for, and nothing of that setting reaches
the connections that commit pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.support.scans import queued_page
from worker.db import is_relaxed, relaxed_session_scope, session_scope
from worker.db import pages as page_store
from worker.settings import Settings, get_settings


@pytest.fixture
def settings(env: dict[str, str]) -> Iterator[Settings]:
    yield get_settings()


def _lease_task_id(session: Session, scan_id: uuid.UUID) -> str | None:
    session.expire_all()
    query = select(ScanCheckpoint.lease_task_id).where(ScanCheckpoint.scan_id == scan_id)
    return session.scalars(query).one()


def test_a_claim_through_a_relaxed_session_is_committed_as_it_runs(
    settings: Settings, session: Session
) -> None:
    # Given a queued page
    message = queued_page(settings)
    # When it is claimed through a relaxed session that is never committed
    with relaxed_session_scope() as relaxed:
        assert is_relaxed(relaxed)
        claimed = page_store.claim(relaxed, message, "w1@test", "task-1", 30)
        assert claimed is not None
        # Then another session sees the claim at once
        assert _lease_task_id(session, message.scan_id) == "task-1"
        # And the relaxed connection waits for no WAL flush
        assert relaxed.scalar(text("SHOW synchronous_commit")) == "off"
    # And a renewal through one holds the lease for that delivery only
    with relaxed_session_scope() as relaxed:
        assert page_store.renew(relaxed, message, "task-1", 30)
        assert not page_store.renew(relaxed, message, "task-2", 30)


def test_the_sessions_that_commit_pages_stay_durable(settings: Settings) -> None:
    message = queued_page(settings)
    with relaxed_session_scope() as relaxed:
        page_store.claim(relaxed, message, "w1@test", "task-1", 30)
    with session_scope() as session:
        assert not is_relaxed(session)
        assert session.scalar(text("SHOW synchronous_commit")) == "on"
