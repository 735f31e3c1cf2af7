"""The alert follower on real PostgreSQL and Redis and a loopback Bot API: a committed page
of a watch's pass becomes one alert, never before its commit, never twice, never more
than one a second per chat, and a 429 is waited out, not dropped.

Page commits are written here as the page task writes them (one transaction of finds).
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy.orm import Session

from models import ScanOpportunity
from tests.support.opportunities import opportunity, reference_for_profit
from worker import client
from worker.app import publisher
from worker.db import alert_finds, session_scope
from worker.notify.alerts import AlertDesk
from worker.notify.telegram import TelegramClient
from worker.schedules import alerting, firing
from worker.testing.telegram_server import FakeTelegram, ScriptedReply

# A watch's pass started as beat's watch clock starts it: the one start of every way in.
START_PASS = publisher.start

CHAT = 900_001
TOP = 3
# Above Telegram's one a second, so jitter in sending cannot bring arrivals under it.
CHAT_INTERVAL_SECONDS = 1.2
_item_numbers = itertools.count()


@pytest.fixture
def desk(telegram: FakeTelegram, redis_url: str) -> Iterator[AlertDesk]:
    connection = redis.Redis.from_url(redis_url)
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as bot_api:
        yield AlertDesk(
            connection, bot_api, chat_interval_seconds=CHAT_INTERVAL_SECONDS,
            messages_per_second=30, dedup_seconds=3600,
        )  # fmt: skip
    connection.close()


def _pass(chat_id: int = CHAT) -> uuid.UUID:
    """A new watch and its first pass (stored and published; no worker runs it)."""
    watch = client.add_watch("csgo", owner_id=chat_id, chat_id=chat_id, every_seconds=600)
    firing.tick(session_scope, START_PASS, 60.0)
    listed = client.list_watches(chat_id)
    [latest] = [one.last_scan_id for one in listed if one.watch_id == watch.watch_id]
    assert latest is not None
    return latest


def _finds(
    session: Session, scan_id: uuid.UUID, page_seq: int, profits: list[int]
) -> list[ScanOpportunity]:
    # The profit shown is derived from the prices and the scan's fee (the default 7 %).
    return [
        opportunity(
            session,
            scan_id,
            f"item-{next(_item_numbers)}",
            title=f"AK-47 | Redline {profit}",
            price_cents=1000,
            reference_price_cents=reference_for_profit(1000, profit),
            page_seq=page_seq,
        )
        for profit in profits
    ]


def _commit_page(session: Session, scan_id: uuid.UUID, page_seq: int, profits: list[int]) -> None:
    session.add_all(_finds(session, scan_id, page_seq, profits))
    session.commit()


def _tick(desk: AlertDesk) -> int:
    return alerting.tick(session_scope, desk, TOP)


def _alerts(telegram: FakeTelegram) -> list[str]:
    return [call.text for call in telegram.calls_of("sendMessage") if call.status == 200]


def test_a_committed_page_is_alerted_once_with_its_best_finds(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    # Given a committed page with five finds
    _commit_page(session, scan_id, 0, [150, 900, 300, 700, 50])
    # When the follower ticks twice
    assert _tick(desk) == 1
    assert _tick(desk) == 0
    # Then one alert lists the best three by profit, with price, reference and profit
    [text] = _alerts(telegram)
    assert text.startswith(f"🔔 5 new finds (scan {str(scan_id)[:8]}, page 1)")
    lines = text.splitlines()
    assert [re.search(r"Redline (\d+)", line).group(1) for line in lines[1:4]] == [  # type: ignore[union-attr]
        "900", "700", "300",
    ]  # fmt: skip
    assert "$10.00 (reference $20.43), profit $9.00 (90.0%)" in lines[1]
    assert lines[-1] == "… and 2 more"
    assert telegram.calls_of("sendMessage")[0].body["chat_id"] == CHAT


def test_finds_of_an_uncommitted_page_are_not_alerted_until_it_commits(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    # Given a page whose transaction is open (its finds inserted, not committed)
    session.add_all(_finds(session, scan_id, 0, [500, 600]))
    session.flush()
    # When the follower ticks, Then nothing is sent
    assert _tick(desk) == 0
    assert _alerts(telegram) == []
    # When the page commits, Then its alert goes
    session.commit()
    assert _tick(desk) == 1
    assert _alerts(telegram)[0].startswith("🔔 2 new finds")


def test_two_followers_on_the_same_pages_alert_each_page_once(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk, redis_url: str
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500])
    # When a second beat's follower (its own desk and connections) ticks too
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as bot_api:
        other = AlertDesk(
            redis.Redis.from_url(redis_url), bot_api, chat_interval_seconds=CHAT_INTERVAL_SECONDS,
            messages_per_second=30, dedup_seconds=3600,
        )  # fmt: skip
        sent = _tick(desk) + alerting.tick(session_scope, other, TOP)
    # Then the page was alerted once
    assert sent == 1
    assert len(_alerts(telegram)) == 1


def _listing(
    session: Session, scan_id: uuid.UUID, item_id: str, price_cents: int
) -> ScanOpportunity:
    [find] = _finds(session, scan_id, 0, [500])
    find.item_id, find.price_cents, find.title = item_id, price_cents, f"{item_id} at {price_cents}"
    return find


def test_a_listing_at_the_same_price_is_not_alerted_again_within_the_window(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    # Given listing X alerted at $10.00 by one watch of the chat
    session.add(_listing(session, _pass(), "X", 1000))
    session.commit()
    assert _tick(desk) == 1
    # When another watch of the same chat finds X at the same price, and a new listing Y
    second = _pass()
    session.add_all([_listing(session, second, "X", 1000), _listing(session, second, "Y", 1000)])
    session.commit()
    _wait_for_the_chats_slot()
    assert _tick(desk) == 1
    # Then only Y is alerted
    assert _alerts(telegram)[-1].startswith("🔔 1 new find (")
    assert "Y at 1000" in _alerts(telegram)[-1] and "X at" not in _alerts(telegram)[-1]
    # And X at another price is news again
    session.add(_listing(session, _pass(), "X", 900))
    session.commit()
    _wait_for_the_chats_slot()
    assert _tick(desk) == 1
    assert "X at 900" in _alerts(telegram)[-1]


def _wait_for_the_chats_slot() -> None:
    time.sleep(CHAT_INTERVAL_SECONDS + 0.05)


def test_a_burst_of_pages_queues_at_one_alert_a_second_per_chat(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    # Given three pages committed at once
    for page_seq in range(3):
        _commit_page(session, scan_id, page_seq, [100 + page_seq])
    # When the follower ticks until everything is sent
    for _ in range(100):
        if len(_alerts(telegram)) == 3:
            break
        _tick(desk)
        time.sleep(0.1)
    # Then all three arrive, in page order, at least a second apart
    calls = [call for call in telegram.calls_of("sendMessage") if call.status == 200]
    assert [re.search(r"page (\d+)", call.text).group(1) for call in calls] == ["1", "2", "3"]  # type: ignore[union-attr]
    gaps = [later.received_at - earlier.received_at for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= 1.0, gaps


def test_a_429_is_waited_out_and_the_alert_delivered_once(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500])
    # Given Telegram answers the first send with 429, retry after 1 s
    telegram.script("sendMessage", ScriptedReply.rate_limited(1))
    # When the follower ticks, Then it waits and sends once more, which is delivered
    assert _tick(desk) == 1
    calls = telegram.calls_of("sendMessage")
    assert [call.status for call in calls] == [429, 200]
    assert calls[1].received_at - calls[0].received_at >= 1.0
    assert _tick(desk) == 0


def test_of_two_followers_that_read_the_same_page_only_one_claims_it(
    env: dict[str, str], session: Session
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500, 600])
    # Given two followers (two beats) that both read the pass at the same cursor
    with session_scope() as first, session_scope() as second:
        [seen_first] = alert_finds.pending_passes(first, 3600)
        [seen_second] = alert_finds.pending_passes(second, 3600)
        finds = alert_finds.next_page_finds(first, scan_id, seen_first.alerted_through_id)
        through = max(find.opportunity_id for find in finds)
        # When both claim the page, Then only the first does
        assert alert_finds.claim(first, scan_id, seen_first.alerted_through_id, through)
        first.commit()
        assert not alert_finds.claim(second, scan_id, seen_second.alerted_through_id, through)
        second.commit()


def test_the_fleets_rate_holds_alerts_back_and_they_queue_not_drop(
    env: dict[str, str], session: Session, telegram: FakeTelegram, redis_url: str
) -> None:
    # Given three chats with a page each, and a fleet allowed one alert a second
    for chat in (CHAT + 10, CHAT + 11, CHAT + 12):
        _commit_page(session, _pass(chat), 0, [500])
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as bot_api:
        slow = AlertDesk(
            redis.Redis.from_url(redis_url), bot_api, chat_interval_seconds=1.0,
            messages_per_second=1, dedup_seconds=3600,
        )  # fmt: skip
        # When the follower ticks early in a second, Then one alert goes
        time.sleep(1 - time.time() % 1)
        assert alerting.tick(session_scope, slow, TOP) == 1
        # And the others follow at later ticks, none dropped
        deadline = time.monotonic() + 10
        while len(_alerts(telegram)) < 3:
            assert time.monotonic() < deadline, _alerts(telegram)
            alerting.tick(session_scope, slow, TOP)
            time.sleep(0.1)
    chats = sorted(call.body["chat_id"] for call in telegram.calls_of("sendMessage"))
    assert chats == [CHAT + 10, CHAT + 11, CHAT + 12]
