"""A watch on real beat and worker processes: one pass per slot whatever happens to beat;
after an outage only the newest slot; buffer_one runs a slot that waited.

A watch every 10 s whose passes take longer than 10 s runs for a minute under `skip`, while
two beats run and are SIGKILLed and restarted at random. Every slot of that minute is then
accounted for exactly once: run by one pass, skipped (a pass still ran) or missed (no
beat was up within the catch-up window), and every pass completed exactly.
"""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanWatch, WatchPass
from tests.support.processes import CeleryProcess, beat
from tests.support.scans import expected_opportunities, stored_opportunities, wait_for_status
from worker import client
from worker.db import driver_url
from worker.domain.scan_params import ScanParams
from worker.domain.watch import pass_scan_id

EVERY_SECONDS = 10
WATCHED_SECONDS = 60
OWNER = 31337
# 3 pages of 100 items at 40 ms an item: about 12 s, longer than the interval.
PASS_OPTIONS = {"items": 300, "item_latency_ms": 40, "seed": 5}


def _start_beat(
    env: dict[str, str], tmp_path: Path, name: str, starts: list[CeleryProcess]
) -> CeleryProcess:
    # Each beat has a schedule file of its own, as on its own host.
    directory = tmp_path / f"{name}-{len(starts)}"
    directory.mkdir()
    process = beat(env, directory / "beat.log", directory).start()
    starts.append(process)
    process.wait_for_log("beat started")
    return process


def _passes(
    database_url: str, watch_id: uuid.UUID
) -> tuple[ScanWatch, list[WatchPass], list[ScanCheckpoint]]:
    engine = create_engine(driver_url(database_url))
    with Session(engine, expire_on_commit=False) as session:
        watch = session.get(ScanWatch, watch_id)
        assert watch is not None
        passes = list(
            session.scalars(
                select(WatchPass).where(WatchPass.watch_id == watch_id).order_by(WatchPass.slot_at)
            )
        )
        scans = list(session.scalars(select(ScanCheckpoint).order_by(ScanCheckpoint.created_at)))
        session.expunge_all()
    engine.dispose()
    return watch, passes, scans


def test_a_watch_runs_one_pass_per_slot_while_beats_are_killed_at_random(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    tmp_path: Path,
) -> None:
    env = {**celery_env, "MARKETSCAN_WATCH_TICK_SECONDS": "0.5"}
    seed = int.from_bytes(os.urandom(4), "big")
    moments = random.Random(seed)
    print(f"\nbeat kills seeded with {seed}")
    start_worker("w1@test", concurrency=2)
    starts: list[CeleryProcess] = []
    beats = [_start_beat(env, tmp_path, name, starts) for name in ("beat-a", "beat-b")]
    # Given a watch every 10 s whose passes take about 12 s
    watch = client.add_watch(
        "csgo",
        owner_id=OWNER,
        chat_id=OWNER,
        every_seconds=EVERY_SECONDS,
        market_options=PASS_OPTIONS,
    )
    try:
        # When, for a minute, one of the two beats is SIGKILLed and restarted at random
        deadline = time.monotonic() + WATCHED_SECONDS
        while time.monotonic() < deadline:
            time.sleep(moments.uniform(1.0, 6.0))
            victim = moments.randrange(len(beats))
            beats[victim].kill_group()
            time.sleep(moments.uniform(0.0, 2.0))
            beats[victim] = _start_beat(env, tmp_path, f"beat-{victim}", starts)
        client.pause_watch(watch.watch_id, OWNER)
    finally:
        for process in starts:
            process.stop()
    row, passes, scans = _passes(database_url, watch.watch_id)
    # Then every scan is the pass of one slot, under that slot's id, and slots are distinct
    assert [p.scan_id for p in passes] == [pass_scan_id(watch.watch_id, p.slot_at) for p in passes]
    assert sorted(s.scan_id for s in scans) == sorted(p.scan_id for p in passes)
    assert len({p.slot_at for p in passes}) == len(passes) >= 2
    # And every slot from the first to the next due one was run, skipped or missed, once
    slots = (row.next_due_at - watch.next_due_at) / timedelta(seconds=EVERY_SECONDS)
    assert slots == round(slots)
    assert len(passes) + row.skipped_slots + row.missed_slots == round(slots)
    # And a pass longer than the interval made the clock skip slots (skip: no overlap)
    assert row.skipped_slots >= 1
    # And each pass completed exactly, and no pass started before the previous one ended
    done = [wait_for_status(database_url, p.scan_id, timeout=60) for p in passes]
    for scan in done:
        params = ScanParams.from_json(scan.params)
        assert (scan.processed_items, scan.total_items) == (300, 300)
        assert stored_opportunities(database_url, scan.scan_id) == expected_opportunities(params)
    for previous, following in itertools.pairwise(done):
        assert following.created_at >= previous.updated_at
    print(
        f"slots {round(slots)}: passes {len(passes)}, skipped {row.skipped_slots}, "
        f"missed {row.missed_slots}; beat starts {len(starts)}"
    )


