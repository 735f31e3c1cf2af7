"""A real worker tells a scan's user on Telegram (a fake Bot API on loopback) how it goes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest

from tests.fakes.telegram_server import FakeTelegram, RecordedCall, ScriptedReply
from tests.support.processes import CeleryProcess
from tests.support.scans import start_scan_cli, wait_for_status

CHAT_ID = 424242
MIN_INTERVAL_SECONDS = 0.5
SUMMARY_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def celery_env(celery_env: dict[str, str], telegram: FakeTelegram) -> dict[str, str]:
    """Workers (and the CLI) with the notifier on, pointed at the fake Bot API."""
    return {
        **celery_env,
        "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        "MARKETSCAN_TELEGRAM_MIN_INTERVAL_SECONDS": str(MIN_INTERVAL_SECONDS),
    }


def _wait_for_call(
    telegram: FakeTelegram, matches: Callable[[RecordedCall], bool]
) -> list[RecordedCall]:
    deadline = time.monotonic() + SUMMARY_TIMEOUT_SECONDS
    while not any(matches(call) for call in telegram.calls):
        assert time.monotonic() < deadline, f"no such call; calls: {telegram.calls}"
        time.sleep(0.05)
    return telegram.calls


def test_a_scans_user_sees_one_message_go_from_progress_to_completion(
    celery_env: dict[str, str],
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a worker with two pool processes and the notifier on
    start_worker()
    # When user 424242 starts a 2,000-item scan (20 pages, 1 ms per item)
    scan_id = start_scan_cli(
        celery_env,
        "--user-id",
        str(CHAT_ID),
        "--market-opt",
        "items=2000",
        "--market-opt",
        "item_latency_ms=1",
    )
    done = wait_for_status(database_url, scan_id)
    calls = _wait_for_call(telegram, lambda call: "completed" in call.text)
    # Then every call went to that user, and only the first one started a message
    assert done.processed_items == 2000
    assert {call.body["chat_id"] for call in calls} == {CHAT_ID}
    assert [call.method for call in calls if call.method == "sendMessage"] == ["sendMessage"]
    assert calls[0].method == "sendMessage" and "/2000" in calls[0].text
    # And the message was edited with progress, within the throttle's budget, before the end
    progress = [call for call in calls if "completed" not in call.text]
    assert any(call.method == "editMessageText" for call in progress)
    span = progress[-1].received_at - progress[0].received_at
    # One call per interval, plus one for a request's own travel time.
    assert len(progress) <= math.floor(span / MIN_INTERVAL_SECONDS) + 2
    # And the message now says the scan completed with its 2,000 items
    final = telegram.text_of(CHAT_ID, 1) or ""
    assert scan_id.hex[:8] in final and "completed: 2000 items" in final
    assert all(call.status == 200 for call in calls)


def test_a_scan_completes_while_telegram_answers_everything_with_500(
    celery_env: dict[str, str],
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a Telegram that fails every call, and a worker with the notifier on
    telegram.answer_everything_with(ScriptedReply.server_error(500))
    start_worker()
    # When user 424242 starts a 2,000-item scan
    scan_id = start_scan_cli(
        celery_env,
        "--user-id",
        str(CHAT_ID),
        "--market-opt",
        "items=2000",
        "--market-opt",
        "item_latency_ms=1",
    )
    # Then the scan completes with every item processed
    done = wait_for_status(database_url, scan_id)
    assert done.processed_items == done.total_items == 2000
    # And the notifier did try, and got only failures
    calls = _wait_for_call(telegram, lambda call: "completed" in call.text)
    assert calls and {call.status for call in calls} == {500}
