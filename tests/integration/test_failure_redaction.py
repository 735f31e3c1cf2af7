"""A scan that fails quoting a credential shows it nowhere: not in the worker's "scan failed"
log line, not in the stored error, not in the Telegram summary its user gets."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, ScanProgress, run_page
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.notify.messages import failed_text
from worker.settings import get_settings

SECRET = "hunter/2 x"
# What a proxy in front of the market might say when it refuses: its upstream, credentials
# and all (a password with a '/' and a space, as PostgreSQL and SQLAlchemy take it).
REFUSAL = f"upstream postgresql://scanner:{SECRET}@db.internal:5432/prices refused the query"


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket([dmarket_item("dm-1", "AK-47 | Redline", 1000, 1500)]) as server:
        yield server


def test_a_scan_failed_on_a_message_quoting_a_password_logs_stores_and_reports_none_of_it(
    env: dict[str, str],
    fake: FakeDMarket,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a DMarket scan whose market refuses its first page with a message quoting a password
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", "v1")
    get_settings.cache_clear()
    reset_engines()
    settings = get_settings()
    fake.script(0, ScriptedReply.error(400, REFUSAL))
    published: list[PageMessage] = []
    with session_scope() as opened:
        scan_id = scans.start_scan(
            opened, ScanParams(game="csgo", market="dmarket", user_id=7), settings, published.append
        )
    summaries: list[str] = []

    def on_failed(progress: ScanProgress, error_message: str) -> None:
        summaries.append(failed_text(progress, error_message))

    # When a worker runs the page and the scan fails
    context = PageContext("w1@test", settings, publish=published.append, on_failed=on_failed)
    with caplog.at_level(logging.ERROR, logger="worker.chain"):
        assert run_page(published.pop(), context) is Outcome.FAILED

    # Then the log line, the stored error and the user's summary name the refusal, not the password
    failed_lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    stored = _error_of(session, scan_id)
    assert len(failed_lines) == 1 and len(summaries) == 1
    for shown in (failed_lines[0], stored, summaries[0]):
        assert "postgresql://scanner:***@db.internal:5432/prices refused" in shown
        assert "hunter" not in shown


def _error_of(session: Session, scan_id: uuid.UUID) -> str:
    query = select(ScanCheckpoint.error_message).where(ScanCheckpoint.scan_id == scan_id)
    return session.scalars(query).one() or ""
