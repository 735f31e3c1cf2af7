"""Strangers against `marketscan bot`: whatever Telegram answers, they get one line at most.

A stranger controls how Telegram answers the bot's refusal (they block the bot, delete
their message, write in a group where the bot may not post), and can send as much as they
like. The bot, against the loopback Bot API, must store and enqueue nothing for them, and
keep answering its allowed users at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import ScanWatch
from tests.fakes.telegram_server import FakeTelegram, ScriptedReply
from tests.support.bot import ALLOWED, STRANGER, ask, scan_count, wait_until
from tests.support.processes import CeleryProcess
from worker import redis_keys
from worker.db import driver_url
from worker.metrics import events as metric_events

GROUP = -1001234567
# The bot's Bot API timeout in these tests, and a delay past it.
TIMEOUT_SECONDS = "2"
SLOWER_THAN_THE_TIMEOUT = 4.0


def watch_count(database_url: str) -> int:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(ScanWatch)) or 0
    engine.dispose()
    return count


def stored_keys(redis_url: str) -> set[bytes]:
    """What the bot left in the broker's Redis besides the fleet's metric notes."""
    broker = redis.Redis.from_url(redis_url)
    try:
        return set(broker.keys("*")) - {redis_keys.METRIC_NOTES_KEY.encode()}
    finally:
        broker.close()


def test_a_strangers_commands_get_one_refusal_a_window_and_their_chatter_none(
    database_url: str,
    redis_url: str,
    telegram: FakeTelegram,
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given the bot, allow-listing someone else
    process = start_bot()
    # When a stranger sends /scan, /help and a plain message, and then an allowed user asks
    telegram.user_says(STRANGER, "/scan csgo standard 1-50")
    telegram.user_says(STRANGER, "/help")
    telegram.user_says(STRANGER, "hello?")
    ask(telegram, ALLOWED, "/help")
    # Then the stranger got one refusal line, naming the allow-list, and nothing more
    wait_until(lambda: telegram.sent_to(STRANGER), "the refusal")
    time.sleep(1.0)  # a second refusal, were one coming, would be on its way by now
    ((_, text),) = telegram.sent_to(STRANGER)
    assert "not on its allow-list" in text and len(text.splitlines()) == 1
    # And each attempt is logged by id, without what the stranger wrote
    log = process.log()
    for update_id in (1, 2, 3):
        assert f"refused update {update_id} from Telegram user {STRANGER}" in log
    assert "1-50" not in log and "/scan" not in log and "hello" not in log
    # And nothing was stored or enqueued; the notes count three refusals and name nobody
    broker = redis.Redis.from_url(redis_url)
    wait_until(lambda: broker.exists(redis_keys.METRIC_NOTES_KEY), "the bot's notes flushed")
    assert scan_count(database_url) == 0 and stored_keys(redis_url) == set()
    refused = ("bot_updates_total", (("outcome", "refused"),))
    wait_until(
        lambda: (
            metric_events.snapshot(metric_events.RedisEventStore(broker).fields()).counters.get(
                refused
            )
            == 3
        ),
        "three refusals counted",
    )
    notes = metric_events.snapshot(metric_events.RedisEventStore(broker).fields())
    assert notes.counters[refused] == 3


@pytest.mark.parametrize(
    ("chat", "answer"),
    [
        (STRANGER, ScriptedReply.failure(403, "Forbidden: bot was blocked by the user")),
        (GROUP, ScriptedReply.failure(400, "Bad Request: message to be replied not found")),
        (GROUP, ScriptedReply.failure(403, "Forbidden: bot is not a member of the group chat")),
        (STRANGER, ScriptedReply(200, b'{"ok": true}', SLOWER_THAN_THE_TIMEOUT)),
    ],
    ids=["blocked", "reply-not-found", "not-a-member", "timeout"],
)
def test_a_refusal_that_fails_to_send_lets_nothing_of_the_strangers_through(
    database_url: str,
    redis_url: str,
    telegram: FakeTelegram,
    start_bot: Callable[..., CeleryProcess],
    chat: int,
    answer: ScriptedReply,
) -> None:
    # Given a bot that refuses every command of a stranger, and a Telegram that answers
    # every refusal into the stranger's chat with an error, or too late
    start_bot(
        MARKETSCAN_TELEGRAM_REFUSAL_WINDOW_SECONDS="0",
        MARKETSCAN_HTTP_TIMEOUT_SECONDS=TIMEOUT_SECONDS,
    )
    telegram.answer_chat_with(chat, answer)
    # When the stranger sends /scan and /watch there, and an allowed user then asks
    telegram.user_says(STRANGER, "/scan csgo standard 1-50", chat_id=chat)
    telegram.user_says(STRANGER, "/watch csgo standard 15m", chat_id=chat)
    assert ask(telegram, ALLOWED, "/status").startswith("You have no scans")
    # Then both refusals were tried, and the stranger's commands stored, set and enqueued
    # nothing, not even after the refusals failed
    wait_until(lambda: len(telegram.calls_of("sendMessage")) >= 3, "both refusals tried")
    time.sleep(SLOWER_THAN_THE_TIMEOUT + 1.0)
    assert scan_count(database_url) == 0
    assert watch_count(database_url) == 0
    assert stored_keys(redis_url) == set()
    # And the stranger was sent nothing but the refusals
    to_stranger = [c for c in telegram.calls_of("sendMessage") if c.body.get("chat_id") == chat]
    assert len(to_stranger) == 2
    assert all("not on its allow-list" in call.text for call in to_stranger)


def test_five_hundred_stranger_updates_do_not_delay_an_allowed_users_answer(
    database_url: str,
    telegram: FakeTelegram,
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a bot, and fifty strangers whose chats (a group among them) Telegram answers slowly
    start_bot()
    strangers = [STRANGER + n for n in range(50)]
    for chat in [GROUP, *strangers]:
        telegram.answer_chat_with(chat, ScriptedReply(200, b'{"ok": true}', 3.0))
    # When they send 500 updates, half in the group and most of them not commands
    for n in range(500):
        user = strangers[n % len(strangers)]
        chat = GROUP if n % 2 else user
        telegram.user_says(user, "/scan csgo" if n % 5 == 0 else f"spam {n}", chat_id=chat)
    # Then an allowed user's /status, sent after them all, is answered within seconds
    asked_at = time.monotonic()
    assert ask(telegram, ALLOWED, "/status").startswith("You have no scans")
    waited = time.monotonic() - asked_at
    assert waited < 30.0, f"the allowed user waited {waited:.1f} s behind the strangers"
    # And no stranger got more than one refusal, and nothing was stored
    refusals = [c for c in telegram.calls_of("sendMessage") if c.body.get("chat_id") != ALLOWED]
    assert len(refusals) <= len(strangers)
    assert scan_count(database_url) == 0
