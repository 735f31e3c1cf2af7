"""A watch's alerts on a real worker and beat, through a loopback Bot API: every committed
find is alerted at least once, with its listing's link, only after it committed, at most one
message a second per chat, also when beat is SIGKILLed while an alert is in flight: a
message Telegram never took is sent again by the next beat, and one it took before the
beat could record it is the only duplicate."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import unquote

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanOpportunity, WatchPass
from tests.support.processes import CeleryProcess
from tests.support.scans import wait_for_status
from worker import client
from worker.db import driver_url
from worker.testing.telegram_server import FakeTelegram, RecordedCall, ScriptedReply

CHAT = 777_000_111
# Owner 0: the pass's progress messages go to nobody, so every sendMessage is an alert.
OWNER = 0
# 8 pages of 100 listings, each page in about 0.3 s: pages commit faster than a chat may
# be messaged, so alerts queue behind the chat's rate.
PASS_OPTIONS = {"items": 800, "item_latency_ms": 3, "seed": 7}
# The default listing link base (MARKETSCAN_LISTING_LINK_URL is not set here).
LINKS = "https://dmarket.com/ingame-items/item-list/csgo-skins?userOfferId="


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
        # A pass's send lock lasts twice this and a few seconds: what a killed beat's page
        # waits before the next beat sends it.
        "MARKETSCAN_HTTP_TIMEOUT_SECONDS": "4",
    }


def _committed_offers(database_url: str) -> set[str]:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        offers = set(session.scalars(select(ScanOpportunity.item_id)))
    engine.dispose()
    return offers


def _offers_in(text: str) -> list[str]:
    """The offer ids an alert links to, one per find line."""
    lines = text.splitlines()
    assert lines[0].startswith("🔔 "), text
    links = [line.rsplit(" ", 1)[1] for line in lines[1:]]
    assert all(link.startswith(LINKS) for link in links), text
    return [unquote(link[len(LINKS) :]) for link in links]


def _alerts(telegram: FakeTelegram) -> list[RecordedCall]:
    return [call for call in telegram.calls_of("sendMessage") if call.status == 200]


def _delivered(telegram: FakeTelegram) -> Counter[str]:
    return Counter(offer for call in _alerts(telegram) for offer in _offers_in(call.text))


def _kill_beat_while_an_alert_is_in_flight(
    telegram: FakeTelegram, beat: CeleryProcess, taken: bool
) -> str:
    """Hold beat's next alert at Telegram, SIGKILL beat, then let Telegram take the alert
    (`taken`) or refuse it; the alert's text."""
    held = telegram.hold("sendMessage")
    assert held.arrived.wait(60), "no alert within 60 s"
    beat.kill_group()
    answered_before = len(telegram.calls_of("sendMessage"))
    if not taken:
        telegram.script("sendMessage", ScriptedReply.server_error())
    held.release()
    deadline = time.monotonic() + 10
    while len(telegram.calls_of("sendMessage")) == answered_before:
        # The fake records the held call once it answered it; beat is dead, so it is the last.
        assert time.monotonic() < deadline, "the held alert was never answered"
        time.sleep(0.02)
    last = telegram.calls_of("sendMessage")[-1]
    assert last.status == (200 if taken else 500)
    return last.text


def test_every_find_is_alerted_at_least_once_within_the_chats_rate_across_beat_kills(
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
    # Then while the first alert is in flight, every find it carries is already committed
    committed_then = _committed_offers(database_url)
    held.release()
    deadline = time.monotonic() + 60
    while not _alerts(telegram):
        assert time.monotonic() < deadline, "the first alert was never delivered"
        time.sleep(0.02)
    first = _alerts(telegram)[0].text
    assert set(_offers_in(first)) <= committed_then
    # When beat is SIGKILLed with an alert in flight that Telegram then refuses
    refused = _kill_beat_while_an_alert_is_in_flight(telegram, beat, taken=False)
    beat = start_beat()
    # And again with one that Telegram takes after the beat died, before it could record it
    duplicated = _kill_beat_while_an_alert_is_in_flight(telegram, beat, taken=True)
    start_beat()
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        scan_id = session.scalars(select(WatchPass.scan_id)).one()
    engine.dispose()
    wait_for_status(database_url, scan_id, timeout=90)
    committed = _committed_offers(database_url)
    assert len(committed) >= 10, f"the pass found too little to test with: {committed}"
    deadline = time.monotonic() + 90
    while set(_delivered(telegram)) != committed:
        assert time.monotonic() < deadline, f"alerts stopped: {len(_delivered(telegram))}"
        time.sleep(0.1)
    time.sleep(2.5)  # let any (wrong) extra alert arrive
    delivered = _delivered(telegram)
    # Then every committed find was alerted, the refused alert's too, and nothing else
    assert set(delivered) == committed
    assert set(_offers_in(refused)) <= set(delivered)
    # And the only finds alerted twice are those of the alert taken after its beat died
    assert {offer for offer, times in delivered.items() if times > 1} <= set(_offers_in(duplicated))
    assert max(delivered.values()) <= 2
    # And alerts to the chat arrive at least a second apart (Telegram's per-chat limit)
    calls = _alerts(telegram)
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 1.0, gaps
    print(f"\n{len(calls)} alerts for {len(committed)} finds; gaps {min(gaps):.2f}s+")
