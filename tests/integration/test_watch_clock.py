"""Beat's watch clock, one tick at a time, on real PostgreSQL and Redis: one scan per slot,
skip and buffer_one, the catch-up window, and a pass a dead beat took but never started.

Time passes by moving a watch's slot into the past; the passes' scans are started for
real (stored and published) and nobody works them, so a started pass keeps running.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanWatch, WatchPass
from worker import client
from worker.app import publisher
from worker.db import session_scope, tallies
from worker.db import watch_slots as slots
from worker.domain.watch import Watch, pass_scan_id
from worker.schedules import firing

# A watch's pass started as beat's watch clock starts it: the one start of every way in.
START_PASS = publisher.start

OWNER = 77
CATCHUP_SECONDS = 60.0


def _tick() -> int:
    return firing.tick(session_scope, START_PASS, CATCHUP_SECONDS)


def _watch(overlap: str = "skip", every_seconds: int = 10) -> Watch:
    return client.add_watch(
        "csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=every_seconds, overlap=overlap
    )


def _age(session: Session, watch: Watch, seconds: float = 10.25) -> None:
    """Let `seconds` pass for the watch: its slots (and buffer) move into the past.

    Not a whole interval: the slot grid moves too, and must not land on a slot it had.
    """
    shift = text(f"interval '{seconds} seconds'")
    session.execute(
        update(ScanWatch)
        .where(ScanWatch.id == watch.watch_id)
        .values(
            next_due_at=ScanWatch.next_due_at - shift,
            buffered_slot_at=ScanWatch.buffered_slot_at - shift,
        )
    )
    session.commit()


def _current(session: Session, watch: Watch) -> ScanWatch:
    session.expire_all()
    row = session.get(ScanWatch, watch.watch_id)
    assert row is not None
    return row


def _scans(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(ScanCheckpoint.scan_id).order_by(ScanCheckpoint.id)))


def _slots_tallied(session: Session) -> dict[str, int]:
    """marketscan_watch_passes_total by outcome, as the exporter reads it."""
    session.expire_all()
    return {
        label: value
        for (name, label), value in tallies.read(session).items()
        if name == tallies.WATCH_PASSES
    }


def _end(session: Session, scan_id: uuid.UUID) -> None:
    session.execute(
        update(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id).values(status="completed")
    )
    session.commit()


def test_a_due_slot_starts_one_scan_whose_id_is_the_slots(
    env: dict[str, str], session: Session
) -> None:
    watch = _watch()
    # When the clock ticks twice on the same slot
    assert _tick() == 1
    assert _tick() == 0
    # Then one scan runs, under the slot's id, with the watch's params and owner
    row = _current(session, watch)
    assert _scans(session) == [pass_scan_id(watch.watch_id, watch.next_due_at)]
    assert row.last_scan_id == pass_scan_id(watch.watch_id, watch.next_due_at)
    assert row.next_due_at == watch.next_due_at + timedelta(seconds=10)
    stored = session.scalars(select(ScanCheckpoint)).one()
    assert stored.user_id == OWNER and stored.params is not None
    assert stored.params["metadata"]["watch_id"] == str(watch.watch_id)


def test_two_beats_reading_the_same_due_slot_move_it_once(
    env: dict[str, str], session: Session
) -> None:
    _watch()
    # Given two beats that both read the watch as due
    with session_scope() as first, session_scope() as second:
        now = slots.database_now(first)
        [due_first] = slots.due_watches(first)
        [due_second] = slots.due_watches(second)
        step = firing.next_move(due_first, now, CATCHUP_SECONDS)
        assert step is not None
        # When both try to take it, Then only the first wins
        assert slots.move(first, due_first.watch, step) is True
        first.commit()
        assert slots.move(second, due_second.watch, step) is False
        second.commit()
    assert session.scalar(select(func.count()).select_from(WatchPass)) == 1
    # And the slot is counted once, by the beat that won it
    assert _slots_tallied(session) == {"started": 1}


def test_skip_counts_a_slot_that_falls_due_while_the_pass_runs(
    env: dict[str, str], session: Session
) -> None:
    watch = _watch("skip")
    _tick()
    # When two more slots fall due while the first pass still runs
    for _ in range(2):
        _age(session, watch)
        assert _tick() == 0
    # Then they are skipped and counted, and no scan started
    assert _current(session, watch).skipped_slots == 2
    assert len(_scans(session)) == 1
    # And once the pass ends, the next slot runs
    _end(session, _scans(session)[0])
    _age(session, watch)
    assert _tick() == 1
    assert len(_scans(session)) == 2


def test_buffer_one_runs_one_slot_when_the_previous_pass_ends(
    env: dict[str, str], session: Session
) -> None:
    watch = _watch("buffer_one")
    _tick()
    # When two slots fall due while the first pass runs
    _age(session, watch)
    assert _tick() == 0
    buffered = _current(session, watch).buffered_slot_at
    assert buffered is not None
    _age(session, watch)
    assert _tick() == 0
    # Then one is buffered and the other skipped
    assert _current(session, watch).skipped_slots == 1
    # When the first pass ends, Then the buffered slot runs at the next tick
    _end(session, _scans(session)[0])
    buffered = _current(session, watch).buffered_slot_at
    assert buffered is not None
    assert _tick() == 1
    row = _current(session, watch)
    assert row.buffered_slot_at is None
    assert row.last_scan_id == pass_scan_id(watch.watch_id, buffered)
    assert len(_scans(session)) == 2


def test_after_an_outage_only_the_newest_missed_slot_runs(
    env: dict[str, str], session: Session
) -> None:
    watch = _watch(every_seconds=10)
    # Given a clock that was down for 10 minutes (slots every 10 s, window 60 s)
    _age(session, watch, 600.5)
    # When it ticks again, Then one pass runs, for the newest slot; the 60 older are missed
    assert _tick() == 1
    row = _current(session, watch)
    assert row.missed_slots == 60
    assert row.last_slot_at is not None
    assert row.next_due_at == row.last_slot_at + timedelta(seconds=10)
    assert len(_scans(session)) == 1
    assert _slots_tallied(session) == {"started": 1, "missed": 60}


def test_a_pass_taken_by_a_beat_that_died_before_starting_it_is_started(
    env: dict[str, str], session: Session
) -> None:
    _watch()
    # Given a beat that took the slot (moved the watch, recorded the pass) and died
    with session_scope() as dying:
        now = slots.database_now(dying)
        [due] = slots.due_watches(dying)
        step = firing.next_move(due, now, CATCHUP_SECONDS)
        assert step is not None and slots.move(dying, due.watch, step)
        dying.commit()
    assert _scans(session) == []
    # When the clock ticks (this beat or another), Then the pass's scan starts, once
    assert _tick() == 1
    assert _tick() == 0
    assert _scans(session) == [step.scan_id]


def test_a_paused_watch_starts_nothing(env: dict[str, str], session: Session) -> None:
    watch = _watch()
    client.pause_watch(watch.watch_id, OWNER)
    assert _tick() == 0
    assert _scans(session) == []
    client.resume_watch(watch.watch_id, OWNER)
    assert _tick() == 1


def test_pass_records_older_than_the_retention_are_forgotten(
    env: dict[str, str], session: Session
) -> None:
    watch = _watch()
    _tick()
    # Given a pass record from eight days ago (its scan gone to cleanup) and today's
    session.add(
        WatchPass(
            scan_id=uuid.uuid4(),
            watch_id=watch.watch_id,
            chat_id=OWNER,
            slot_at=watch.next_due_at - timedelta(days=8),
            created_at=watch.created_at - timedelta(days=8),
        )
    )
    session.commit()
    # When the clock ticks with a 7-day retention, Then only today's record is left
    firing.tick(session_scope, START_PASS, CATCHUP_SECONDS, retention_days=7)
    assert list(session.scalars(select(WatchPass.scan_id))) == [
        pass_scan_id(watch.watch_id, watch.next_due_at)
    ]
