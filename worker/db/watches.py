"""Watches as their owners steer them: create, read, pause, resume, remove.

Every statement names the owner in its guard, so another owner's watch is exactly as absent
as one that never existed. Nothing here commits: the use case owns the transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import ScanWatch, WatchPass
from worker.db.engine import rowcount
from worker.domain.scan_params import ScanParams
from worker.domain.validation import id_span_of
from worker.domain.watch import Watch
from worker.errors import WatchNotFound

LIST_LIMIT = 200
PAUSED_REASON_MAX_CHARS = 300


def owner_allowed(allowed_owners: frozenset[int]) -> ColumnElement[bool]:
    """The watches whose owner is on the allow-list; all of them while none is set."""
    if not allowed_owners:
        return true()
    return ScanWatch.owner_id.in_(sorted(allowed_owners))


def watch_of(row: ScanWatch) -> Watch:
    return Watch(
        watch_id=row.id,
        owner_id=row.owner_id,
        chat_id=row.chat_id,
        params=ScanParams.from_json(row.params),
        every_seconds=row.every_seconds,
        overlap=row.overlap,
        paused=row.paused,
        paused_reason=row.paused_reason,
        next_due_at=row.next_due_at,
        buffered_slot_at=row.buffered_slot_at,
        last_scan_id=row.last_scan_id,
        last_slot_at=row.last_slot_at,
        skipped_slots=row.skipped_slots,
        missed_slots=row.missed_slots,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def create_watch(
    session: Session,
    watch_id: uuid.UUID,
    *,
    owner_id: int,
    chat_id: int,
    params: dict[str, Any],
    every_seconds: int,
    overlap: str,
) -> bool:
    """Insert the watch, due at once; False if a watch with this id already exists."""
    result = session.execute(
        insert(ScanWatch)
        .values(
            id=watch_id,
            owner_id=owner_id,
            chat_id=chat_id,
            params=params,
            every_seconds=every_seconds,
            overlap=overlap,
            next_due_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=[ScanWatch.id])
    )
    return rowcount(result) == 1


def any_watch(session: Session, watch_id: uuid.UUID) -> Watch | None:
    """The watch whatever its owner: only for an idempotent create to compare against."""
    row = session.get(ScanWatch, watch_id)
    return None if row is None else watch_of(row)


def owned_watch(session: Session, watch_id: uuid.UUID, owner_id: int) -> Watch:
    row = session.scalar(
        select(ScanWatch).where(ScanWatch.id == watch_id, ScanWatch.owner_id == owner_id)
    )
    if row is None:
        raise WatchNotFound.of_watch(watch_id)
    return watch_of(row)


def list_watches(session: Session, owner_id: int, id_prefix: str | None = None) -> list[Watch]:
    """The owner's watches, oldest first, at most LIST_LIMIT; only those whose id starts
    with `id_prefix` if given (found among all of them, not only the first LIST_LIMIT)."""
    query = select(ScanWatch).where(ScanWatch.owner_id == owner_id)
    if id_prefix is not None:
        lowest, highest = id_span_of("id_prefix", id_prefix)
        query = query.where(ScanWatch.id.between(lowest, highest))
    rows = session.scalars(query.order_by(ScanWatch.created_at, ScanWatch.id).limit(LIST_LIMIT))
    return [watch_of(row) for row in rows]


def set_paused(session: Session, watch_id: uuid.UUID, owner_id: int, paused: bool) -> Watch:
    """Pause or resume; a resumed watch whose slot passed meanwhile is due now.

    The slots of the pause are not an outage: resuming does not count them as missed.
    """
    values: dict[str, Any] = {"paused": paused, "paused_reason": None, "updated_at": func.now()}
    if not paused:
        values["next_due_at"] = case(
            (ScanWatch.next_due_at < func.now(), func.now()), else_=ScanWatch.next_due_at
        )
        values["buffered_slot_at"] = None
    row = session.execute(
        update(ScanWatch)
        .where(ScanWatch.id == watch_id, ScanWatch.owner_id == owner_id)
        .values(**values)
        .returning(ScanWatch)
    ).scalar_one_or_none()
    if row is None:
        raise WatchNotFound.of_watch(watch_id)
    return watch_of(row)


def delete_watch(session: Session, watch_id: uuid.UUID, owner_id: int) -> None:
    """Remove the watch (its pass records go with it; the scans it started stay)."""
    result = session.execute(
        delete(ScanWatch).where(ScanWatch.id == watch_id, ScanWatch.owner_id == owner_id)
    )
    if rowcount(result) == 0:
        raise WatchNotFound.of_watch(watch_id)


def move_chat(session: Session, old_chat_id: int, new_chat_id: int) -> int:
    """The watches (and their passes' alerts) of a group that became a supergroup follow it."""
    moved = session.execute(
        update(ScanWatch)
        .where(ScanWatch.chat_id == old_chat_id)
        .values(chat_id=new_chat_id, updated_at=func.now())
    )
    session.execute(
        update(WatchPass).where(WatchPass.chat_id == old_chat_id).values(chat_id=new_chat_id)
    )
    return rowcount(moved)


def pause_chat(session: Session, chat_id: int, reason: str) -> int:
    """Pause the running watches alerting a chat that takes no messages, saying why."""
    paused = session.execute(
        update(ScanWatch)
        .where(ScanWatch.chat_id == chat_id, ScanWatch.paused.is_(False))
        .values(paused=True, paused_reason=reason[:PAUSED_REASON_MAX_CHARS], updated_at=func.now())
    )
    return rowcount(paused)
