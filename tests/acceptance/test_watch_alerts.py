"""A watch's alerts on a real worker and beat, through a loopback Bot API: each page with
finds is alerted once, only after it committed, at most one a second per chat, also when
beat is SIGKILLed and restarted midway."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import ScanOpportunity, WatchPass
from tests.support.processes import CeleryProcess
from tests.support.scans import wait_for_status
from worker import client
from worker.db import driver_url
from worker.testing.telegram_server import FakeTelegram, RecordedCall

CHAT = 777_000_111
# Owner 0: the pass's progress messages go to nobody, so every sendMessage is an alert.
OWNER = 0
# 8 pages of 100 listings, each page in about 0.3 s: pages commit faster than a chat may
# be messaged, so alerts queue behind the chat's rate.
PASS_OPTIONS = {"items": 800, "item_latency_ms": 3, "seed": 7}
HEADER = re.compile(r"^🔔 (\d+) new finds? \(scan (\w+), page (\d+)\)")


@pytest.fixture
def celery_env(celery_env: dict[str, str], telegram: FakeTelegram) -> dict[str, str]:
    return {
        **celery_env,
        "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        "MARKETSCAN_WATCH_TICK_SECONDS": "0.3",
        # A margin above Telegram's one a second, so a loaded machine's jitter in sending
        # cannot bring two arrivals closer than the limit asserted below.
        "MARKETSCAN_ALERT_CHAT_INTERVAL_SECONDS": "1.2",
    }


def _committed_per_page(database_url: str) -> Counter[int]:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        rows = session.execute(
            select(ScanOpportunity.page_seq, func.count()).group_by(ScanOpportunity.page_seq)
        ).all()
    engine.dispose()
    return Counter({page_seq: count for page_seq, count in rows})


def _alerts(telegram: FakeTelegram) -> list[RecordedCall]:
    return [call for call in telegram.calls_of("sendMessage") if call.status == 200]


def _pages_of(calls: list[RecordedCall]) -> list[tuple[int, int]]:
    """(page_seq, finds) of each alert, from its header."""
    headers = [HEADER.match(call.text) for call in calls]
    assert all(headers), [call.text for call in calls]
    return [(int(h.group(3)) - 1, int(h.group(1))) for h in headers if h]


def test_alerts_follow_commits_once_each_within_the_chats_rate_across_a_beat_kill(
    celery_env: dict[str, str],
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    start_worker("w1@test", concurrency=1)
    beat = start_beat()
    # Given the first alert held in flight by Telegram
    held = telegram.hold("sendMessage")
    # When a watch's pass runs
    client.add_watch(
        "csgo", owner_id=OWNER, chat_id=CHAT, every_seconds=3600, market_options=PASS_OPTIONS
    )
    assert held.arrived.wait(60), "no alert within 60 s"
    # Then while the first alert is in flight, what it carries is already committed
    committed_then = _committed_per_page(database_url)
    held.release()
    # When beat is SIGKILLed after the second alert and started again
    deadline = time.monotonic() + 60
    while len(_alerts(telegram)) < 2:
        assert time.monotonic() < deadline, "no second alert"
        time.sleep(0.02)
    beat.kill_group()
    start_beat()
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        scan_id = session.scalars(select(WatchPass.scan_id)).one()
    engine.dispose()
    wait_for_status(database_url, scan_id, timeout=90)
    committed = _committed_per_page(database_url)
    assert len(committed) >= 3, f"the pass found too little to test with: {committed}"
    deadline = time.monotonic() + 30
    while sum(n for _, n in _pages_of(_alerts(telegram))) < sum(committed.values()) - max(
        committed.values()
    ):
        assert time.monotonic() < deadline, "alerts stopped"
        time.sleep(0.1)
    time.sleep(2.5)  # let any (wrong) extra alert arrive
    calls = _alerts(telegram)
    pages = _pages_of(calls)
    # Then the first alert's page had committed all of its finds before it was sent
    first_page, first_finds = pages[0]
    assert committed_then[first_page] == first_finds
    # And each page is alerted at most once, with every find that page committed
    assert len({page for page, _ in pages}) == len(pages)
    for page, finds in pages:
        assert committed[page] == finds
    # And no page is lost, except at most the one a killed beat had claimed and not sent
    assert len(pages) >= len(committed) - 1
    # And alerts to the chat arrive at least a second apart (Telegram's per-chat limit)
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 1.0, gaps
    print(f"\n{len(pages)} alerts for {len(committed)} pages with finds; gaps {min(gaps):.2f}s+")
