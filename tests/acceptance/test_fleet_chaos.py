"""The whole fleet SIGKILLed at random: workers, pool children, beat and the bot, while a long
scan, a watch and scans from a chat run. Every scan still ends exactly.

For half a minute two workers, a beat and the bot run a long CLI scan, a watch every 10 s
(the shortest interval a watch accepts) and /scan commands from an allowed user, some
handed out twice by Telegram, while one process after another is SIGKILLed and restarted
(a killed pool child is replaced by its worker). Afterwards every scan in the database is
the CLI's, the one scan of a /scan command under the id derived from its message, or the
pass of one watch slot under that slot's id; every slot is run, skipped or missed once;
and every scan completed with exactly the finds of an uninterrupted walk, each page
committed once, each chat scan's message ending in its summary.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanWatch, WatchPass
from tests.fakes.telegram_server import FakeTelegram
from tests.support import commit_log
from tests.support.processes import CeleryProcess, beat, bot
from tests.support.scans import (
    expected_opportunities,
    start_scan_cli,
    stored_opportunities,
    wait_for_status,
)
from worker import client
from worker.bot.arguments import chat_scan_id
from worker.db import driver_url
from worker.domain.scan_params import ScanParams
from worker.domain.watch import Watch, pass_scan_id

USER = 424242
CHAOS_SECONDS = 30
EVERY_SECONDS = 10
COMMANDS = 3
FAULTS = ("worker", "pool child", "beat", "bot")
WORKERS = ("a@chaos", "b@chaos")
# A long scan that is still running when the chaos ends: 60 pages of ~0.3 s.
CLI_OPTIONS = ("items=6000", "item_latency_ms=3", "seed=11")
# Watch passes and chat scans of 3 pages of ~0.5 s: well inside the watch's interval.
PASS_OPTIONS = {"items": 300, "item_latency_ms": 5, "seed": 5}
BOT_OPTIONS = "items=300,item_latency_ms=5,seed=9"


@pytest.fixture
def celery_env(celery_env: dict[str, str], telegram: FakeTelegram) -> dict[str, str]:
    """Workers, beat and the bot with Telegram on, and beat looking for due slots often."""
    return {
        **celery_env,
        "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        "MARKETSCAN_TELEGRAM_MIN_INTERVAL_SECONDS": "0.3",
        "MARKETSCAN_TELEGRAM_ALLOWED_USERS": str(USER),
        "MARKETSCAN_TELEGRAM_POLL_TIMEOUT_SECONDS": "2",
        "MARKETSCAN_BOT_MARKET_OPTIONS": BOT_OPTIONS,
        "MARKETSCAN_WATCH_TICK_SECONDS": "0.5",
    }


class _Fleet:
    """The processes under fire. Workers are the fixture's; beats and bots are stopped here."""

    def __init__(
        self, env: dict[str, str], tmp_path: Path, start_worker: Callable[..., CeleryProcess]
    ) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self._start_worker = start_worker
        self.starts: list[CeleryProcess] = []
        self.workers = {name: start_worker(name, concurrency=2) for name in WORKERS}
        self.beat = self._beat()
        self.bot = self._bot()

    def _beat(self) -> CeleryProcess:
        # Each beat has a schedule file of its own: a SIGKILL may leave the last one torn.
        directory = self.tmp_path / f"beat-{len(self.starts)}"
        directory.mkdir()
        process = beat(self.env, directory / "beat.log", directory).start()
        self.starts.append(process)
        process.wait_for_log("beat started")
        return process

    def _bot(self) -> CeleryProcess:
        process = bot(self.env, self.tmp_path / f"bot-{len(self.starts)}.log").start()
        self.starts.append(process)
        process.wait_for_log("is polling")
        return process

    def strike(self, fault: str, moments: random.Random) -> str:
        """SIGKILL one process of the kind `fault`, and start it again after a moment."""
        name = moments.choice(WORKERS)
        if fault == "pool child":
            children = psutil.Process(self.workers[name].pid).children()
            if not children:  # both were just killed and are being replaced
                return f"no pool child of {name} to kill"
            victim = moments.choice(children)
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim.pid, signal.SIGKILL)
            return f"pool child {victim.pid} of {name}"
        down = moments.uniform(0.0, 1.5)
        if fault == "worker":
            self.workers[name].kill_group()
            time.sleep(down)
            self.workers[name] = self._start_worker(name, concurrency=2)
            return f"worker {name}, down {down:.1f}s"
        if fault == "beat":
            self.beat.kill_group()
            time.sleep(down)
            self.beat = self._beat()
            return f"beat, down {down:.1f}s"
        self.bot.kill_group()
        time.sleep(down)
        self.bot = self._bot()
        return f"bot, down {down:.1f}s"

    def stop(self) -> None:
        for process in self.starts:
            process.stop()