def _age_watch(database_url: str, watch_id: uuid.UUID, seconds: float) -> None:
    """As if beat had been down for `seconds`: the watch's slot moves that far back."""
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        row = session.get(ScanWatch, watch_id)
        assert row is not None
        row.next_due_at -= timedelta(seconds=seconds)
        session.commit()
    engine.dispose()


def test_after_an_outage_beat_runs_only_the_newest_slot_within_the_window(
    celery_env: dict[str, str], database_url: str, start_beat: Callable[[], CeleryProcess]
) -> None:
    # Given a 10 s watch whose beat was down for 95 s, and a 30 s catch-up window
    watch = client.add_watch("csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=EVERY_SECONDS)
    _age_watch(database_url, watch.watch_id, 95)
    celery_env["MARKETSCAN_WATCH_CATCHUP_SECONDS"] = "30"
    celery_env["MARKETSCAN_WATCH_TICK_SECONDS"] = "0.5"
    # When beat starts again
    start_beat()
    deadline = time.monotonic() + 30
    while not _passes(database_url, watch.watch_id)[1]:
        assert time.monotonic() < deadline, "no pass within 30 s"
        time.sleep(0.1)
    client.pause_watch(watch.watch_id, OWNER)
    row, passes, _ = _passes(database_url, watch.watch_id)
    # Then one pass ran, for the newest missed slot; the nine before it were never replayed
    assert len(passes) == 1
    assert passes[0].slot_at == watch.next_due_at - timedelta(seconds=5)
    assert row.missed_slots == 9


def test_buffer_one_runs_a_slot_that_fell_due_as_soon_as_the_pass_before_ends(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    celery_env["MARKETSCAN_WATCH_TICK_SECONDS"] = "0.5"
    start_worker("w1@test", concurrency=2)
    start_beat()
    # Given a 10 s buffer_one watch whose passes take about 12 s
    watch = client.add_watch(
        "csgo",
        owner_id=OWNER,
        chat_id=OWNER,
        every_seconds=EVERY_SECONDS,
        overlap="buffer_one",
        market_options=PASS_OPTIONS,
    )
    # When it runs for three passes
    deadline = time.monotonic() + 90
    while len(_passes(database_url, watch.watch_id)[1]) < 3:
        assert time.monotonic() < deadline, "fewer than three passes in 90 s"
        time.sleep(0.2)
    client.pause_watch(watch.watch_id, OWNER)
    _, passes, _ = _passes(database_url, watch.watch_id)
    done = [wait_for_status(database_url, p.scan_id, timeout=60) for p in passes]
    # Then each pass after the first is a slot that fell due while the one before ran
    # (skip would have dropped it), started after that one ended, before the next slot
    for (previous, following), later_slot in zip(itertools.pairwise(done), passes[1:], strict=True):
        assert later_slot.slot_at < previous.updated_at  # it was due while `previous` ran
        assert previous.updated_at <= following.created_at
        assert (following.created_at - previous.updated_at).total_seconds() < EVERY_SECONDS
