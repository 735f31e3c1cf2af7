"""Checkpoint operations on a sync SQLAlchemy session: the one implementation behind StateManager.

Every function validates first, then changes rows with a guarded statement; a guard that
matches no row is diagnosed and raised, never ignored. Callers own the transaction.
Retention cleanup is worker.db.retention.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Engine, case, create_engine, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.pool import NullPool

from models import ACTIVE_STATUSES, RUNNER_CHAIN, ScanCheckpoint, ScanStatus
from worker.db.engine import driver_url
from worker.domain import validation
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import TERMINAL_STATUSES, change_of, save_sources_of, sources_of
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput, InvalidTransition

_ACTIVE = [status.value for status in ACTIVE_STATUSES]
# What the trigger of migration 0010 names when it refuses a scan id stored already.
SCAN_ID_TAKEN = "one_row_per_scan_id"
# What a row that finishes drops: clearing the lease token fences off every page message
# still in flight.
_LEASE_CLEARED: dict[str, Any] = {
    "lease_token": None,
    "lease_owner": None,
    "lease_task_id": None,
    "lease_expires_at": None,
    "queued_at": None,
}


def _sources(target: ScanStatus) -> list[str]:
    """The statuses the transition table lets a scan leave for `target`."""
    return [status.value for status in sources_of(target)]


# The final save runs in a signal handler, on the main thread, possibly while that very thread
# holds an uncommitted UPDATE of the same row: it would wait for a lock that can never be
# released. A bounded lock wait turns that into a logged "not saved" (the last committed
# checkpoint stands) while still riding out a lock that another process holds for a moment,
# which SKIP LOCKED would give up on at once. The other timeouts bound a dead server.
FINAL_SAVE_LOCK_TIMEOUT_MS = 3000
FINAL_SAVE_STATEMENT_TIMEOUT_MS = 10_000
FINAL_SAVE_CONNECT_TIMEOUT_SECONDS = 5

# One engine per database for every final save of the process, however many managers
# register: NullPool, so it holds no connection between saves and needs no disposing.
_final_engines: dict[str, Engine] = {}


def is_sync_session(session: object) -> bool:
    """Whether `session` is a sync Session (or a scoped one); anything else is taken for an
    AsyncSession, as by the upstream module, whose StateManager was asyncio-only."""
    return isinstance(session, Session | scoped_session)


def bind_url_of(session: Session | AsyncSession) -> str:
    """The URL `session` is bound to, password included: what `final_save_session` takes."""
    return session.get_bind().engine.url.render_as_string(hide_password=False)


def final_save_session(bind_url: str) -> Session:
    """A session of its own for a final save: an interrupted transaction cannot swallow it.

    Its waits are bounded (FINAL_SAVE_*); the caller commits and closes it.
    """
    url = driver_url(bind_url)
    engine = _final_engines.get(url)
    if engine is None:
        options = (
            f"-c lock_timeout={FINAL_SAVE_LOCK_TIMEOUT_MS} "
            f"-c statement_timeout={FINAL_SAVE_STATEMENT_TIMEOUT_MS}"
        )
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": FINAL_SAVE_CONNECT_TIMEOUT_SECONDS,
                "options": options,
            },
        )
        _final_engines[url] = engine
    return Session(engine)


def create_checkpoint(
    session: Session,
    scan_id: uuid.UUID | str,
    user_id: int,
    operation_type: str,
    metadata: dict[str, Any] | None = None,
    total_items: int | None = None,
    params: dict[str, Any] | None = None,
    lease_token: uuid.UUID | None = None,
    total_is_lower_bound: bool = False,
    extra_data: dict[str, Any] | None = None,
) -> Checkpoint:
    """Insert a new in-progress checkpoint; a scan_id that exists already is DuplicateScan.

    `total_is_lower_bound`: the market's total is capped (DMarket's stops at 10,000), so
    later saves may count past it; the total then grows with the count.

    `lease_token` is for scan chains: the first page's fence. A row made with one is run by
    the page chain (its first page queued, to be published right after the commit); a row
    made without one belongs to the caller's own loop, and chain recovery never touches it.
    `extra_data` is the upstream module's name for `metadata`.
    """
    scan = validation.scan_id_of(scan_id)
    values = {
        "scan_id": scan,
        "user_id": validation.user_id_of(user_id),
        "operation_type": validation.operation_type_of(operation_type),
        "meta": validation.metadata_patch_of(metadata, extra_data) or {},
        "total_items": validation.count_of("total_items", total_items, optional=True),
        "total_is_lower_bound": validation.lower_bound_of(total_is_lower_bound),
        "params": params,
        "lease_token": lease_token,
        "status": ScanStatus.IN_PROGRESS.value,
    }
    if lease_token is not None:
        values["runner"] = RUNNER_CHAIN
        values["queued_at"] = func.now()
    # PostgreSQL decides (migration 0010): an insert of a stored id, on any day, is refused,
    # and one racing an uncommitted insert of the id waits for it and is refused if it
    # commits. The savepoint keeps the caller's transaction usable after a refusal.
    try:
        with session.begin_nested():
            inserted = session.execute(
                insert(ScanCheckpoint).values(**values).returning(ScanCheckpoint)
            ).scalar_one()
    except IntegrityError as exc:
        if _constraint_of(exc) == SCAN_ID_TAKEN:
            raise DuplicateScan.of_scan(scan) from None
        raise
    return Checkpoint.from_row(inserted)


def _constraint_of(error: DBAPIError) -> str | None:
    """The constraint PostgreSQL named in refusing a statement, from either driver's
    error: psycopg2's diagnostics (sync), asyncpg's own attribute (the async session)."""
    driver_error = error.driver_exception
    diagnostics = getattr(driver_error, "diag", None)
    if diagnostics is not None:
        return cast(str | None, diagnostics.constraint_name)
    return cast(str | None, getattr(driver_error, "constraint_name", None))


def save_checkpoint(
    session: Session,
    scan_id: uuid.UUID | str,
    cursor: str | None = None,
    processed_items: int = 0,
    total_items: int | None = None,
    metadata: dict[str, Any] | None = None,
    total_is_lower_bound: bool = False,
    extra_data: dict[str, Any] | None = None,
    status: ScanStatus | str | None = None,
) -> Checkpoint:
    """Record progress of an active scan; `metadata` is merged into the stored object.

    The count may pass the total only if the total is a lower bound: marked so by this
    call or an earlier one (the mark stays), and then the total grows with the count.
    `extra_data` and `status` are the upstream module's keywords: its name for `metadata`,
    and a status the transition table lets the scan take (a finishing one drops the lease).
    """
    scan = validation.scan_id_of(scan_id)
    target = None if status is None else validation.status_of(status)
    sources = _ACTIVE if target is None else [source.value for source in save_sources_of(target)]
    patch = validation.metadata_patch_of(metadata, extra_data)
    lower_bound = validation.lower_bound_of(total_is_lower_bound)
    processed = validation.count_of("processed_items", processed_items)
    assert processed is not None
    total = validation.count_of("total_items", total_items, optional=True)
    values: dict[str, Any] = {
        "cursor": validation.cursor_of(cursor),
        "processed_items": processed,
        "timestamp": func.now(),
        "updated_at": func.now(),
    }
    # The same rule as the page commit's (worker.domain.progress.merged_total), on the row.
    is_lower_bound = or_(ScanCheckpoint.total_is_lower_bound, literal(lower_bound))
    reported = ScanCheckpoint.total_items if total is None else literal(total)
    values["total_is_lower_bound"] = is_lower_bound
    values["total_items"] = case(
        (reported.is_(None), None),
        (is_lower_bound, func.greatest(reported, processed)),
        else_=reported,
    )
    if patch is not None:
        values["meta"] = ScanCheckpoint.meta.op("||")(patch)
    if target is not None:
        values["status"] = target.value
        if target in TERMINAL_STATUSES:
            values.update(_LEASE_CLEARED)
    guard = [
        ScanCheckpoint.scan_id == scan,
        ScanCheckpoint.status.in_(sources),
        or_(is_lower_bound, reported.is_(None), reported >= processed),
    ]
    saved = session.execute(
        update(ScanCheckpoint).where(*guard).values(**values).returning(ScanCheckpoint)
    ).scalar_one_or_none()
    if saved is None:
        current = _require(session, scan)
        if current.status in sources:
            raise InvalidInput(
                validation.exceeds_total_message(
                    processed, current.total_items if total is None else total
                )
            )
        raise InvalidTransition.not_active(scan, current.status, change_of(target))
    _check_metadata_size(saved)
    return Checkpoint.from_row(saved)


def load_checkpoint(session: Session, scan_id: uuid.UUID | str) -> Checkpoint | None:
    """The checkpoint of `scan_id`, or None if there is none."""
    row = row_of(session, validation.scan_id_of(scan_id))
    return None if row is None else Checkpoint.from_row(row)


def row_of(session: Session, scan: uuid.UUID) -> ScanCheckpoint | None:
    """The one way a scan's row is loaded by its id."""
    return session.scalars(
        select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan)
    ).one_or_none()


