"""One page of a scan, the design's five steps, with no Celery in sight.

claim the row (drop stale messages) -> fetch the page at the stored cursor (retrying) ->
judge items from the stored offset, stopping early on drain/pause/cancel -> one fenced
commit of progress and opportunities -> publish the next page, only after the commit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from models import ScanStatus
from worker import page_fetch, page_judging, page_store, scan_total
from worker.db import session_scope
from worker.errors import InvalidInput, PermanentMarketError
from worker.heartbeat import Heartbeat
from worker.markets.base import MarketSource
from worker.markets.registry import build_market
from worker.page_message import PageMessage
from worker.page_store import ClaimedPage, PageResult, PageStore
from worker.scan_params import ScanParams
from worker.settings import Settings
from worker.shutdown import drain_requested

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    STALE = "stale"
    NEXT_PUBLISHED = "next_published"
    COMPLETED = "completed"
    HANDED_OVER = "handed_over"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan stands after one of its pages, for whoever tells its user."""

    scan_id: uuid.UUID
    user_id: int
    processed: int
    total: int | None
    # The total is only "at least `total`" (worker.scan_total).
    total_is_lower_bound: bool = False


@dataclass
class PageContext:
    """What a page needs from its surroundings; the Celery task fills it in.

    `task_id` names this delivery of the message (a redelivery or retry keeps it);
    `is_retry` says the previous attempt of this delivery returned, so it is not counted
    again toward the poison-page limit. The `on_*` callbacks run after the commit and the
    publish they report, on the page's own thread; their errors are logged, never raised.
    """

    owner: str
    settings: Settings
    publish: Callable[[PageMessage], None]
    on_progress: Callable[[ScanProgress], None] = lambda progress: None
    on_completed: Callable[[ScanProgress], None] = lambda progress: None
    on_failed: Callable[[ScanProgress, str], None] = lambda progress, error_message: None
    sessions: Callable[[], AbstractContextManager[Session]] = session_scope
    drain_requested: Callable[[], bool] = drain_requested
    sleep: Callable[[float], None] = field(default=time.sleep)
    # Replaceable so the bench can time the same pipeline with the database taken away.
    store: PageStore = page_store
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    is_retry: bool = False


@dataclass(frozen=True)
class _HandOver:
    """The page stopped before judging anything: back to the queue, uncommitted."""

    when: str


@dataclass(frozen=True)
class _Failure:
    reason: str


def run_page(message: PageMessage, ctx: PageContext) -> Outcome:
    with ctx.sessions() as session:
        claimed = ctx.store.claim(
            session,
            message,
            ctx.owner,
            ctx.task_id,
            ctx.settings.lease_seconds,
            count_delivery=not ctx.is_retry,
        )
        session.commit()
    if claimed is None:
        log.info("dropping page message %s: stale, or a copy of a running page", message)
        return Outcome.STALE
    if claimed.deliveries > ctx.settings.max_page_deliveries:
        return _fail(
            message,
            ctx,
            claimed,
            f"page {message.page_seq} (offset {message.page_offset}) was delivered "
            f"{claimed.deliveries - 1} times without completing; giving up on a poison page",
        )
    try:
        params = ScanParams.from_json(claimed.params)
        market = build_market(params, ctx.settings)
    except InvalidInput as exc:
        return _fail(message, ctx, claimed, f"stored scan params are invalid: {exc}")
    try:
        with Heartbeat(lambda: _renew(message, ctx), ctx.settings.lease_seconds / 3) as beat:
            work = _work(message, ctx, claimed, params, market, beat)
    finally:
        market.close()
    if isinstance(work, _HandOver):
        return _hand_over(message, ctx, work.when)
    if isinstance(work, _Failure):
        return _fail(message, ctx, claimed, work.reason)
    return _commit(message, ctx, claimed, work)


