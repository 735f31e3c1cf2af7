"""The prebuilt statements of the page hot path, fenced on (scan_id, lease_token, page_seq,
page_offset): a message that no longer matches the row changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Executable,
    Integer,
    Select,
    SmallInteger,
    Table,
    Text,
    Update,
    Uuid,
    and_,
    bindparam,
    case,
    column,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from models import ScanCheckpoint, ScanOpportunity
from models.item_key import ItemKey
from worker.db import clock
from worker.db.opportunity_days import scan_day
from worker.domain.status import ScanStatus


def _constant(value: str | int) -> ColumnElement[Any]:
    """`value` written into the statement's text instead of bound: a bound parameter costs
    each execution a lookup and a quoting, and an IN of them a rewrite of the statement's
    text, for a value the hot path never changes. Only for our own constants (no quoting)."""
    if isinstance(value, int):
        return literal_column(str(value))
    if not value.isidentifier():
        raise ValueError(f"not a plain constant: {value!r}")
    return literal_column(f"'{value}'")


# A scan the user paused or cancelled still takes the commit of the page in flight.
_COMMITTABLE = (ScanStatus.IN_PROGRESS.value, ScanStatus.PAUSED.value, ScanStatus.CANCELLED.value)
# The hot path runs the same few statements on every page. They are built once, on the
# tables (not the ORM entities) and with bound parameters, so SQLAlchemy compiles each one
# once per process instead of once per page.
_rows = cast(Table, ScanCheckpoint.__table__)
_FENCE = and_(
    _rows.c.scan_id == bindparam("fence_scan_id"),
    _rows.c.lease_token == bindparam("fence_lease_token"),
    _rows.c.page_seq == bindparam("fence_page_seq"),
    _rows.c.page_offset == bindparam("fence_page_offset"),
)
_IN_PROGRESS = _rows.c.status == _constant(ScanStatus.IN_PROGRESS.value)
_LEASE_UNTIL = clock.lease_until(bindparam("lease_seconds"))
# A lost lease renewal is harmless after a database crash: the lease simply expires.
# Not waiting for its WAL flush keeps the hot path to one durable commit per page.
RELAXED_COMMIT = text("SET LOCAL synchronous_commit = off")

# A page may be taken when it waits in the queue, when its running lease lapsed (its worker
# died), or by a redelivery or retry of the very message that holds it. Any other copy of
# the message finds a live heartbeat and is dropped before it touches the market.
_CLAIMABLE = or_(
    _rows.c.queued_at.is_not(None),
    clock.lease_lapsed(_rows.c.lease_expires_at),
    _rows.c.lease_task_id == bindparam("task_id"),
)
# A page task that walked on within its time slice holds the row at a later page than its
# message names; a redelivery of that very message (its worker died mid-slice) takes the
# row where it stands, as the message itself would have been taken had it not walked on.
_HELD_BY_THIS_DELIVERY = and_(
    _rows.c.scan_id == bindparam("fence_scan_id"),
    _rows.c.lease_token == bindparam("fence_lease_token"),
    _rows.c.lease_task_id == bindparam("task_id"),
)
CLAIM = (
    update(_rows)
    .where(_IN_PROGRESS, or_(and_(_FENCE, _CLAIMABLE), _HELD_BY_THIS_DELIVERY))
    .values(
        page_deliveries=_rows.c.page_deliveries + bindparam("delivery_increment"),
        lease_owner=bindparam("owner"),
        lease_task_id=bindparam("task_id"),
        lease_expires_at=_LEASE_UNTIL,
        queued_at=null(),
        next_poll_at=null(),
    )
    .returning(
        _rows.c.page_seq,
        _rows.c.page_offset,
        _rows.c.cursor,
        _rows.c.params,
        _rows.c.processed_items,
        _rows.c.total_items,
        _rows.c.page_deliveries,
        _rows.c.user_id,
        _rows.c.total_is_lower_bound,
        _rows.c.page_judged_ids,
        _rows.c.created_at,
    )
)
# Only the delivery holding the page renews its heartbeat; a pause, a cancel or a
# reclaim makes the renewal miss, which tells the page to stop.
_HOLDER = and_(_IN_PROGRESS, _rows.c.lease_task_id == bindparam("task_id"))
RENEW = update(_rows).where(_FENCE, _HOLDER).values(lease_expires_at=_LEASE_UNTIL)
# Back to the queue without a commit (a drain before any item was judged): the delivery
# returned, so it does not count toward the poison-page limit.
RELEASE = (
    update(_rows)
    .where(_FENCE, _HOLDER)
    .values(
        page_deliveries=func.greatest(_rows.c.page_deliveries - 1, 0),
        lease_task_id=None,
        lease_expires_at=None,
        queued_at=func.now(),
    )
)
# The total as the market now reports it (or as stored), and the count after this commit.
_REPORTED_TOTAL = func.coalesce(bindparam("page_total", type_=Integer), _rows.c.total_items)
_PROCESSED_AFTER = _rows.c.processed_items + bindparam("items_done", type_=Integer)
# A total is "at least N" once the market says it is capped, or once more items were
# judged than it said (a live listing grew): N is then the larger of the two, so no view
# shows more than 100 %. Kept in Python as worker.domain.progress.merged_total.
_TOTAL_IS_LOWER_BOUND = or_(
    _rows.c.total_is_lower_bound,
    bindparam("page_total_is_lower_bound", type_=Boolean),
    func.coalesce(_REPORTED_TOTAL < _PROCESSED_AFTER, false()),
)
_TOTAL_AFTER = case(
    (_REPORTED_TOTAL.is_(None), None), else_=func.greatest(_REPORTED_TOTAL, _PROCESSED_AFTER)
)
# A committed page either hands its row to the queue (the next message is published right
# after, and a queued page holds no lease: waiting is not dying), or, within a time slice,
# keeps it running for the next page under the same delivery: the commit of page N is the
# claim of page N+1, with its lease and its delivery counted.
_CONTINUES = and_(_IN_PROGRESS, bindparam("keep_running", type_=Boolean))
_PROGRESS = {
    "processed_items": _PROCESSED_AFTER,
    "skipped_items": _rows.c.skipped_items + bindparam("skipped"),
    "unreferenced_items": _rows.c.unreferenced_items + bindparam("unreferenced"),
    "illiquid_items": _rows.c.illiquid_items + bindparam("illiquid"),
    "total_items": _TOTAL_AFTER,
    "total_is_lower_bound": _TOTAL_IS_LOWER_BOUND,
    "page_deliveries": case((_CONTINUES, _constant(1)), else_=_constant(0)),
    "lease_task_id": case((_CONTINUES, bindparam("task_id")), else_=None),
    "lease_expires_at": case((_CONTINUES, _LEASE_UNTIL), else_=None),
    "timestamp": func.now(),
    "updated_at": func.now(),
}
_QUEUED_IF_RUNNING = case((and_(_IN_PROGRESS, ~_CONTINUES), func.now()), else_=None)
_COMMIT = update(_rows).where(_FENCE, _rows.c.status.in_([_constant(s) for s in _COMMITTABLE]))
# The partition key of the scan's opportunities, returned by each commit for their insert.
_SCAN_DAY = scan_day(_rows.c.created_at).label("scan_day")
# Part of a page (drained, paused): same page, further offset, and the ids of the listings
# judged so far added to those of earlier parts, for the resumed page to skip.
COMMIT_PART = _COMMIT.values(
    page_offset=bindparam("new_offset"),
    page_judged_ids=_rows.c.page_judged_ids.concat(bindparam("judged_ids", type_=ARRAY(Text))),
    queued_at=_QUEUED_IF_RUNNING,
    **_PROGRESS,
).returning(_rows.c.status, _SCAN_DAY)
# A complete page leaves nothing judged on the next one.
_NO_JUDGED_IDS = text("'{}'::text[]")
# A whole page with more to come: next cursor, next page.
COMMIT_PAGE = _COMMIT.values(
    cursor=bindparam("next_cursor"),
    page_seq=_rows.c.page_seq + _constant(1),
    page_offset=_constant(0),
    page_judged_ids=_NO_JUDGED_IDS,
    queued_at=_QUEUED_IF_RUNNING,
    **_PROGRESS,
).returning(_rows.c.status, _SCAN_DAY)
# A fresh watch's whole poll: its new watermark, and the row rests until its next poll,
# on the next whole multiple of its interval (so the polls of watches with one interval
# fall together and share a walk of the market). Beat's fresh clock publishes it then.
_NEXT_POLL = func.to_timestamp(
    func.ceil(func.extract("epoch", func.now()) / bindparam("poll_every", type_=Integer))
    * bindparam("poll_every", type_=Integer)
)
COMMIT_POLL = _COMMIT.values(
    cursor=bindparam("next_cursor"),
    page_seq=_rows.c.page_seq + _constant(1),
    page_offset=_constant(0),
    page_judged_ids=_NO_JUDGED_IDS,
    queued_at=null(),
    next_poll_at=case((_IN_PROGRESS, _NEXT_POLL), else_=None),
    **_PROGRESS,
).returning(_rows.c.status, _SCAN_DAY)
# The last page completes the scan in the same statement, so a finished scan is never
# seen in progress with nothing left to do. A scan paused during its last page has nothing
# left either: it completes too (a resume would walk the market again from the start). A
# cancelled one stays cancelled, as its user asked.
COMMIT_LAST = _COMMIT.values(
    cursor=null(),
    page_seq=_rows.c.page_seq + _constant(1),
    page_offset=_constant(0),
    page_judged_ids=_NO_JUDGED_IDS,
    status=case(
        (_rows.c.status == _constant(ScanStatus.CANCELLED.value), _rows.c.status),
        else_=_constant(ScanStatus.COMPLETED.value),
    ),
    queued_at=null(),
    # Not named after its column: inside WITH_FOUND's CTE such a name would not be kept.
    note=bindparam("end_note", type_=Text),
    **_PROGRESS,
).returning(_rows.c.status, _SCAN_DAY)
# One statement and one round trip for a page's opportunities, whatever their number: the
# columns travel as arrays and unnest() zips them back into rows. Every row of a scan goes
# to the day its scan was created (worker.db.opportunity_days), read from the row the
# commit statement just updated (its RETURNING), so (scan_id, item_id, scan_day) is unique
# exactly when (scan_id, item_id) is: a re-run page's rows conflict and are dropped.
OPPORTUNITY_ARRAYS = (
    ("item_id", ItemKey), ("title", Text), ("price_cents", Integer),
    ("reference_price_cents", Integer), ("profit_hundredths", Integer),
    ("reference_kind", SmallInteger), ("order_count", Integer),
    ("reference_fetched_at", DateTime(timezone=True)),
    ("fee_bps", SmallInteger), ("fee_source", SmallInteger),
    ("sell_now_profit_cents", Integer), ("listing_profit_cents", Integer),
    ("sales_7d", SmallInteger), ("last_sale_at", DateTime(timezone=True)),
    ("locked", Boolean), ("lock_days", SmallInteger),
)  # fmt: skip
# The same rows stored on their own, for finds written outside a page commit (seeded rows,
# the storage bench): a page commit stores its finds through WITH_FOUND below.
INSERT_FOUND = text(
    f"INSERT INTO {ScanOpportunity.__tablename__} (scan_id, scan_day, page_seq, "
    + ", ".join(name for name, _ in OPPORTUNITY_ARRAYS)
    + ") SELECT :scan_id, :scan_day, :page_seq, * FROM unnest("
    + ", ".join(f":{name}" for name, _ in OPPORTUNITY_ARRAYS)
    + ") ON CONFLICT (scan_id, item_id, scan_day) DO NOTHING"
).bindparams(
    bindparam("scan_id", type_=Uuid),
    bindparam("scan_day", type_=Date),
    bindparam("page_seq", type_=Integer),
    *(bindparam(name, type_=ARRAY(kind)) for name, kind in OPPORTUNITY_ARRAYS),
)
# A page that found something commits in one statement: its row's UPDATE, and the INSERT
# of its finds as a data-modifying CTE that takes its rows from the UPDATE's RETURNING. A
# stale fence updates no row, so the INSERT gets none to join and stores nothing, as a
# rolled-back transaction would; one statement also spares the INSERT's round trip.
_found = cast(Table, ScanOpportunity.__table__)
_FOUND_ROWS = (
    func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in OPPORTUNITY_ARRAYS))
    .table_valued(*(column(name, kind) for name, kind in OPPORTUNITY_ARRAYS))
    .render_derived(name="found_rows")
)


def _with_found(commit: Update) -> Select[tuple[str, date]]:
    """`commit`, and the INSERT of the page's finds on the day it returns, as one statement."""
    committed = commit.cte("committed")
    rows = select(
        bindparam("fence_scan_id", type_=Uuid),
        committed.c.scan_day,
        bindparam("fence_page_seq", type_=Integer),
        *_FOUND_ROWS.c,
    ).select_from(committed.join(_FOUND_ROWS, true()))
    found = (
        postgresql.insert(_found)
        .from_select(["scan_id", "scan_day", "page_seq", *_FOUND_ROWS.c.keys()], rows)
        .on_conflict_do_nothing(index_elements=["scan_id", "item_id", "scan_day"])
    )
    return select(committed.c.status, committed.c.scan_day).add_cte(found.cte("found"))


FAIL = (
    update(_rows)
    .where(_FENCE, _IN_PROGRESS)
    .values(
        status=ScanStatus.FAILED.value,
        error_message=bindparam("reason"),
        lease_expires_at=None,
        lease_task_id=None,
        queued_at=None,
        updated_at=func.now(),
    )
)
STATUS = select(_rows.c.status).where(_FENCE)
# Each fenced statement again, naming its row's partition key too (worker.db.chain_days):
# planned against that one day's partition instead of every day's.
_IN_DAY = _rows.c.created_at == bindparam("fence_created_at")
IN_DAY: dict[Executable, Executable] = {
    statement: statement.where(_IN_DAY)
    for statement in (
        CLAIM,
        RENEW,
        RELEASE,
        COMMIT_PART,
        COMMIT_PAGE,
        COMMIT_POLL,
        COMMIT_LAST,
        FAIL,
        STATUS,
    )
}
# Each commit statement, and its IN_DAY form, with the INSERT of the page's finds folded in.
WITH_FOUND: dict[Executable, Executable] = {
    statement: _with_found(cast(Update, statement))
    for base in (COMMIT_PART, COMMIT_PAGE, COMMIT_POLL, COMMIT_LAST)
    for statement in (base, IN_DAY[base])
}
