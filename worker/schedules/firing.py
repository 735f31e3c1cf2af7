"""Beat's watch clock, one tick: start each due pass exactly once per slot.

A tick first starts the passes a dead beat took but never started, then moves every due
watch on by a compare-and-set (worker.db.watch_slots) and, if it won, starts the slot's
pass. The pass's scan id is derived from the watch and the slot and the start is
idempotent (invariant 9): two beats, a beat killed between the move and the start, or a
start run twice all make one scan per slot.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from worker.db import Session
from worker.db import watch_slots as slots
from worker.domain import watch as watch_rules
from worker.domain.scan_params import ScanParams
from worker.domain.watch import OVERLAP_BUFFER_ONE, Watch
from worker.errors import MarketscanError

log = logging.getLogger(__name__)

# Starts the pass's scan under the given id; idempotent (worker.chain.lifecycle.start_scan).
StartPass = Callable[[ScanParams, uuid.UUID], object]
Sessions = Callable[[], AbstractContextManager[Session]]


def next_move(due: slots.DueWatch, now: datetime, catchup_seconds: float) -> slots.SlotMove | None:
    """What the due watch does now under its overlap policy; None if nothing is to do."""
    watch = due.watch
    if watch.params.fresh:
        # A fresh watch has one pass, its long-lived scan, following the market from the
        # moment the watch was added (its first slot); its next slot never comes.
        return _start(watch, watch.next_due_at, watch_rules.FRESH_NEVER_DUE, None)
    buffered = watch.buffered_slot_at
    if buffered is not None and not due.last_pass_running:
        # buffer_one: the slot that waited for the previous pass runs now that it ended.
        return _start(watch, buffered, watch.next_due_at, None)
    plan = watch_rules.plan_slot(watch.next_due_at, now, watch.every_seconds, catchup_seconds)
    if plan is None:
        return None
    if plan.slot_at is None:
        return slots.SlotMove(plan.next_due_at, buffered, missed=plan.missed)
    if not due.last_pass_running:
        return _start(watch, plan.slot_at, plan.next_due_at, buffered, missed=plan.missed)
    if watch.overlap == OVERLAP_BUFFER_ONE and buffered is None:
        return slots.SlotMove(plan.next_due_at, plan.slot_at, missed=plan.missed)
    # skip, or buffer_one with its one buffer taken: the slot is skipped and counted.
    return slots.SlotMove(plan.next_due_at, buffered, skipped=1, missed=plan.missed)


def _start(
    watch: Watch,
    slot_at: datetime,
    next_due_at: datetime,
    buffered: datetime | None,
    missed: int = 0,
) -> slots.SlotMove:
    scan_id = watch_rules.pass_scan_id(watch.watch_id, slot_at)
    return slots.SlotMove(next_due_at, buffered, missed=missed, slot_at=slot_at, scan_id=scan_id)


def tick(
    sessions: Sessions,
    start: StartPass,
    catchup_seconds: float,
    retention_days: int = 7,
    allowed_owners: frozenset[int] = frozenset(),
) -> int:
    """One pass of the clock; how many passes it started.

    While an allow-list is set, the watches of owners not on it start nothing: removed
    from the bot, an owner no longer spends the operator's budget.
    """
    started = 0
    with sessions() as session:
        slots.prune_passes(session, retention_days)
        session.commit()
        unstarted = slots.unstarted_passes(session, max(catchup_seconds, 60.0))
    for watch, slot_at in unstarted:
        log.info(
            "watch %s: starting the pass of slot %s that was never started",
            watch.watch_id,
            slot_at.isoformat(),
        )
        started += _start_pass(start, watch, slot_at)
    with sessions() as session:
        now = slots.database_now(session)
        due = slots.due_watches(session, allowed_owners)
        session.rollback()
        for one in due:
            step = next_move(one, now, catchup_seconds)
            if step is None:
                continue
            won = slots.move(session, one.watch, step)
            session.commit()
            if not won:
                continue  # another beat took this slot; its pass is that beat's to start
            if step.skipped or step.missed:
                log.info(
                    "watch %s: skipped %d, missed %d slots",
                    one.watch.watch_id,
                    step.skipped,
                    step.missed,
                )
            if step.slot_at is not None:
                started += _start_pass(start, one.watch, step.slot_at)
    return started


def _start_pass(start: StartPass, watch: Watch, slot_at: datetime) -> int:
    scan_id = watch_rules.pass_scan_id(watch.watch_id, slot_at)
    try:
        start(watch_rules.pass_params(watch, slot_at), scan_id)
    except MarketscanError as exc:
        # A watch whose params the configuration no longer allows (a removed level, say)
        # must not stop the clock for every other watch; its pass is retried next tick.
        log.warning("watch %s: pass %s not started: %s", watch.watch_id, scan_id, exc)
        return 0
    log.info("watch %s: pass %s started for slot %s", watch.watch_id, scan_id, slot_at.isoformat())
    return 1