def _work(
    message: PageMessage,
    ctx: PageContext,
    claimed: ClaimedPage,
    params: ScanParams,
    market: MarketSource,
    beat: Heartbeat,
) -> PageResult | _HandOver | _Failure:
    """Fetch and judge the page while the heartbeat keeps it ours."""
    try:
        page = page_fetch.fetch(
            market,
            claimed.cursor,
            params.page_size,
            ctx.settings,
            should_stop=lambda: ctx.drain_requested() or beat.lost,
            sleep=ctx.sleep,
            label=str(message),
        )
    except PermanentMarketError as exc:
        return _Failure(str(exc))
    if page is None:
        return _HandOver("while waiting to retry the market")
    if isinstance(page, str):
        return _Failure(page)
    result = page_judging.judge_page(
        page,
        claimed.judged_ids,
        market,
        params,
        should_stop=lambda: ctx.drain_requested() or beat.lost,
        stopped_by_user=lambda: _stopped_by_user(message, ctx),
        label=f"scan {message.scan_id}",
    )
    if result.items_done == 0 and not result.page_complete:
        return _HandOver("before judging an item")
    return result


def _renew(message: PageMessage, ctx: PageContext) -> bool:
    with ctx.sessions() as session:
        renewed = ctx.store.renew(session, message, ctx.task_id, ctx.settings.lease_seconds)
        session.commit()
    return renewed


def _commit(
    message: PageMessage, ctx: PageContext, claimed: ClaimedPage, result: PageResult
) -> Outcome:
    """One fenced transaction for the page, then the publish, then the reports."""
    try:
        with ctx.sessions() as session:
            status = ctx.store.commit_page(session, message, result)
            session.commit()
    except (DataError, IntegrityError) as exc:
        # Values are validated before they get here; a page the database still refuses
        # fails the scan with the database's own words, at once (a retry cannot fix it).
        reason = f"page {message.page_seq} could not be stored: {exc.orig}"
        return _fail(message, ctx, claimed, reason)
    if status is None:
        log.info("page %s went stale before its commit; its work is dropped", message)
        return Outcome.STALE
    outcome = _publish_after_commit(message, ctx, result, status)
    processed = claimed.processed_items + result.items_done
    total, lower_bound = scan_total.merged_total(
        claimed.total_items if result.total_items is None else result.total_items,
        processed,
        claimed.total_is_lower_bound or result.total_is_lower_bound,
    )
    progress = ScanProgress(message.scan_id, claimed.user_id, processed, total, lower_bound)
    _report(ctx.on_progress, progress)
    if outcome is Outcome.COMPLETED:
        _report(ctx.on_completed, progress)
    return outcome


def _publish_after_commit(
    message: PageMessage, ctx: PageContext, result: PageResult, status: str
) -> Outcome:
    if status == ScanStatus.COMPLETED.value:
        return Outcome.COMPLETED
    if status != ScanStatus.IN_PROGRESS.value:
        return Outcome.STOPPED
    if result.page_complete:
        ctx.publish(message.at(message.page_seq + 1, 0))
        return Outcome.NEXT_PUBLISHED
    ctx.publish(message.at(message.page_seq, message.page_offset + result.items_done))
    return Outcome.HANDED_OVER


def _report(callback: Callable[..., None], *args: object) -> None:
    """Tell the user, never at the chain's expense: the row is the truth, reports are news."""
    try:
        callback(*args)
    except Exception:  # a report must never stop or delay the chain it reports on
        log.exception("progress report failed; the scan goes on")


def _stopped_by_user(message: PageMessage, ctx: PageContext) -> bool:
    with ctx.sessions() as session:
        status = ctx.store.current_status(session, message)
    return status != ScanStatus.IN_PROGRESS.value


def _hand_over(message: PageMessage, ctx: PageContext, when: str) -> Outcome:
    """Put the page back in the queue where it stands, for another worker to take."""
    with ctx.sessions() as session:
        released = ctx.store.release(session, message, ctx.task_id)
        session.commit()
    if not released:  # paused, cancelled or reclaimed meanwhile: nothing is ours to hand
        log.info("page %s stopped %s; it is no longer ours", message, when)
        return Outcome.STALE
    log.info("page %s drained %s; handing it over", message, when)
    ctx.publish(message)
    return Outcome.HANDED_OVER


def _fail(
    message: PageMessage, ctx: PageContext, claimed: ClaimedPage, error_message: str
) -> Outcome:
    with ctx.sessions() as session:
        failed = ctx.store.fail(session, message, error_message)
        session.commit()
    if not failed:
        return Outcome.STALE
    log.error("scan %s failed: %s", message.scan_id, error_message)
    progress = ScanProgress(
        message.scan_id,
        claimed.user_id,
        claimed.processed_items,
        claimed.total_items,
        claimed.total_is_lower_bound,
    )
    _report(ctx.on_failed, progress, error_message)
    return Outcome.FAILED
