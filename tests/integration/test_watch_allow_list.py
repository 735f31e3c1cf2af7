"""The bot's allow-list reaches beat: a removed owner's watches start nothing and alert nothing.

And a user's scans and watches are found by their short ids however many they have: a
ten-second watch makes hundreds of passes an hour, each a scan of its owner's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.support.opportunities import opportunity
from worker import client
from worker.app import publisher
from worker.db import session_scope
from worker.domain.watch import OWNER_NOT_ALLOWED
from worker.notify import alerts
from worker.notify.alerts import AlertDesk
from worker.notify.telegram import TelegramClient
from worker.schedules import alerting, firing
from worker.settings import get_settings
from worker.testing.telegram_server import FakeTelegram, ScriptedReply

# A watch's pass started as beat's watch clock starts it: the one start of every way in.
START_PASS = publisher.start

KEPT = 424242
REMOVED = 515151
LINKS = "https://dmarket.com/ingame-items/item-list/csgo-skins?userOfferId="


@pytest.fixture
def desk(telegram: FakeTelegram, redis_url: str) -> Iterator[AlertDesk]:
    connection = redis.Redis.from_url(redis_url)
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as bot_api:
        yield AlertDesk(
            connection, bot_api, chat_interval_seconds=1.0, messages_per_second=30,
            dedup_seconds=3600, pass_lock_seconds=alerts.pass_lock_seconds(5.0),
        )  # fmt: skip
    connection.close()


def allow_only(monkeypatch: pytest.MonkeyPatch, *users: int) -> None:
    monkeypatch.setenv("MARKETSCAN_TELEGRAM_ALLOWED_USERS", ",".join(map(str, users)))
    get_settings.cache_clear()


def test_a_removed_owners_watch_starts_no_pass_and_lists_paused_saying_why(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a watch of an owner still allowed and one of an owner taken off the allow-list
    kept = client.add_watch("csgo", owner_id=KEPT, chat_id=KEPT, every_seconds=600)
    removed = client.add_watch("csgo", owner_id=REMOVED, chat_id=REMOVED, every_seconds=600)
    allow_only(monkeypatch, KEPT)
    # When the watch clock ticks with that allow-list
    started = firing.tick(session_scope, START_PASS, 60.0, 7, get_settings().telegram_allowed_users)
    # Then only the allowed owner's watch started a pass
    assert started == 1
    [kept_now] = client.list_watches(KEPT)
    [removed_now] = client.list_watches(REMOVED)
    assert kept_now.last_scan_id is not None and not kept_now.paused
    assert removed_now.last_scan_id is None
    # And the removed owner's watch lists as paused, saying why
    assert removed_now.paused and removed_now.paused_reason == OWNER_NOT_ALLOWED
    assert removed_now.to_json()["paused_reason"] == OWNER_NOT_ALLOWED
    # When the owner is allowed again, the watch starts its pass at the next tick
    allow_only(monkeypatch, KEPT, REMOVED)
    assert firing.tick(session_scope, START_PASS, 60.0, 7, frozenset({KEPT, REMOVED})) == 1
    [back] = client.list_watches(REMOVED)
    assert back.last_scan_id is not None and not back.paused
    assert (kept.watch_id, removed.watch_id) == (kept_now.watch_id, removed_now.watch_id)


def test_a_removed_owners_finds_are_not_alerted_and_wait_for_their_return(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    # Given a pass of a watch whose owner is then taken off the allow-list, with a find
    client.add_watch("csgo", owner_id=REMOVED, chat_id=REMOVED, every_seconds=600)
    firing.tick(session_scope, START_PASS, 60.0)
    [watch] = client.list_watches(REMOVED)
    assert watch.last_scan_id is not None
    session.add(opportunity(session, watch.last_scan_id, "item-1", page_seq=0))
    session.commit()
    # When the alert follower ticks with an allow-list that lacks the owner
    sent = alerting.tick(session_scope, desk, LINKS, frozenset({KEPT}))
    # Then nothing is sent to their chat
    assert sent == 0 and telegram.calls_of("sendMessage") == []
    # And once they are allowed again, the find is alerted
    assert alerting.tick(session_scope, desk, LINKS, frozenset({KEPT, REMOVED})) == 1
    assert telegram.calls_of("sendMessage")[0].body["chat_id"] == REMOVED


def test_a_users_oldest_scan_and_watch_are_found_by_short_id_among_hundreds(
    env: dict[str, str], session: Session
) -> None:
    # Given a user's scan, then 250 newer ones
    oldest = client.start("csgo", user_id=KEPT)
    for _ in range(250):
        client.start("csgo", user_id=KEPT)
    # When it is looked for by the eight hex digits messages show
    found = client.scans(user_id=KEPT, id_prefix=oldest.hex[:8])
    # Then it is found, though the newest 200 do not hold it
    assert [c.scan_id for c in found] == [oldest]
    assert oldest not in {c.scan_id for c in client.scans(user_id=KEPT)}
    # And another user's prefix lookup does not see it
    assert client.scans(user_id=REMOVED, id_prefix=oldest.hex[:8]) == []
    # And a watch is found by its short id the same way
    watch = client.add_watch("csgo", owner_id=KEPT, chat_id=KEPT, every_seconds=600)
    assert [w.watch_id for w in client.list_watches(KEPT, watch.watch_id.hex[:8])] == [
        watch.watch_id
    ]


@pytest.mark.parametrize("prefix", ["", "xyz12345", "0" * 33, "12-34"])
def test_a_short_id_that_is_not_hex_digits_is_refused_naming_the_field(
    env: dict[str, str], prefix: str
) -> None:
    from worker.errors import InvalidInput

    with pytest.raises(InvalidInput, match="id_prefix must be"):
        client.scans(user_id=KEPT, id_prefix=prefix)


def test_running_scans_count_the_users_live_scans_but_not_their_watches_passes(
    env: dict[str, str], session: Session
) -> None:
    # Given two running scans of a user, one ended, and a pass of their watch
    running = [client.start("csgo", user_id=KEPT) for _ in range(2)]
    ended = client.start("csgo", user_id=KEPT)
    session.execute(
        update(ScanCheckpoint).where(ScanCheckpoint.scan_id == ended).values(status="completed")
    )
    session.commit()
    client.add_watch("csgo", owner_id=KEPT, chat_id=KEPT, every_seconds=600)
    assert firing.tick(session_scope, START_PASS, 60.0) == 1
    # Then the user runs two scans, as the chat limit counts them
    assert client.running_scans(KEPT) == len(running) == 2
    assert client.running_scans(REMOVED) == 0
    assert isinstance(running[0], uuid.UUID)


def _pass_with_a_find(session: Session, chat_id: int) -> uuid.UUID:
    client.add_watch("csgo", owner_id=KEPT, chat_id=chat_id, every_seconds=600)
    firing.tick(session_scope, START_PASS, 60.0)
    [watch] = [w for w in client.list_watches(KEPT) if w.chat_id == chat_id]
    assert watch.last_scan_id is not None
    session.add(opportunity(session, watch.last_scan_id, "item-1", page_seq=0))
    session.commit()
    return watch.watch_id


@pytest.mark.parametrize(
    "answer",
    [
        ScriptedReply.failure(403, "Forbidden: bot was blocked by the user"),
        ScriptedReply.failure(403, "Forbidden: bot was kicked from the supergroup chat"),
        ScriptedReply.failure(400, "Bad Request: chat not found"),
    ],
    ids=["blocked", "kicked", "chat-not-found"],
)
def test_a_chat_that_refuses_alerts_pauses_its_watches_saying_why(
    env: dict[str, str],
    session: Session,
    telegram: FakeTelegram,
    desk: AlertDesk,
    answer: ScriptedReply,
) -> None:
    # Given a watch alerting a group, with a find to alert, and a Telegram that refuses it
    group = -1001
    watch_id = _pass_with_a_find(session, group)
    telegram.answer_chat_with(group, answer)
    # When the alert follower ticks
    assert alerting.tick(session_scope, desk, LINKS) == 0
    # Then the watch is paused, saying why, and the follower tries that chat no more
    [watch] = client.list_watches(KEPT)
    assert watch.watch_id == watch_id and watch.paused
    assert watch.paused_reason is not None and "the chat refused alerts" in watch.paused_reason
    tried = len(telegram.calls_of("sendMessage"))
    time.sleep(1.1)  # the chat's next send slot
    assert alerting.tick(session_scope, desk, LINKS) == 0
    assert len(telegram.calls_of("sendMessage")) == tried == 1
    # And the owner's resume clears the reason
    resumed = client.resume_watch(watch_id, KEPT)
    assert not resumed.paused and resumed.paused_reason is None
    # And the find that was refused waited for it: once the chat takes messages, it goes
    telegram.answer_chat_with(group, None)
    assert alerting.tick(session_scope, desk, LINKS) == 1
    assert [c.body["chat_id"] for c in telegram.calls_of("sendMessage") if c.status == 200] == [
        group
    ]


def test_a_group_that_became_a_supergroup_is_followed_by_its_watches_and_alert(
    env: dict[str, str], session: Session, telegram: FakeTelegram, desk: AlertDesk
) -> None:
    # Given a watch alerting a group that Telegram says moved to a supergroup
    group, supergroup = -2002, -1002002
    _pass_with_a_find(session, group)
    telegram.answer_chat_with(
        group,
        ScriptedReply.failure(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": supergroup},
        ),
    )
    # When the alert follower ticks
    assert alerting.tick(session_scope, desk, LINKS) == 1
    # Then the alert went to the supergroup, and the watch alerts there from now on
    [delivered] = [c for c in telegram.calls_of("sendMessage") if c.status == 200]
    assert delivered.body["chat_id"] == supergroup
    [watch] = client.list_watches(KEPT)
    assert watch.chat_id == supergroup and not watch.paused
