"""The Telegram notifier against a fake Bot API on loopback and the real test Redis.

Each notifier here stands for one worker process: its own queue and sender thread, with
the scan's message and throttle shared with the others through Redis.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis

from tests.fakes.telegram_server import FakeTelegram, RecordedCall, ScriptedReply
from tests.support.scans import row
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, ScanProgress, run_page
from worker.db import session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.domain.watch import PROGRESS_MESSAGES
from worker.notify.messages import ProgressMessages, completed_text
from worker.notify.notifier import SENDER_THREAD_NAME, Notifier, TelegramNotifier, notifier_for
from worker.notify.telegram import TelegramClient
from worker.settings import Settings, get_settings

CHAT_ID = 424242
FLUSH_SECONDS = 15.0

MakeNotifier = Callable[..., TelegramNotifier]


@pytest.fixture
def make_notifier(redis_url: str, telegram: FakeTelegram) -> Iterator[MakeNotifier]:
    """Notifiers on the test Redis, pointed at the fake unless told otherwise."""
    made: list[TelegramNotifier] = []

    def make(min_interval_seconds: float = 0.0, api_url: str | None = None) -> TelegramNotifier:
        settings = Settings(
            broker_url=redis_url,
            telegram_bot_token=telegram.token,
            telegram_api_url=api_url or telegram.api_url,
            telegram_min_interval_seconds=min_interval_seconds,
            http_timeout_seconds=5.0,
        )
        made.append(TelegramNotifier(settings))
        return made[-1]

    yield make
    for notifier in made:
        notifier.close(timeout_seconds=1.0)


def _progress(scan_id: uuid.UUID, processed: int, total: int | None = 1000) -> ScanProgress:
    return ScanProgress(scan_id, CHAT_ID, processed, total)


def _flushed(*notifiers: Notifier) -> None:
    for notifier in notifiers:
        assert notifier.flush(FLUSH_SECONDS), "the sender did not drain its queue"


def _methods(calls: list[RecordedCall]) -> list[str]:
    return [call.method for call in calls]


def _sender_threads() -> int:
    return sum(thread.name == SENDER_THREAD_NAME for thread in threading.enumerate())


def test_first_progress_sends_the_start_message_and_later_progress_edits_it(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a notifier with no throttle
    notifier, scan_id = make_notifier(), uuid.uuid4()
    # When a scan reports its first progress
    notifier.progress(_progress(scan_id, 100))
    _flushed(notifier)
    # Then its user gets one new message showing it
    [start] = telegram.calls
    assert (start.method, start.body["chat_id"], start.status) == ("sendMessage", CHAT_ID, 200)
    assert "100/1000" in start.text
    # When the scan goes on
    notifier.progress(_progress(scan_id, 200))
    _flushed(notifier)
    # Then that same message is edited to show it
    assert _methods(telegram.calls) == ["sendMessage", "editMessageText"]
    edit = telegram.calls[-1]
    assert edit.body["message_id"] == 1 and edit.body["chat_id"] == CHAT_ID
    assert "200/1000" in (telegram.text_of(CHAT_ID, 1) or "")


def test_a_burst_of_progress_is_shown_at_most_once_per_min_interval(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a notifier allowed one change per second
    notifier, scan_id = make_notifier(min_interval_seconds=1.0), uuid.uuid4()
    # When 50 different progress reports arrive as fast as they can
    started = time.monotonic()
    for processed in range(10, 510, 10):
        notifier.progress(_progress(scan_id, processed))
    _flushed(notifier)
    elapsed = time.monotonic() - started
    # Then Telegram got no more calls than the intervals elapsed allow, the first one a send
    calls = telegram.calls
    assert 1 <= len(calls) <= math.floor(elapsed / 1.0) + 1, (len(calls), elapsed)
    assert _methods(calls)[0] == "sendMessage" and len(telegram.calls_of("sendMessage")) == 1
    # And once the interval has passed, the next progress is an edit
    time.sleep(1.1)
    notifier.progress(_progress(scan_id, 999))
    _flushed(notifier)
    assert telegram.calls[-1].method == "editMessageText"
    assert "999/1000" in telegram.calls[-1].text


def test_identical_progress_is_not_sent_again(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a notifier with no throttle
    notifier, scan_id = make_notifier(), uuid.uuid4()
    # When each progress is reported several times
    for processed in (100, 100, 100, 200, 200):
        notifier.progress(_progress(scan_id, processed))
    _flushed(notifier)
    # Then each distinct text went out once
    assert _methods(telegram.calls) == ["sendMessage", "editMessageText"]


def test_pool_processes_share_one_message_and_its_last_text_through_redis(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given two notifiers, as in two pool processes running pages of the same scan
    first, second, scan_id = make_notifier(), make_notifier(), uuid.uuid4()
    # When one starts the message and the other reports later progress, twice each
    first.progress(_progress(scan_id, 100))
    _flushed(first)
    second.progress(_progress(scan_id, 200))
    _flushed(second)
    first.progress(_progress(scan_id, 200))
    second.progress(_progress(scan_id, 200))
    _flushed(first, second)
    # Then there is one message, edited once
    assert _methods(telegram.calls) == ["sendMessage", "editMessageText"]
    assert telegram.calls[1].body["message_id"] == 1


def test_a_progress_edit_in_flight_never_lands_after_the_completion_summary(
    make_notifier: MakeNotifier, telegram: FakeTelegram, redis_url: str
) -> None:
    # Given a scan whose message one process started
    progressing, scan_id = make_notifier(), uuid.uuid4()
    progressing.progress(_progress(scan_id, 100))
    _flushed(progressing)
    # And a later progress edit of that process still in flight at Telegram
    held = telegram.hold("editMessageText")
    progressing.progress(_progress(scan_id, 200))
    assert held.arrived.wait(FLUSH_SECONDS)

    # When another process puts the completion summary on the message; the in-flight edit
    # lands the first time that process has to wait (at once if it never waits)
    def release_then_sleep(seconds: float) -> None:
        held.release()
        time.sleep(seconds)

    done = replace(_progress(scan_id, 1000), processed=1000)
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as client:
        summary = ProgressMessages(
            redis.Redis.from_url(redis_url), client, 0.0, sleep=release_then_sleep
        )
        summary.show_summary(done, completed_text(done))
    held.release()
    _flushed(progressing)
    # Then the user's message ends on the summary, not on the late progress
    assert telegram.text_of(CHAT_ID, 1) == completed_text(done)
    assert telegram.calls[-1].text == completed_text(done)
    # And a progress reported after the summary is refused
    progressing.progress(_progress(scan_id, 300))
    _flushed(progressing)
    assert telegram.text_of(CHAT_ID, 1) == completed_text(done)


def test_a_resumed_scan_shows_progress_again_after_its_failure_summary(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a scan whose message ended on a failure summary
    notifier, scan_id = make_notifier(), uuid.uuid4()
    notifier.progress(_progress(scan_id, 100))
    notifier.failed(_progress(scan_id, 150), "market went away")
    _flushed(notifier)
    assert "failed after 150 items" in (telegram.text_of(CHAT_ID, 1) or "")
    # When the scan is resumed and reports progress
    notifier.scan_resumed(scan_id)
    notifier.progress(_progress(scan_id, 200))
    _flushed(notifier)
    # Then the user sees the progress, in a new message below the failure, which stays
    assert "failed after 150 items" in (telegram.text_of(CHAT_ID, 1) or "")
    assert "200/1000" in (telegram.text_of(CHAT_ID, 2) or "")


def test_message_is_not_modified_counts_as_a_success(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a scan whose message was started
    notifier, scan_id = make_notifier(), uuid.uuid4()
    notifier.progress(_progress(scan_id, 100))
    _flushed(notifier)
    # When Telegram answers the next edit with "message is not modified"
    telegram.script("editMessageText", ScriptedReply.not_modified())
    notifier.progress(_progress(scan_id, 200))
    _flushed(notifier)
    # Then the text counts as shown: the same progress is not sent again
    notifier.progress(_progress(scan_id, 200))
    _flushed(notifier)
    assert [call.status for call in telegram.calls] == [200, 400]
    # When the completion's edit is answered the same way
    telegram.script("editMessageText", ScriptedReply.not_modified())
    notifier.completed(_progress(scan_id, 1000))
    notifier.completed(_progress(scan_id, 1000))
    _flushed(notifier)
    # Then it is neither retried nor sent as a new message
    assert _methods(telegram.calls) == ["sendMessage", "editMessageText", "editMessageText"]


def test_a_429_on_progress_holds_every_call_for_retry_after(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a scan whose message was started
    notifier, scan_id = make_notifier(), uuid.uuid4()
    notifier.progress(_progress(scan_id, 100))
    _flushed(notifier)
    # When Telegram answers the next edit with 429, retry after 1 s, while progress keeps
    # coming for a second and a half and then the scan completes
    telegram.script("editMessageText", ScriptedReply.rate_limited(1))
    before = time.monotonic()
    processed = 200
    while time.monotonic() < before + 1.5:
        notifier.progress(_progress(scan_id, processed))
        processed += 1
        time.sleep(0.05)
    notifier.completed(_progress(scan_id, 1000))
    _flushed(notifier)
    # Then no call came within the second Telegram asked for, and the summary got through
    statuses = [call.status for call in telegram.calls]
    assert statuses[:2] == [200, 429]
    after = telegram.calls[2:]
    assert after, "the completion was never sent"
    assert all(call.received_at >= before + 1.0 for call in after)
    assert "completed" in (telegram.text_of(CHAT_ID, 1) or "")


def test_a_429_on_the_summary_is_waited_out_and_the_summary_retried(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a scan whose message was started
    notifier, scan_id = make_notifier(), uuid.uuid4()
    notifier.progress(_progress(scan_id, 100))
    _flushed(notifier)
    # When its completion is answered with 429, retry after 1 s
    telegram.script("editMessageText", ScriptedReply.rate_limited(1))
    before = time.monotonic()
    notifier.completed(_progress(scan_id, 1000))
    _flushed(notifier)
    # Then the same edit is made again, no sooner than a second later, and lands
    edits = telegram.calls_of("editMessageText")
    assert [call.status for call in edits] == [429, 200]
    assert edits[1].received_at >= before + 1.0
    assert "completed: 1000 items" in (telegram.text_of(CHAT_ID, 1) or "")


def test_a_slow_failing_telegram_never_slows_or_fails_the_caller(
    make_notifier: MakeNotifier, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Telegram that takes 2 s to answer every call with a 500
    telegram.answer_everything_with(ScriptedReply.server_error(500, delay_seconds=2.0))
    notifier, scan_id = make_notifier(), uuid.uuid4()
    caplog.set_level(logging.WARNING, logger="worker.notify.notifier")
    # When a scan reports progress and a failure
    started = time.monotonic()
    notifier.progress(_progress(scan_id, 100))
    notifier.failed(_progress(scan_id, 100), "market failed")
    returned_after = time.monotonic() - started
    # Then the caller got control back at once, with no exception
    assert returned_after < 0.5
    _flushed(notifier)
    assert [call.status for call in telegram.calls] == [500, 500]
    assert caplog.text.count("not delivered") == 2
    # And the sender lives on: once Telegram is back, the next report is delivered
    telegram.answer_everything_with(None)
    notifier.completed(_progress(uuid.uuid4(), 1000))
    _flushed(notifier)
    assert telegram.calls[-1].status == 200 and "completed" in telegram.calls[-1].text


def test_an_unreachable_telegram_never_fails_the_caller(
    make_notifier: MakeNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Bot API URL whose server has gone away
    with FakeTelegram() as gone:
        closed_url = gone.api_url
    notifier, scan_id = make_notifier(api_url=closed_url), uuid.uuid4()
    caplog.set_level(logging.WARNING, logger="worker.notify.notifier")
    # When a scan reports progress and completion
    started = time.monotonic()
    notifier.progress(_progress(scan_id, 100))
    notifier.completed(_progress(scan_id, 1000))
    assert time.monotonic() - started < 0.5
    # Then both failures are logged and the sender is still running
    _flushed(notifier)
    assert caplog.text.count("not delivered") == 2
    assert notifier.sender_running


def test_a_scan_without_a_user_sends_nothing(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a scan started for user 0 (the CLI default)
    notifier, nobody = make_notifier(), ScanProgress(uuid.uuid4(), 0, 100, 1000)
    # When it reports progress, completion and failure
    notifier.progress(nobody)
    notifier.completed(nobody)
    notifier.failed(nobody, "boom")
    # Then no sender was even started
    assert not notifier.sender_running
    # And when a scan of a real user reports next, only that one reaches Telegram
    notifier.progress(_progress(uuid.uuid4(), 100))
    _flushed(notifier)
    assert [call.body["chat_id"] for call in telegram.calls] == [CHAT_ID]


def test_without_a_token_the_notifier_does_nothing_and_starts_no_thread(redis_url: str) -> None:
    # Given settings with no bot token
    threads_before = _sender_threads()
    notifier = notifier_for(Settings(broker_url=redis_url, telegram_bot_token=None))
    # When a scan reports everything there is to report
    notifier.progress(_progress(uuid.uuid4(), 100))
    notifier.completed(_progress(uuid.uuid4(), 100))
    notifier.failed(_progress(uuid.uuid4(), 100), "boom")
    # Then the notifier is the no-op one, and no sender thread exists
    assert type(notifier) is Notifier
    assert _sender_threads() == threads_before


def test_a_sender_starts_only_when_the_first_report_comes(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a Telegram notifier just made
    threads_before = _sender_threads()
    notifier = make_notifier()
    assert _sender_threads() == threads_before and not notifier.sender_running
    # When the first report comes, then there is one sender
    notifier.progress(_progress(uuid.uuid4(), 100))
    assert notifier.sender_running and _sender_threads() == threads_before + 1


def test_new_settings_replace_the_process_notifier_and_stop_the_old_sender(
    redis_url: str, telegram: FakeTelegram
) -> None:
    # Given the process notifier, its sender running
    threads_before = _sender_threads()
    made: list[Notifier] = []
    try:
        for interval in (0.0, 0.5, 1.0, 1.5, 2.0):
            # When the settings are re-read, changed, and a report comes each time
            settings = Settings(
                broker_url=redis_url,
                telegram_bot_token=telegram.token,
                telegram_api_url=telegram.api_url,
                telegram_min_interval_seconds=interval,
            )
            made.append(notifier_for(settings))
            made[-1].progress(_progress(uuid.uuid4(), 100))
            _flushed(made[-1])
        # Then only the current notifier has a sender; the replaced ones stopped theirs
        assert _sender_threads() == threads_before + 1
    finally:
        notifier_for.cache_clear()
        for notifier in made:
            notifier.close(timeout_seconds=1.0)


def _complete_in_child(notifier: TelegramNotifier, scan_id: uuid.UUID) -> None:
    notifier.completed(_progress(scan_id, 1000))
    raise SystemExit(0 if notifier.flush(FLUSH_SECONDS) else 1)


def test_a_forked_process_gets_its_own_sender(
    make_notifier: MakeNotifier, telegram: FakeTelegram
) -> None:
    # Given a notifier whose sender runs in this process
    notifier = make_notifier()
    notifier.progress(_progress(uuid.uuid4(), 100))
    _flushed(notifier)
    # When a forked child (as a prefork pool child) reports a completion
    scan_id = uuid.uuid4()
    child = multiprocessing.get_context("fork").Process(
        target=_complete_in_child, args=(notifier, scan_id)
    )
    child.start()
    child.join(timeout=30)
    # Then the child's own sender delivered it, and the parent's sender still works
    assert child.exitcode == 0
    assert any(scan_id.hex[:8] in call.text for call in telegram.calls)
    assert notifier.sender_running


def test_the_bot_token_stays_out_of_http_logs(
    telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    # Given httpx logging every request, as a worker at INFO level does
    caplog.set_level(logging.INFO, logger="httpx")
    # When the client calls the Bot API
    with TelegramClient(telegram.api_url, telegram.token, 5.0) as client:
        client.send_message(CHAT_ID, "hello")
    # Then the request is logged without the token
    assert "sendMessage" in caplog.text
    assert telegram.token not in caplog.text


def _start_scan(
    settings: Settings, metadata: dict[str, object] | None = None
) -> tuple[uuid.UUID, list[PageMessage]]:
    published: list[PageMessage] = []
    params = ScanParams(
        game="csgo",
        page_size=100,
        user_id=CHAT_ID,
        market_options={"items": 250, "seed": 3},
        metadata=metadata or {},
    )
    with session_scope() as session:
        scan_id = scans.start_scan(session, params, settings, published.append)
    return scan_id, published


def _run_page(settings: Settings, notifier: Notifier, published: list[PageMessage]) -> Outcome:
    """One page as the page task runs it, with the notifier wired in the same way."""
    context = PageContext(
        owner="w1@test",
        settings=settings,
        publish=published.append,
        on_progress=notifier.progress,
        on_completed=notifier.completed,
        on_failed=notifier.failed,
        sleep=lambda seconds: None,
    )
    return run_page(published.pop(0), context)


def test_a_page_chain_reports_progress_and_completion_to_the_scans_user(
    env: dict[str, str], telegram: FakeTelegram
) -> None:
    # Given a notifier wired into the page runner, with no throttle
    settings = replace(
        get_settings(),
        telegram_bot_token=telegram.token,
        telegram_api_url=telegram.api_url,
        telegram_min_interval_seconds=0.0,
    )
    notifier = TelegramNotifier(settings)
    try:
        # When a 250-item scan of user 424242 runs to its end
        scan_id, published = _start_scan(settings)
        outcomes = []
        while published:
            outcomes.append(_run_page(settings, notifier, published))
        _flushed(notifier)
    finally:
        notifier.close()
    # Then the user saw one message go from progress to the completion
    assert outcomes[-1] == Outcome.COMPLETED
    assert _methods(telegram.calls) == ["sendMessage", *["editMessageText"] * 3]
    assert "100/250" in telegram.calls[0].text
    text = telegram.text_of(CHAT_ID, 1) or ""
    assert scan_id.hex[:8] in text and "completed: 250 items" in text


def test_a_failed_scan_tells_its_user_the_error_stored_on_its_row(
    env: dict[str, str], telegram: FakeTelegram
) -> None:
    # Given a scan of user 424242 whose first page ran and was reported
    settings = replace(
        get_settings(),
        telegram_bot_token=telegram.token,
        telegram_api_url=telegram.api_url,
        slice_pages=1,  # one page per task: the failure lands on the next one
    )
    notifier = TelegramNotifier(settings)
    try:
        scan_id, published = _start_scan(settings)
        assert _run_page(settings, notifier, published) == Outcome.NEXT_PUBLISHED
        # When its next page fails (here: it counts as delivered too often)
        poison = replace(settings, max_page_deliveries=0)
        assert _run_page(poison, notifier, published) == Outcome.FAILED
        _flushed(notifier)
    finally:
        notifier.close()
    # Then the user's message ends with the error message stored on the row
    error_message = row(env["DATABASE_URL"], scan_id).error_message
    assert error_message
    assert _methods(telegram.calls) == ["sendMessage", "editMessageText"]
    text = telegram.text_of(CHAT_ID, 1) or ""
    assert "failed after 100 items" in text and error_message in text


@pytest.mark.parametrize(
    ("metadata", "messages"),
    [
        ({"watch_id": str(uuid.UUID(int=7)), "watch_slot": "2026-12-07T00:00:00+00:00"}, 0),
        ({"watch_id": str(uuid.UUID(int=7)), PROGRESS_MESSAGES: True}, 4),
    ],
    ids=["a-pass", "a-pass-that-asked"],
)
def test_a_watchs_pass_tells_its_owner_nothing_in_private_unless_the_watch_asked(
    env: dict[str, str], telegram: FakeTelegram, metadata: dict[str, object], messages: int
) -> None:
    # Given a notifier wired into the page runner, and the pass of a watch
    settings = replace(
        get_settings(),
        telegram_bot_token=telegram.token,
        telegram_api_url=telegram.api_url,
        telegram_min_interval_seconds=0.0,
    )
    notifier = TelegramNotifier(settings)
    try:
        # When the pass runs to its end
        _, published = _start_scan(settings, metadata)
        outcomes = []
        while published:
            outcomes.append(_run_page(settings, notifier, published))
        _flushed(notifier)
    finally:
        notifier.close()
    # Then its owner got no progress message (its finds go to the watch's chat as alerts),
    # unless the watch asked for them
    assert outcomes[-1] == Outcome.COMPLETED
    assert len(telegram.calls) == messages
