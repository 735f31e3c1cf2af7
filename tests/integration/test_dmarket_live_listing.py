"""DMarket's listing as it really is: a total capped at 10,000, and listings that come and go.

The loopback DMarket reports a capped total and sells and lists items between requests;
the scans run page by page in this process, as the page task runs them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, dmarket_item
from tests.fakes.telegram_server import FakeTelegram
from tests.support.scans import cli
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.notify.notifier import TelegramNotifier
from worker.settings import Settings, get_settings

DMARKET_TOTAL_CAP = 10_000
CHAT_ID = 515151


def _listing(count: int, prefix: str = "dm") -> list[dict[str, object]]:
    # Every 7th listing is priced well under its suggested price: an opportunity.
    return [
        dmarket_item(
            f"{prefix}-{n:05d}", f"AK-47 | Redline #{n}", 1000, 1000 + (400 if n % 7 == 0 else 0)
        )
        for n in range(count)
    ]


def _everything_underpriced(count: int, prefix: str = "dm") -> list[dict[str, object]]:
    # Each listing judged leaves a row: the opportunities are the record of what was judged.
    return [
        dmarket_item(f"{prefix}-{n:04d}", f"AWP | Asiimov #{n}", 1000, 2000) for n in range(count)
    ]


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "1000")
    monkeypatch.setenv("MARKETSCAN_RETRY_BACKOFF_SECONDS", "0.01")
    yield get_settings()


def _point_at(fake: FakeDMarket, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", "v1")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


def _start(settings: Settings, user_id: int = 0) -> tuple[uuid.UUID, list[PageMessage]]:
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", market="dmarket", fee=settings.fee, user_id=user_id)
    with session_scope() as session:
        return scans.start_scan(session, params, settings, published.append), published


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def _found(session: Session, scan_id: uuid.UUID) -> list[str]:
    return list(
        session.scalars(select(ScanOpportunity.item_id).where(ScanOpportunity.scan_id == scan_id))
    )


def _percentages(text: str) -> list[int]:
    return [int(number) for number in re.findall(r"(\d+)\s*%", text)]


def test_a_listing_beyond_the_capped_total_is_judged_whole_and_no_view_shows_over_100_percent(
    settings: Settings,
    session: Session,
    telegram: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 10,050 listings on a DMarket that reports a total of at most 10,000
    listing = _listing(DMARKET_TOTAL_CAP + 50)
    with FakeDMarket(listing, total_cap=DMARKET_TOTAL_CAP) as fake:
        settings = replace(
            _point_at(fake, monkeypatch),
            telegram_bot_token=telegram.token,
            telegram_api_url=telegram.api_url,
            telegram_min_interval_seconds=0.0,
        )
        notifier = TelegramNotifier(settings)
        try:
            # When a scan of user 515151 runs to its end, its progress told on Telegram
            scan_id, published = _start(settings, user_id=CHAT_ID)
            outcomes = []
            while published:
                context = PageContext(
                    "w1@test", settings, publish=published.append,
                    on_progress=notifier.progress, on_completed=notifier.completed,
                )  # fmt: skip
                outcomes.append(run_page(published.pop(0), context))
            assert notifier.flush(15.0), "the sender did not drain its queue"
        finally:
            notifier.close()
    # Then it completed with every listing judged, and its total says "at least" what it saw
    assert outcomes[-1] is Outcome.COMPLETED
    done = _row(session, scan_id)
    assert (done.status, done.processed_items) == ("completed", DMARKET_TOTAL_CAP + 50)
    assert (done.total_items, done.total_is_lower_bound) == (DMARKET_TOTAL_CAP + 50, True)
    expected = {str(item["itemId"]) for n, item in enumerate(listing) if n % 7 == 0}
    assert set(_found(session, scan_id)) == expected
    # And the CLI shows "at least N", never a share above 100 %
    env = dict(__import__("os").environ)
    status = cli(["scan", "status", str(scan_id)], env)
    assert status.returncode == 0, status.stderr
    assert re.search(r"total_items: at least 10050\b", status.stdout), status.stdout
    listed = cli(["scan", "list"], env)
    assert re.search(rf"{scan_id}\s+completed\s+10050\s+≥ 10050", listed.stdout), listed.stdout
    watched = cli(["scan", "watch", str(scan_id)], env)
    assert watched.returncode == 0, watched.stderr
    assert "10050/10000" not in watched.stdout and "at least 10050" in watched.stdout
    for output in (status.stdout, listed.stdout, watched.stdout):
        assert all(share <= 100 for share in _percentages(output)), output
    # And the JSON says the total is a lower bound
    shown = json.loads(cli(["scan", "status", str(scan_id), "--json"], env).stdout)
    assert (shown["total_items"], shown["total_is_lower_bound"]) == (10050, True)
    # And Telegram never showed a share, only "≥ N", until the completion summary
    texts = [call.text for call in telegram.calls]
    assert texts and all(share <= 100 for text in texts for share in _percentages(text))
    assert all("≥ " in text for text in texts[:-1]), texts[:3]
    assert "completed: 10050 items" in texts[-1]


def test_a_page_resumed_on_a_live_listing_judges_every_listing_present_throughout_once(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 250 listings, every one an opportunity, and a first page drained after 30 items
    listing = _everything_underpriced(250)
    with FakeDMarket(listing) as fake:
        settings = _point_at(fake, monkeypatch)
        scan_id, published = _start(settings)
        checks = iter([False] * 30 + [True])
        drained = PageContext(
            "w1@test", settings, publish=published.append, drain_requested=lambda: next(checks)
        )
        assert run_page(published.pop(0), drained) is Outcome.HANDED_OVER
        assert [(m.page_seq, m.page_offset) for m in published] == [(0, 30)]
        # When, before the resume, 10 judged listings sell and 5 new ones are listed mid-page
        sold = [f"dm-{n:04d}" for n in range(10)]
        fake.remove_items(sold)
        fresh = _everything_underpriced(5, prefix="new")
        fake.insert_items(50, fresh)
        while published:
            context = PageContext("w1@test", settings, publish=published.append)
            run_page(published.pop(0), context)
    # Then every listing on the market throughout was judged, and the new ones too
    found = _found(session, scan_id)
    present_throughout = {f"dm-{n:04d}" for n in range(10, 250)}
    assert present_throughout <= set(found)
    assert {f"new-{n:04d}" for n in range(5)} <= set(found)
    # And nothing was stored or counted twice: 30 judged before the drain, 225 after
    assert len(found) == len(set(found)) == 255
    done = _row(session, scan_id)
    assert (done.status, done.processed_items) == ("completed", 255)
    assert session.scalar(select(func.count()).select_from(ScanOpportunity)) == 255
    # And the page forgot what it had judged once it was complete
    assert done.page_judged_ids == []
