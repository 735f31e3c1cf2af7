"""The alert follower on real PostgreSQL and Redis and a loopback Bot API: a committed page
of a watch's pass is alerted whole, every find with its listing's link, never before its
commit, at least once (a failed or unanswered send is sent again), once per chat and
price, never by two beats at once, never more than one message a second per chat, and a
429 is waited out, not dropped.

Page commits are written here as the page task writes them (one transaction of finds).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity, WatchPass
from tests.support.opportunities import opportunity, reference_for_profit
from worker import client
from worker.app import publisher
from worker.db import alert_finds, session_scope
from worker.notify import alerts
from worker.notify.alerts import AlertDesk
from worker.notify.telegram import TelegramClient
from worker.schedules import alerting, firing
from worker.testing.telegram_replies import success
from worker.testing.telegram_server import FakeTelegram, ScriptedReply

# A watch's pass started as beat's watch clock starts it: the one start of every way in.
START_PASS = publisher.start

CHAT = 900_001
LINKS = "https://dmarket.com/ingame-items/item-list/csgo-skins?userOfferId="
# Above Telegram's one a second, so jitter in sending cannot bring arrivals under it.
CHAT_INTERVAL_SECONDS = 1.2
BOT_API_TIMEOUT_SECONDS = 5.0
MESSAGE_MAX_UNITS = 4096
_item_numbers = itertools.count()


def _desk(telegram_client: TelegramClient, redis_url: str, **rates: float) -> AlertDesk:
    settings: dict[str, float] = {
        "chat_interval_seconds": CHAT_INTERVAL_SECONDS,
        "messages_per_second": 30,
        **rates,
    }
    return AlertDesk(
        redis.Redis.from_url(redis_url),
        telegram_client,
        chat_interval_seconds=settings["chat_interval_seconds"],
        messages_per_second=int(settings["messages_per_second"]),
        dedup_seconds=3600,
        pass_lock_seconds=alerts.pass_lock_seconds(BOT_API_TIMEOUT_SECONDS),
    )


@pytest.fixture
def desk(telegram: FakeTelegram, redis_url: str) -> Iterator[AlertDesk]:
    with TelegramClient(telegram.api_url, telegram.token, BOT_API_TIMEOUT_SECONDS) as bot_api:
        yield _desk(bot_api, redis_url)


def _pass(chat_id: int = CHAT) -> uuid.UUID:
    """A new watch and its first pass (stored and published; no worker runs it)."""
    watch = client.add_watch("csgo", owner_id=chat_id, chat_id=chat_id, every_seconds=600)
    firing.tick(session_scope, START_PASS, 60.0)
    listed = client.list_watches(chat_id)
    [latest] = [one.last_scan_id for one in listed if one.watch_id == watch.watch_id]
    assert latest is not None
    return latest


def _finds(
    session: Session, scan_id: uuid.UUID, page_seq: int, profits: list[int], title: str = ""
) -> list[ScanOpportunity]:
    # The profit shown is derived from the prices and the scan's fee (the default 7 %).
    return [
        opportunity(
            session,
            scan_id,
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"offer-{next(_item_numbers)}")),
            title=f"AK-47 | Redline {profit}{title}",
            price_cents=1000,
            reference_price_cents=reference_for_profit(1000, profit),
            page_seq=page_seq,
        )
        for profit in profits
    ]


def _commit_page(
    session: Session, scan_id: uuid.UUID, page_seq: int, profits: list[int], title: str = ""
) -> list[str]:
    """Commit a page of finds; their offer ids."""
    rows = _finds(session, scan_id, page_seq, profits, title)
    session.add_all(rows)
    session.commit()
    return [row.item_id for row in rows]


def _tick(desk: AlertDesk) -> int:
    return alerting.tick(session_scope, desk, LINKS)


def _alerts(telegram: FakeTelegram) -> list[str]:
    return [call.text for call in telegram.calls_of("sendMessage") if call.status == 200]


def _tick_until(desk: AlertDesk, telegram: FakeTelegram, delivered: int) -> None:
    """Tick as beat would until Telegram took `delivered` alerts."""
    deadline = time.monotonic() + 60
    while len(_alerts(telegram)) < delivered:
        assert time.monotonic() < deadline, _alerts(telegram)
        _tick(desk)
        time.sleep(0.1)


def _wait_for_the_chats_slot() -> None:
    time.sleep(CHAT_INTERVAL_SECONDS + 0.05)


def test_a_committed_page_is_alerted_once_with_every_find_linked(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    # Given a committed page with five finds
    offers = _commit_page(session, scan_id, 0, [150, 900, 300, 700, 50])
    # When the follower ticks twice
    assert _tick(desk) == 1
    assert _tick(desk) == 0
    # Then one alert lists all five, best profit first, with price, reference and profit
    [text] = _alerts(telegram)
    header, *lines = text.splitlines()
    assert header == f"🔔 5 new finds (scan {str(scan_id)[:8]}, page 1)"
    assert [re.search(r"Redline (\d+)", line).group(1) for line in lines] == [  # type: ignore[union-attr]
        "900", "700", "300", "150", "50",
    ]  # fmt: skip
    assert "$10.00 (reference $20.43), profit $9.00 (90.0%)" in lines[0]
    # And each line ends with the link to its own listing
    assert sorted(line.rsplit(" ", 1)[1] for line in lines) == sorted(LINKS + o for o in offers)
    assert lines[0].endswith(LINKS + offers[1])
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


def test_a_send_telegram_did_not_take_is_sent_again_at_a_later_tick(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500, 600])
    # Given Telegram fails the first send
    telegram.script("sendMessage", ScriptedReply.server_error())
    # When the follower ticks, Then nothing was delivered
    assert _tick(desk) == 0
    assert _alerts(telegram) == []
    # When it ticks again once the chat's slot is free, Then the same alert is delivered
    _wait_for_the_chats_slot()
    assert _tick(desk) == 1
    failed, delivered = telegram.calls_of("sendMessage")
    assert (failed.status, delivered.status) == (500, 200)
    assert delivered.text == failed.text and delivered.text.startswith("🔔 2 new finds")
    # And once delivered it is not sent again
    _wait_for_the_chats_slot()
    assert _tick(desk) == 0


def test_a_send_whose_answer_never_came_is_sent_again_a_duplicate_never_a_loss(
    env: dict[str, str], session: Session, telegram: FakeTelegram, redis_url: str
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500])
    # Given Telegram takes the first alert but answers only after the sender gave up on it
    # (what a sender killed between Telegram's answer and its record leaves behind too)
    late = json.dumps(success({"message_id": 1})).encode()
    telegram.script("sendMessage", ScriptedReply(200, late, delay_seconds=3.0))
    with TelegramClient(telegram.api_url, telegram.token, 0.5) as impatient:
        desk = _desk(impatient, redis_url)
        # When the follower ticks, Then it counts nothing delivered
        assert _tick(desk) == 0
        # When it ticks again, Then the alert is sent again and delivered
        _wait_for_the_chats_slot()
        assert _tick(desk) == 1
    # And the chat got it twice (a duplicate is only noise), never none
    first, second = _alerts(telegram)
    assert first == second and first.startswith("🔔 1 new find (")


def test_two_followers_racing_on_one_pass_send_it_once(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk, redis_url: str
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500])
    # Given one beat's follower whose send is in flight (Telegram holds it)
    held = telegram.hold("sendMessage")
    first = threading.Thread(target=_tick, args=(desk,))
    first.start()
    assert held.arrived.wait(10)
    # And the chat's send slot has lapsed meanwhile, so only the pass's lock stands between
    watcher = redis.Redis.from_url(redis_url)
    while watcher.exists(alerts.chat_slot_key(CHAT)):
        time.sleep(0.05)
    # When a second beat's follower (its own desk and connections) ticks
    with TelegramClient(telegram.api_url, telegram.token, BOT_API_TIMEOUT_SECONDS) as bot_api:
        assert alerting.tick(session_scope, _desk(bot_api, redis_url), LINKS) == 0
    # Then it sent nothing; and once the first send completes, the page was alerted once
    assert len(telegram.calls_of("sendMessage")) == 0
    held.release()
    first.join()
    assert len(_alerts(telegram)) == 1
    _wait_for_the_chats_slot()
    assert _tick(desk) == 0


def test_a_pass_locked_by_a_dead_beat_is_alerted_once_its_lock_runs_out(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk, redis_url: str
) -> None:
    scan_id = _pass()
    _commit_page(session, scan_id, 0, [500])
    # Given the pass's send lock left by a beat that died holding it
    redis.Redis.from_url(redis_url).set(alerts.pass_lock_key(scan_id), "dead", px=1000)
    # When the follower ticks, Then it waits for the lock
    assert _tick(desk) == 0
    # And once the lock ran out, the page is alerted
    _tick_until(desk, telegram, 1)
    assert _alerts(telegram)[0].startswith("🔔 1 new find (")


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


def test_a_page_the_chat_had_already_moves_the_cursor_without_a_message(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    # Given listing X alerted at $10.00 by one watch of the chat
    session.add(_listing(session, _pass(), "X", 1000))
    session.commit()
    assert _tick(desk) == 1
    # When another watch's page holds only X at that price
    second = _pass()
    session.add(_listing(session, second, "X", 1000))
    session.commit()
    # Then a tick sends nothing and the pass is done with the page
    assert _tick(desk) == 0
    assert len(telegram.calls_of("sendMessage")) == 1
    with session_scope() as reading:
        assert alert_finds.pending_passes(reading, 3600) == []


def test_a_long_page_is_split_under_telegrams_limit_and_a_failed_part_is_sent_again_alone(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    # Given a committed page of 60 finds with long titles, far more than one message holds
    offers = _commit_page(session, scan_id, 0, list(range(100, 160)), title=" ✨" * 40)
    # When the first part is delivered and Telegram fails the next send
    assert _tick(desk) == 1
    telegram.script("sendMessage", ScriptedReply.server_error())
    # And the follower ticks on until every find was delivered
    deadline = time.monotonic() + 60
    while sum(text.count(LINKS) for text in _alerts(telegram)) < len(offers):
        assert time.monotonic() < deadline, _alerts(telegram)
        _tick(desk)
        time.sleep(0.1)
    # Then every message is within Telegram's limit (counted as Telegram does, in UTF-16)
    texts = _alerts(telegram)
    assert len(texts) > 2
    assert all(len(text.encode("utf-16-le")) // 2 <= MESSAGE_MAX_UNITS for text in texts)
    # And every find was delivered exactly once, its whole line with its own link
    lines = [line for text in texts for line in text.splitlines()[1:]]
    assert sorted(line.rsplit(" ", 1)[1] for line in lines) == sorted(LINKS + o for o in offers)
    # And the part that failed went again alone: the first part was not repeated
    failed = [call for call in telegram.calls_of("sendMessage") if call.status == 500]
    assert len(failed) == 1 and failed[0].text == texts[1]
    assert all(
        header.endswith(", more follow") for header in (t.splitlines()[0] for t in texts[:-1])
    )


def test_a_fresh_watchs_pass_is_followed_past_a_day_and_another_pass_is_not(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    # Given two passes that started two days ago, one of them a fresh watch's
    fresh, other = _pass(CHAT + 20), _pass(CHAT + 21)
    session.execute(
        update(WatchPass)
        .where(WatchPass.scan_id.in_([fresh, other]))
        .values(created_at=func.now() - timedelta(days=2))
    )
    row = session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == fresh)).one()
    row.params = {**(row.params or {}), "fresh": True}
    session.commit()
    # When each commits a page of finds and the follower ticks
    _commit_page(session, fresh, 0, [500])
    _commit_page(session, other, 0, [500])
    assert _tick(desk) == 1
    # Then only the fresh watch's chat is alerted
    [call] = telegram.calls_of("sendMessage")
    assert call.body["chat_id"] == CHAT + 20


def test_a_burst_of_pages_queues_at_one_alert_a_second_per_chat(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    scan_id = _pass()
    # Given three pages committed at once
    for page_seq in range(3):
        _commit_page(session, scan_id, page_seq, [100 + page_seq])
    # When the follower ticks until everything is sent
    _tick_until(desk, telegram, 3)
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
    # Given Telegram answers the first send with 429, retry after 2 s
    telegram.script("sendMessage", ScriptedReply.rate_limited(2))
    # When the follower ticks, Then nothing is delivered yet
    assert _tick(desk) == 0
    # When it ticks on, Then the alert is sent again only after the wait, and delivered once
    _tick_until(desk, telegram, 1)
    calls = telegram.calls_of("sendMessage")
    assert [call.status for call in calls] == [429, 200]
    assert calls[1].received_at - calls[0].received_at >= 2.0
    _wait_for_the_chats_slot()
    assert _tick(desk) == 0


def test_the_cursor_moves_only_from_where_it_was_read(
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
        # When both record the page as alerted, Then only the first moves the cursor
        assert alert_finds.advance(first, scan_id, seen_first.alerted_through_id, through)
        first.commit()
        assert not alert_finds.advance(second, scan_id, seen_second.alerted_through_id, through)
        second.commit()
    with session_scope() as reading:
        assert alert_finds.cursor_of(reading, scan_id) == through


def test_the_fleets_rate_holds_alerts_back_and_they_queue_not_drop(
    env: dict[str, str], session: Session, telegram: FakeTelegram, redis_url: str
) -> None:
    # Given three chats with a page each, and a fleet allowed one alert a second
    for chat in (CHAT + 10, CHAT + 11, CHAT + 12):
        _commit_page(session, _pass(chat), 0, [500])
    with TelegramClient(telegram.api_url, telegram.token, BOT_API_TIMEOUT_SECONDS) as bot_api:
        slow = _desk(bot_api, redis_url, chat_interval_seconds=1.0, messages_per_second=1)
        # When the follower ticks early in a second, Then one alert goes
        time.sleep(1 - time.time() % 1)
        assert alerting.tick(session_scope, slow, LINKS) == 1
        # And the others follow at later ticks, none dropped
        _tick_until(slow, telegram, 3)
    chats = sorted(call.body["chat_id"] for call in telegram.calls_of("sendMessage"))
    assert chats == [CHAT + 10, CHAT + 11, CHAT + 12]
