"""The bot's progress message handed to the notifier, on the real test Redis and a loopback
Bot API: reserved, adopted, held, reopened by a resume, and never replaced by a second one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.fakes.telegram_server import FakeTelegram
from worker.domain.progress import ScanProgress
from worker.notify import bot_messages
from worker.notify.messages import ProgressMessages, completed_text, forget_scan
from worker.notify.telegram import TelegramClient

USER = 424242
GROUP = -100777
MARKUP = {"inline_keyboard": [[{"text": "⏸ Pause", "callback_data": "pause:x"}]]}


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as opened:
        yield opened


@pytest.fixture
def notifier(connection: redis.Redis, telegram: FakeTelegram) -> Iterator[ProgressMessages]:
    """What a worker's sender thread runs, without its throttle."""
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as client:
        yield ProgressMessages(connection, client, 0.0)


def _bot_sends(telegram: FakeTelegram, chat_id: int, text: str) -> int:
    """The bot's reply, sent the way the bot sends it (with its buttons)."""
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as client:
        message_id = client.send_message(chat_id, text)
        client.edit_message_text(chat_id, message_id, text + " ", json.dumps(MARKUP))
    return message_id


def test_workers_edit_the_bots_message_in_its_chat_keeping_its_buttons_until_the_summary(
    connection: redis.Redis, telegram: FakeTelegram, notifier: ProgressMessages
) -> None:
    # Given a /scan sent in a group: the bot reserved the scan, replied, and handed it over
    scan_id = uuid.uuid4()
    assert bot_messages.reserve(connection, scan_id)
    message_id = _bot_sends(telegram, GROUP, "started")
    assert (
        bot_messages.adopt(connection, scan_id, GROUP, message_id, "started ", json.dumps(MARKUP))
        is None
    )
    # When a worker reports progress for the scan of user USER
    notifier.show_progress(ScanProgress(scan_id, USER, 100, 1000))
    # Then it edits that message, in the group, buttons kept, and sends nothing of its own
    assert "100/1000" in (telegram.text_of(GROUP, message_id) or "")
    assert telegram.buttons_of(GROUP, message_id) == ["pause:x"]
    assert telegram.sent_to(USER) == [] and len(telegram.calls_of("sendMessage")) == 1
    # When the scan completes
    done = ScanProgress(scan_id, USER, 1000, 1000)
    notifier.show_summary(done, completed_text(done))
    # Then the same message is the summary, with no buttons left to press
    assert telegram.text_of(GROUP, message_id) == completed_text(done)
    assert telegram.buttons_of(GROUP, message_id) == []


def test_a_reserved_scan_gets_no_first_message_from_a_worker(
    connection: redis.Redis, telegram: FakeTelegram, notifier: ProgressMessages
) -> None:
    # Given a scan the bot reserved but has not replied for yet
    scan_id = uuid.uuid4()
    bot_messages.reserve(connection, scan_id)
    # When a worker reports progress
    notifier.show_progress(ScanProgress(scan_id, USER, 100, 1000))
    # Then nothing is sent: the bot's reply is to be the scan's one message
    assert telegram.calls_of("sendMessage") == []


def test_a_redelivered_scan_whose_message_is_out_is_not_answered_again(
    connection: redis.Redis,
) -> None:
    scan_id = uuid.uuid4()
    assert bot_messages.reserve(connection, scan_id)
    # (a first delivery died before it replied: the next one replies)
    assert bot_messages.reserve(connection, scan_id)
    assert bot_messages.adopt(connection, scan_id, USER, 7, "started", "{}") is None
    # Once the message is out, a redelivery is told there is nothing to send
    assert not bot_messages.reserve(connection, scan_id)
    assert bot_messages.message_of(connection, scan_id) == (USER, 7)


def test_a_scan_that_ended_before_the_handover_gives_its_summary_to_the_bot(
    connection: redis.Redis, telegram: FakeTelegram, notifier: ProgressMessages
) -> None:
    # Given a scan that completed (its summary sent on its own) before the bot's handover
    scan_id = uuid.uuid4()
    bot_messages.reserve(connection, scan_id)
    done = ScanProgress(scan_id, USER, 50, 50)
    notifier.show_summary(done, completed_text(done))
    # When the bot hands its reply over
    shown = bot_messages.adopt(connection, scan_id, USER, 99, "started", "{}")
    # Then it is told the summary to show, and the summary's message stays the scan's
    assert shown == completed_text(done)
    assert bot_messages.message_of(connection, scan_id) is None


def test_a_held_message_takes_no_progress_and_a_resume_reopens_the_same_message(
    connection: redis.Redis, telegram: FakeTelegram, notifier: ProgressMessages
) -> None:
    # Given the bot's message for a running scan, held for a pause
    scan_id = uuid.uuid4()
    bot_messages.reserve(connection, scan_id)
    message_id = _bot_sends(telegram, USER, "started")
    bot_messages.adopt(connection, scan_id, USER, message_id, "started ", json.dumps(MARKUP))
    bot_messages.hold(connection, scan_id)
    # When a page that was in flight reports progress
    notifier.show_progress(ScanProgress(scan_id, USER, 300, 1000))
    # Then the message keeps what the bot wrote
    assert telegram.text_of(USER, message_id) == "started "
    # When the scan is resumed (what client.resume does to the notifier's state)
    forget_scan(connection, scan_id)
    notifier.show_progress(ScanProgress(scan_id, USER, 400, 1000))
    # Then progress shows again on the same message, buttons kept
    assert "400/1000" in (telegram.text_of(USER, message_id) or "")
    assert telegram.buttons_of(USER, message_id) == ["pause:x"]
    assert len(telegram.calls_of("sendMessage")) == 1
