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
from typing import Protocol

from sqlalchemy.orm import Session

from models import ScanStatus
from worker import page_store
from worker.db import session_scope
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.backoff import retry_delay_seconds
from worker.markets.base import MarketSource, Page
from worker.markets.registry import build_market
from worker.opportunities import Opportunity
from worker.page_message import PageMessage
from worker.page_store import ClaimedPage, PageResult
from worker.scan_params import ScanParams
from worker.settings import Settings
from worker.shutdown import drain_requested

log = logging.getLogger(__name__)

# How often a running page looks at its row for a pause or cancel from the user: an
# indexed read five times a second costs far less than the items it spares.
STATUS_POLL_SECONDS = 0.2


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


class PageStore(Protocol):
    """The fenced reads and writes of a page's row: worker.page_store, on PostgreSQL."""

    def claim(
        self, session: Session, message: PageMessage, owner: str, lease_seconds: float
    ) -> ClaimedPage | None: ...

    def renew(
        self, session: Session, message: PageMessage, owner: str, lease_seconds: float
    ) -> bool: ...

    def commit_page(
        self,
        session: Session,
        message: PageMessage,
        result: PageResult,
        owner: str,
        lease_seconds: float,
    ) -> str | None: ...

    def fail(self, session: Session, message: PageMessage, error_message: str) -> bool: ...

    def current_status(self, session: Session, message: PageMessage) -> str | None: ...


@dataclass
class PageContext:
    """What a page needs from its surroundings; the Celery task fills it in.

    The `on_*` callbacks run after the commit they report, on the page's own thread, so
    they must return at once.
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


def run_page(message: PageMessage, ctx: PageContext) -> Outcome:
    with ctx.sessions() as session:
        claimed = ctx.store.claim(session, message, ctx.owner, ctx.settings.lease_seconds)
        session.commit()
    if claimed is None:
        log.info("dropping stale page message %s", message)
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
        return _run_claimed(message, ctx, claimed, params, market)
    except PermanentMarketError as exc:
        return _fail(message, ctx, claimed, str(exc))
    finally:
        market.close()


def _run_claimed(
    message: PageMessage,
    ctx: PageContext,
    claimed: ClaimedPage,
    params: ScanParams,
    market: MarketSource,
) -> Outcome:
    page = _fetch(message, ctx, market, claimed.cursor, params.page_size)
    if page is None:
        return _hand_over(message, ctx, "while waiting to retry the market")
    if isinstance(page, str):
        return _fail(message, ctx, claimed, page)
    result = _judge(message, ctx, market, page, params)
    if result.items_done == 0 and not result.page_complete:
        return _hand_over(message, ctx, "before judging an item")
    with ctx.sessions() as session:
        status = ctx.store.commit_page(
            session, message, result, ctx.owner, ctx.settings.lease_seconds
        )
        session.commit()
    if status is None:
        log.info("page %s went stale before its commit; its work is dropped", message)
        return Outcome.STALE
    progress = ScanProgress(
        message.scan_id,
        claimed.user_id,
        claimed.processed_items + result.items_done,
        result.total_items or claimed.total_items,
    )
    ctx.on_progress(progress)
    if status == ScanStatus.COMPLETED.value:
        ctx.on_completed(progress)
        return Outcome.COMPLETED
    if status != ScanStatus.IN_PROGRESS.value:
        return Outcome.STOPPED
    if result.page_complete:
        ctx.publish(message.at(message.page_seq + 1, 0))
        return Outcome.NEXT_PUBLISHED
    ctx.publish(message.at(message.page_seq, message.page_offset + result.items_done))
    return Outcome.HANDED_OVER


def _fetch(
    message: PageMessage, ctx: PageContext, market: MarketSource, cursor: str | None, limit: int
) -> Page | str | None:
    """The page, or the failure text once retries run out, or None if a drain interrupts."""
    settings = ctx.settings
    attempt = 0
    while True:
        try:
            return market.fetch_page(cursor, limit)
        except RetryableMarketError as exc:
            if exc.counts_as_retry and attempt >= settings.max_retries:
                return f"market failed {attempt + 1} times; last error: {exc}"
            delay = retry_delay_seconds(
                attempt,
                settings.retry_backoff_seconds,
                settings.retry_backoff_max_seconds,
                exc.retry_after_seconds,
            )
            log.warning("page %s: %s; retry %d in %.1fs", message, exc, attempt + 1, delay)
            if not _wait(message, ctx, delay):
                return None
            if exc.counts_as_retry:  # a wait for the fleet's rate budget is not a failure
                attempt += 1


def _wait(message: PageMessage, ctx: PageContext, delay: float) -> bool:
    """Sleep `delay` seconds, renewing the lease; False if a drain or a lost lease stops us."""
    renew_every = max(ctx.settings.lease_seconds / 3, 0.05)
    renewed_at = time.monotonic()
    deadline = renewed_at + delay
    while (left := deadline - time.monotonic()) > 0:
        if ctx.drain_requested():
            return False
        ctx.sleep(min(left, renew_every, 0.25))
        if time.monotonic() - renewed_at >= renew_every:
            renewed_at = time.monotonic()
            with ctx.sessions() as session:
                renewed = ctx.store.renew(session, message, ctx.owner, ctx.settings.lease_seconds)
                session.commit()
            if not renewed:  # paused, cancelled or reclaimed meanwhile: stop waiting
                return False
    return not ctx.drain_requested()


def _judge(
    message: PageMessage, ctx: PageContext, market: MarketSource, page: Page, params: ScanParams
) -> PageResult:
    found: list[Opportunity] = []
    remaining = page.items[message.page_offset :]
    done = 0
    polled_at = time.monotonic()
    for item in remaining:
        if ctx.drain_requested():
            break
        if time.monotonic() - polled_at >= STATUS_POLL_SECONDS:
            polled_at = time.monotonic()
            if _stopped_by_user(message, ctx):
                break
        opportunity = params.judge(market.inspect(item))
        if opportunity is not None:
            found.append(opportunity)
        done += 1
    return PageResult(
        items_done=done,
        page_complete=done == len(remaining),
        next_cursor=page.next_cursor,
        total_items=page.total,
        opportunities=tuple(found),
    )


def _stopped_by_user(message: PageMessage, ctx: PageContext) -> bool:
    with ctx.sessions() as session:
        status = ctx.store.current_status(session, message)
    return status != ScanStatus.IN_PROGRESS.value


def _hand_over(message: PageMessage, ctx: PageContext, when: str) -> Outcome:
    """Publish this very message again so another worker takes the page where it stands."""
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
        message.scan_id, claimed.user_id, claimed.processed_items, claimed.total_items
    )
    ctx.on_failed(progress, error_message)
    return Outcome.FAILED
