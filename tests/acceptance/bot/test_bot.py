"""`marketscan bot` on python-telegram-bot and real workers, against the loopback Bot API.

The tests play the users through the loopback's updates; the bot, the worker and the
notifier are the real processes, so every message the user sees went over HTTP.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis

from tests.fakes.telegram_server import FakeTelegram, ScriptedReply
from tests.support.bot import ALLOWED, WAIT_SECONDS, ask, scan_count, wait_until
from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    stored_opportunities,
    wait_for_progress,
    wait_for_status,
)
from worker.bot.arguments import chat_scan_id
from worker.domain.scan_params import ScanParams
from worker.metrics import events as metric_events


def test_an_allowed_users_scan_completes_in_the_message_it_replied_with_and_its_buttons_steer_it(
    celery_env: dict[str, str],
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a worker and the bot, and an allow-listed user
    start_worker()
    start_bot()
    # When the user sends /scan
    update_id = telegram.user_says(ALLOWED, "/scan csgo standard")
    wait_until(lambda: telegram.sent_to(ALLOWED), "the bot's reply")
    message_id, text = telegram.sent_to(ALLOWED)[0]
    scan_id = chat_scan_id(ALLOWED, telegram.updates.message_id_of(update_id))
    # Then the reply is the scan's progress message, under Pause / Resume / Cancel
    assert scan_id.hex[:8] in text
    assert telegram.buttons_of(ALLOWED, message_id) == [
        f"{action}:{scan_id}" for action in ("pause", "resume", "cancel")
    ]
    # When the user presses Pause midway
    wait_for_progress(database_url, scan_id, 200)
    telegram.user_presses(ALLOWED, message_id, f"pause:{scan_id}")
    paused = wait_for_status(database_url, scan_id, ("paused",))
    # Then the scan pauses, and its message says so and keeps its buttons
    assert paused.processed_items < 2000
    wait_until(lambda: "paused" in (telegram.text_of(ALLOWED, message_id) or ""), "paused text")
    assert len(telegram.buttons_of(ALLOWED, message_id)) == 3
    wait_until(lambda: telegram.calls_of("answerCallbackQuery"), "the press answered")
    # When the user presses Resume
    telegram.user_presses(ALLOWED, message_id, f"resume:{scan_id}")
    done = wait_for_status(database_url, scan_id)
    # Then the scan completes with every item exactly once, as an uninterrupted walk finds
    assert done.processed_items == done.total_items == 2000
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(
        ScanParams.from_json(done.params)
    )
    assert done.user_id == ALLOWED
    # And the same message ends as the one authoritative summary, its buttons gone
    final = f"Scan {scan_id.hex[:8]} completed: 2000 items processed"
    wait_until(lambda: final in (telegram.text_of(ALLOWED, message_id) or ""), "the summary")
    assert telegram.buttons_of(ALLOWED, message_id) == []
    # And no worker sent a message of its own: the user has the bot's one message
    assert [mid for mid, _ in telegram.sent_to(ALLOWED)] == [message_id]


def test_the_cancel_button_cancels_the_scan_and_takes_the_buttons_away(
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a running scan started from the chat
    start_worker()
    start_bot()
    update_id = telegram.user_says(ALLOWED, "/scan csgo")
    wait_until(lambda: telegram.sent_to(ALLOWED), "the bot's reply")
    message_id, _ = telegram.sent_to(ALLOWED)[0]
    scan_id = chat_scan_id(ALLOWED, telegram.updates.message_id_of(update_id))
    wait_for_progress(database_url, scan_id, 100)
    # When the user presses Cancel
    telegram.user_presses(ALLOWED, message_id, f"cancel:{scan_id}")
    # Then the scan is cancelled, and its message says so with no buttons left
    wait_for_status(database_url, scan_id, ("cancelled",))
    wait_until(
        lambda: "cancelled" in (telegram.text_of(ALLOWED, message_id) or ""), "cancelled text"
    )
    assert telegram.buttons_of(ALLOWED, message_id) == []


def test_an_empty_allow_list_refuses_everyone_and_says_how_to_set_it(
    database_url: str, telegram: FakeTelegram, start_bot: Callable[..., CeleryProcess]
) -> None:
    # Given a bot whose allow-list is empty
    start_bot(MARKETSCAN_TELEGRAM_ALLOWED_USERS="")
    # When the would-be owner sends /scan
    telegram.user_says(ALLOWED, "/scan csgo")
    wait_until(lambda: telegram.sent_to(ALLOWED), "the refusal")
    # Then they are refused, told which variable to set and their own id; nothing is stored
    ((_, text),) = telegram.sent_to(ALLOWED)
    assert "MARKETSCAN_TELEGRAM_ALLOWED_USERS" in text and str(ALLOWED) in text
    assert scan_count(database_url) == 0


def test_a_scan_update_delivered_three_times_makes_one_scan_and_one_message(
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a worker and the bot, and a /scan the bot has handled
    start_worker()
    start_bot()
    update_id = telegram.user_says(ALLOWED, "/scan csgo")
    wait_until(lambda: telegram.sent_to(ALLOWED), "the bot's reply")
    # When Telegram delivers the same update twice more
    telegram.updates.redeliver(update_id)
    telegram.updates.redeliver(update_id)
    # (the bot handles updates in order: once /help is answered, the copies were handled)
    telegram.user_says(ALLOWED, "/help")
    wait_until(lambda: len(telegram.sent_to(ALLOWED)) >= 2, "the /help reply")
    # Then there is one scan, completed exactly, and one progress message
    assert scan_count(database_url) == 1
    (_, help_text) = telegram.sent_to(ALLOWED)[1]
    assert "/scan GAME" in help_text
    scan_id = chat_scan_id(ALLOWED, telegram.updates.message_id_of(update_id))
    done = wait_for_status(database_url, scan_id)
    assert done.processed_items == 2000
    assert len(telegram.sent_to(ALLOWED)) == 2


def test_a_killed_bot_is_handed_its_unconfirmed_scan_again_and_starts_it_once(
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a bot that has started a scan and is sending its reply
    start_worker()
    first = start_bot()
    reply = telegram.hold("sendMessage")
    update_id = telegram.user_says(ALLOWED, "/scan csgo")
    assert reply.arrived.wait(WAIT_SECONDS)
    assert scan_count(database_url) == 1
    # When the bot is SIGKILLed before it confirmed the update, and started again
    first.kill_group()
    reply.release()
    assert update_id in telegram.updates.unconfirmed()
    start_bot()
    # Then the new bot is handed the update again and answers it in a message of its own
    wait_until(lambda: len(telegram.sent_to(ALLOWED)) == 2, "the second bot's reply")
    wait_until(lambda: update_id not in telegram.updates.unconfirmed(), "the confirmation")
    # And there is still one scan, which completes exactly, summed up in that message
    assert scan_count(database_url) == 1
    scan_id = chat_scan_id(ALLOWED, telegram.updates.message_id_of(update_id))
    done = wait_for_status(database_url, scan_id)
    assert done.processed_items == done.total_items == 2000
    message_id = telegram.sent_to(ALLOWED)[1][0]
    wait_until(
        lambda: "completed: 2000" in (telegram.text_of(ALLOWED, message_id) or ""), "summary"
    )


def test_sigterm_stops_the_bot_after_confirming_what_it_handled(
    database_url: str, telegram: FakeTelegram, start_bot: Callable[..., CeleryProcess]
) -> None:
    # Given a bot that answered a command
    process = start_bot()
    update_id = telegram.user_says(ALLOWED, "/help")
    wait_until(lambda: telegram.sent_to(ALLOWED), "the /help reply")
    # When it is sent SIGTERM in the middle of a long poll
    process.signal(signal.SIGTERM)
    # Then it exits 0 and has confirmed the update, so no later bot gets it again
    assert process.wait(timeout=30) == 0
    assert telegram.updates.confirmed_offset == update_id + 1
    assert telegram.updates.unconfirmed() == []


OTHER = 515151


def test_commands_read_and_steer_only_the_senders_scans_and_name_bad_arguments(
    database_url: str,
    redis_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given two allowed users, and a scan of the first one's that completed
    start_worker()
    start_bot(
        MARKETSCAN_TELEGRAM_ALLOWED_USERS=f"{ALLOWED},{OTHER}",
        MARKETSCAN_BOT_MARKET_OPTIONS="items=600,seed=5",
    )
    update_id = telegram.user_says(ALLOWED, "/scan csgo")
    scan_id = chat_scan_id(ALLOWED, telegram.updates.message_id_of(update_id))
    wait_until(lambda: telegram.sent_to(ALLOWED), "the bot's reply")
    done = wait_for_status(database_url, scan_id)
    short = scan_id.hex[:8]
    # When the owner asks for their scans and the scan's best finds
    listed = ask(telegram, ALLOWED, "/status")
    one = ask(telegram, ALLOWED, f"/status {short}")
    best = ask(telegram, ALLOWED, f"/top {short} 3")
    # Then they see it completed with its items, and its three best finds
    assert f"{short} completed: 600/600 (100%) items" in listed
    assert one == f"✅ {short} completed: 600/600 (100%) items"
    expected = expected_opportunities(ScanParams.from_json(done.params))
    assert best.splitlines()[0] == f"Scan {short}: best {min(3, len(expected))} by profit"
    # When the other user names that scan
    seen = ask(telegram, OTHER, f"/status {short}")
    cancelled = ask(telegram, OTHER, f"/cancel {scan_id}")
    # Then it is as unknown to them as a scan that does not exist, and stays as it was
    assert seen == f"⚠️ you have no scan starting with {short}"
    assert cancelled == f"⚠️ you have no scan {scan_id}"
    assert wait_for_status(database_url, scan_id).status == "completed"
    assert ask(telegram, OTHER, "/status").startswith("You have no scans yet")
    # When arguments are bad, each reply names the argument and what it may be
    assert "game must be one of" in ask(telegram, ALLOWED, "/scan chess")
    assert "GAME is missing" in ask(telegram, ALLOWED, "/scan")
    assert "N must be a whole number from 1 to 20" in ask(telegram, ALLOWED, f"/top {short} 99")
    assert "SCAN is missing" in ask(telegram, ALLOWED, "/pause")
    assert "level must be one of" in ask(telegram, ALLOWED, "/scan csgo nosuchlevel")
    # And none of them stored anything, in the database or in the notifier's state
    assert scan_count(database_url) == 1
    telegram_keys = redis.Redis.from_url(redis_url).keys("marketscan:telegram:*")
    assert telegram_keys and all(str(scan_id).encode() in key for key in telegram_keys)
    # And the seven refused commands (two unknown scans, five bad arguments) are counted as
    # bad input, none as a failure
    store = metric_events.RedisEventStore(redis.Redis.from_url(redis_url))

    def bot_errors() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        counters = metric_events.snapshot(store.fields()).counters
        return {key: value for key, value in counters.items() if key[0] == "bot_errors_total"}

    wait_until(lambda: bot_errors(), "the bot's notes flushed")
    wait_until(lambda: sum(bot_errors().values()) >= 7, "seven errors counted")
    assert bot_errors() == {("bot_errors_total", (("kind", "bad_input"),)): 7}


def test_watch_commands_add_list_and_remove_the_senders_watches(
    database_url: str, telegram: FakeTelegram, start_bot: Callable[..., CeleryProcess]
) -> None:
    # Given the bot and two allowed users
    start_bot(MARKETSCAN_TELEGRAM_ALLOWED_USERS=f"{ALLOWED},{OTHER}")
    # When the first adds a watch every 15 minutes
    added = ask(telegram, ALLOWED, "/watch csgo standard 15m 1-50")
    # Then it is stored for them, and listed to them only
    assert added.startswith("👁 Watch ") and "every 15m" in added and "$1.00-50.00" in added
    short = added.split()[2]
    assert short in ask(telegram, ALLOWED, "/watches")
    assert ask(telegram, OTHER, "/watches").startswith("You have no watches")
    # And a bad interval is refused naming EVERY and its forms
    assert "EVERY must be" in ask(telegram, ALLOWED, "/watch csgo standard soon")
    # When the other user tries to remove it, nothing happens; when the owner does, it goes
    assert ask(telegram, OTHER, f"/unwatch {short}") == f"⚠️ you have no watch {short}"
    assert ask(telegram, ALLOWED, f"/unwatch {short}") == f"Watch {short} removed."
    assert ask(telegram, ALLOWED, "/watches").startswith("You have no watches")


def test_sigterm_while_a_reply_is_in_flight_lets_it_finish_then_confirms(
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a bot in the middle of answering a /scan (its reply held in flight)
    start_worker()
    process = start_bot()
    reply = telegram.hold("sendMessage")
    update_id = telegram.user_says(ALLOWED, "/scan csgo")
    assert reply.arrived.wait(WAIT_SECONDS)
    # When it is sent SIGTERM, and only then the reply goes through
    process.signal(signal.SIGTERM)
    time.sleep(0.5)
    reply.release()
    # Then it finishes the update (the message handed to the notifier), confirms it, exits 0
    assert process.wait(timeout=30) == 0
    assert telegram.updates.unconfirmed() == []
    assert telegram.updates.confirmed_offset == update_id + 1
    ((message_id, _),) = telegram.sent_to(ALLOWED)
    scan_id = chat_scan_id(ALLOWED, telegram.updates.message_id_of(update_id))
    wait_for_status(database_url, scan_id)
    wait_until(
        lambda: "completed: 2000" in (telegram.text_of(ALLOWED, message_id) or ""), "summary"
    )


def test_a_reply_telegram_rate_limits_is_sent_after_its_retry_after_not_dropped(
    telegram: FakeTelegram, start_bot: Callable[..., CeleryProcess]
) -> None:
    # Given a bot, and a Telegram that answers its next message with 429, retry after 2 s
    start_bot()
    telegram.script("sendMessage", ScriptedReply.rate_limited(2))
    # When a user asks for help
    telegram.user_says(ALLOWED, "/help")
    # Then the reply arrives, sent again once the 2 s were waited out
    wait_until(lambda: telegram.sent_to(ALLOWED), "the reply")
    refused, sent = telegram.calls_of("sendMessage")
    assert (refused.status, sent.status) == (429, 200)
    assert sent.text == refused.text and "/scan GAME" in sent.text
    assert sent.received_at - refused.received_at >= 2


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("", "marketscan bot needs MARKETSCAN_TELEGRAM_BOT_TOKEN"),
        ("999:wrong", "refused MARKETSCAN_TELEGRAM_BOT_TOKEN; check it with @BotFather"),
    ],
)
def test_marketscan_bot_without_a_good_token_stops_at_once_saying_why(
    celery_env: dict[str, str], token: str, says: str
) -> None:
    # When `marketscan bot` starts without a token, or with one the Bot API refuses
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "bot"],
        env={**celery_env, "MARKETSCAN_TELEGRAM_BOT_TOKEN": token},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # Then it exits 2 with one line naming the variable, and never shows the token
    assert done.returncode == 2, done.stderr
    assert says in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr and (not token or token not in done.stderr)


def test_a_conflicting_poller_is_waited_out_not_fatal(
    telegram: FakeTelegram, start_bot: Callable[..., CeleryProcess]
) -> None:
    # Given a bot whose next getUpdates Telegram refuses with 409 (another bot polling)
    process = start_bot()
    telegram.script(
        "getUpdates",
        ScriptedReply.failure(409, "Conflict: terminated by other getUpdates request"),
    )
    telegram.user_says(ALLOWED, "/start")  # ends the long poll in hand
    wait_until(lambda: 409 in {call.status for call in telegram.calls_of("getUpdates")}, "the 409")
    # When a user asks for help after it
    telegram.user_says(ALLOWED, "/help")
    # Then the bot polled again and answers, still running
    wait_until(lambda: len(telegram.sent_to(ALLOWED)) == 2, "the replies")
    assert process.process is not None and process.process.poll() is None