def _chaos(fleet: _Fleet, telegram: FakeTelegram, moments: random.Random) -> list[int]:
    """/scan now and then, some handed out twice, while faults strike; the /scan updates."""
    sent = [telegram.user_says(USER, "/scan csgo")]
    # Every kind of fault strikes within the first four, in a random order.
    faults = itertools.cycle(moments.sample(FAULTS, len(FAULTS)))
    started = time.monotonic()
    while time.monotonic() - started < CHAOS_SECONDS:
        time.sleep(moments.uniform(1.0, 3.5))
        if len(sent) < COMMANDS and moments.random() < 0.4:
            sent.append(telegram.user_says(USER, "/scan csgo"))
        if moments.random() < 0.3:
            telegram.updates.redeliver(moments.choice(sent))
        struck = fleet.strike(next(faults), moments)
        print(f"{time.monotonic() - started:5.1f}s SIGKILL {struck}")
    return sent


def _wait_until_confirmed(telegram: FakeTelegram) -> None:
    """The last bot is left up until it has confirmed every update."""
    deadline = time.monotonic() + 60
    while telegram.updates.unconfirmed():
        assert time.monotonic() < deadline, "updates never confirmed"
        time.sleep(0.1)


def _watch_and_passes(
    database_url: str, watch_id: uuid.UUID
) -> tuple[ScanWatch, list[WatchPass], list[uuid.UUID]]:
    engine = create_engine(driver_url(database_url))
    with Session(engine, expire_on_commit=False) as session:
        watch = session.get(ScanWatch, watch_id)
        assert watch is not None
        by_slot = select(WatchPass).where(WatchPass.watch_id == watch_id)
        passes = list(session.scalars(by_slot.order_by(WatchPass.slot_at)))
        scan_ids = list(session.scalars(select(ScanCheckpoint.scan_id)))
        session.expunge_all()
    engine.dispose()
    return watch, passes, scan_ids


def _assert_exact(database_url: str, scan_id: uuid.UUID) -> ScanCheckpoint:
    done = wait_for_status(database_url, scan_id, ("completed", "failed"), timeout=180)
    assert (done.status, done.error_message) == ("completed", None)
    assert done.processed_items == done.total_items
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, done.processed_items)
    return done


def _assert_slots_accounted(
    database_url: str, added: Watch, row: ScanWatch, passes: list[WatchPass]
) -> None:
    """Each pass on a slot of its own under that slot's id, every slot once, none overlapping."""
    assert [p.scan_id for p in passes] == [pass_scan_id(added.watch_id, p.slot_at) for p in passes]
    assert len({p.slot_at for p in passes}) == len(passes) >= 2
    slots = (row.next_due_at - added.next_due_at) / timedelta(seconds=EVERY_SECONDS)
    assert slots == round(slots)
    assert len(passes) + row.skipped_slots + row.missed_slots == round(slots)
    done = [_assert_exact(database_url, p.scan_id) for p in passes]
    for previous, following in itertools.pairwise(done):
        assert following.created_at >= previous.updated_at
    print(f"slots {round(slots)}: passes {len(passes)}, skipped {row.skipped_slots}, "
          f"missed {row.missed_slots}")  # fmt: skip


def _assert_summary_in_chat(telegram: FakeTelegram, scan: ScanCheckpoint) -> None:
    summary = f"{scan.scan_id.hex[:8]} completed: {scan.processed_items} items processed"
    deadline = time.monotonic() + 30
    while not any(summary in text for _, text in telegram.sent_to(USER)):
        assert time.monotonic() < deadline, f"no {summary!r} in {telegram.sent_to(USER)}"
        time.sleep(0.1)


def test_every_scan_ends_exactly_while_workers_pool_children_beat_and_the_bot_are_killed(
    celery_env: dict[str, str],
    database_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    tmp_path: Path,
) -> None:
    commit_log.install(database_url)
    seed = int.from_bytes(os.urandom(4), "big")
    moments = random.Random(seed)
    print(f"\nfaults seeded with {seed}")
    fleet = _Fleet(celery_env, tmp_path, start_worker)
    try:
        # Given a long scan and a watch every 10 s, as the chaos begins
        options = [arg for option in CLI_OPTIONS for arg in ("--market-opt", option)]
        cli_scan = start_scan_cli(celery_env, *options)
        added = client.add_watch(
            "csgo", owner_id=USER, chat_id=USER, every_seconds=EVERY_SECONDS,
            market_options=PASS_OPTIONS,
        )  # fmt: skip
        # When workers, pool children, beat and the bot are SIGKILLed at random for 30 s
        sent = _chaos(fleet, telegram, moments)
        client.pause_watch(added.watch_id, USER)
        _wait_until_confirmed(telegram)
        # Then the scans are the CLI's, one per /scan under its message's id, and the passes
        row, passes, scan_ids = _watch_and_passes(database_url, added.watch_id)
        chat_scans = {chat_scan_id(USER, telegram.updates.message_id_of(u)) for u in sent}
        assert len(chat_scans) == len(sent)
        pass_scans = {p.scan_id for p in passes}
        assert sorted(scan_ids) == sorted({cli_scan} | chat_scans | pass_scans)
        # And every slot of the watch is accounted for once, each pass exact
        _assert_slots_accounted(database_url, added, row, passes)
        # And the long scan and each chat scan are exact, the chat's message its summary
        _assert_exact(database_url, cli_scan)
        for scan_id in chat_scans:
            _assert_summary_in_chat(telegram, _assert_exact(database_url, scan_id))
    finally:
        fleet.stop()
    print(f"commands {len(sent)}, beats and bots started {len(fleet.starts)}")