def get_active_checkpoints(
    session: Session, user_id: int | None = None, operation_type: str | None = None
) -> list[Checkpoint]:
    """In-progress and paused checkpoints, newest first, optionally of one user or operation."""
    query = select(ScanCheckpoint).where(ScanCheckpoint.status.in_(_ACTIVE))
    if user_id is not None:
        query = query.where(ScanCheckpoint.user_id == validation.user_id_of(user_id))
    if operation_type is not None:
        query = query.where(
            ScanCheckpoint.operation_type == validation.operation_type_of(operation_type)
        )
    query = query.order_by(ScanCheckpoint.timestamp.desc(), ScanCheckpoint.id.desc())
    return [Checkpoint.from_row(row) for row in session.scalars(query)]


def mark_checkpoint_completed(session: Session, scan_id: uuid.UUID | str) -> Checkpoint:
    return _finish(session, validation.scan_id_of(scan_id), ScanStatus.COMPLETED, None)


def mark_checkpoint_failed(
    session: Session, scan_id: uuid.UUID | str, error_message: str
) -> Checkpoint:
    if not isinstance(error_message, str) or not error_message.strip():
        raise InvalidInput(f"error_message must be a non-empty string, got {error_message!r}")
    return _finish(session, validation.scan_id_of(scan_id), ScanStatus.FAILED, error_message)


def _finish(
    session: Session, scan: uuid.UUID, status: ScanStatus, error_message: str | None
) -> Checkpoint:
    finished = session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan, ScanCheckpoint.status.in_(_sources(status)))
        .values(
            status=status.value,
            error_message=error_message,
            updated_at=func.now(),
            **_LEASE_CLEARED,
        )
        .returning(ScanCheckpoint)
    ).scalar_one_or_none()
    if finished is None:
        current = _require(session, scan)
        raise InvalidTransition.not_active(scan, current.status, f"become {status.value}")
    return Checkpoint.from_row(finished)


def _require(session: Session, scan: uuid.UUID) -> ScanCheckpoint:
    row = row_of(session, scan)
    if row is None:
        raise CheckpointNotFound.of_scan(scan)
    return row


def _check_metadata_size(row: ScanCheckpoint) -> None:
    # Merging can grow metadata past the bound even when each part is within it.
    validation.metadata_of(row.meta)
