"""A watch's rules: EVERY as users type it, and which slot a due watch runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from worker.domain.watch import (
    MAX_EVERY_SECONDS,
    MIN_EVERY_SECONDS,
    overlap_of,
    parse_every,
    pass_scan_id,
    plan_slot,
)
from worker.errors import InvalidInput

START = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), (" 2d ", 172800)]
)
def test_every_reads_a_number_and_a_unit(typed: str, seconds: int) -> None:
    assert parse_every(typed) == seconds


@pytest.mark.parametrize("typed", ["15", "m", "1.5h", "-1m", "15 minutes", "", None, 15])
def test_every_in_another_form_names_every_and_the_forms(typed: object) -> None:
    with pytest.raises(InvalidInput, match=r"EVERY must be .*90s, 15m, 1h"):
        parse_every(typed)


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        ("9s", rf"EVERY must be at least {MIN_EVERY_SECONDS}s without --fresh"),
        ("8d", r"EVERY must be from 1s \(with --fresh; 10s without\) to 7d"),
        ("0s", r"EVERY must be from 1s \(with --fresh; 10s without\) to 7d"),
    ],
)
def test_every_out_of_bounds_names_every_and_the_bounds(typed: str, refusal: str) -> None:
    with pytest.raises(InvalidInput, match=refusal):
        parse_every(typed)
    assert MAX_EVERY_SECONDS == 7 * 86400


def test_overlap_names_the_allowed_policies() -> None:
    assert overlap_of("buffer_one") == "buffer_one"
    with pytest.raises(InvalidInput, match="overlap must be one of skip, buffer_one"):
        overlap_of("queue")


def test_a_slots_scan_id_depends_on_the_watch_and_the_slot_only() -> None:
    watch = uuid.uuid4()
    same_moment = START.astimezone(timezone(timedelta(hours=3)))
    assert pass_scan_id(watch, START) == pass_scan_id(watch, same_moment)
    assert pass_scan_id(watch, START) != pass_scan_id(watch, START + timedelta(seconds=10))
    assert pass_scan_id(watch, START) != pass_scan_id(uuid.uuid4(), START)


def test_nothing_is_due_before_the_slot() -> None:
    assert plan_slot(START, START - timedelta(seconds=1), 10, 60) is None


def test_a_due_slot_runs_and_the_next_is_one_interval_later() -> None:
    plan = plan_slot(START, START + timedelta(seconds=3), 10, 60)
    assert plan is not None
    assert (plan.slot_at, plan.missed, plan.next_due_at) == (
        START,
        0,
        START + timedelta(seconds=10),
    )


def test_after_an_outage_only_the_newest_missed_slot_runs() -> None:
    # Given a 10 s watch whose beat was down for 95 s
    plan = plan_slot(START, START + timedelta(seconds=95), 10, 60)
    # Then the slot at +90 s runs, the nine before it are missed, the next is at +100 s
    assert plan is not None
    assert plan.slot_at == START + timedelta(seconds=90)
    assert plan.missed == 9
    assert plan.next_due_at == START + timedelta(seconds=100)


def test_a_newest_slot_older_than_the_window_is_missed_too() -> None:
    # Given an hourly watch, 40 minutes late, and a 10-minute catch-up window
    plan = plan_slot(START, START + timedelta(minutes=40), 3600, 600)
    # Then nothing runs now: the slot is missed and the next one is the hour after
    assert plan is not None
    assert (plan.slot_at, plan.missed, plan.next_due_at) == (None, 1, START + timedelta(hours=1))
