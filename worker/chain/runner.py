"""One page task of a scan, the design's five steps, with no Celery in sight.

claim the row (drop stale messages) -> fetch the page at the stored cursor (retrying) ->
judge items from the stored offset, stopping early on drain/pause/cancel -> one fenced
commit of progress and opportunities -> publish the next page, only after the commit.

Within a time slice (worker.chain.slice) the task walks the scan's next pages before it
publishes: each page's commit claims the next one for the same delivery, drain, pause and
cancel are checked between pages, and the next page is fetched while this one commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from models import ScanStatus
from worker import observe
from worker.chain import commit as page_commit
from worker.chain import fetch as page_fetch
from worker.chain import judging as page_judging
from worker.chain.context import Outcome, PageContext
from worker.chain.heartbeat import Heartbeat
from worker.chain.slice import PageSlice
from worker.db.pages import ClaimedPage, PageResult
from worker.domain.page_message import PageMessage
from worker.domain.progress import ScanProgress
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput, PermanentMarketError
from worker.markets.base import MarketSource, Page
from worker.markets.registry import build_market

__all__ = ["Outcome", "PageContext", "ScanProgress", "run_page"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _HandOver:
    """The page stopped before judging anything: back to the queue, uncommitted."""

    when: str


@dataclass(frozen=True)
class _Failure:
    reason: str


def run_page(message: PageMessage, ctx: PageContext) -> Outcome:
    """Run the page of `message`, and the scan's next pages while its time slice lasts."""
    with ctx.lease_sessions() as session:
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
        observe.stale_dropped()
        return Outcome.STALE
    if (claimed.page_seq, claimed.page_offset) != (message.page_seq, message.page_offset):
        log.info("page message %s resumes its slice at page %d", message, claimed.page_seq)
        message = message.at(claimed.page_seq, claimed.page_offset)
    if claimed.deliveries > ctx.settings.max_page_deliveries:
        return page_commit.fail(
            message,
            ctx,
            claimed,
            f"page {message.page_seq} (offset {message.page_offset}) was delivered "
            f"{claimed.deliveries - 1} times without completing; giving up on a poison page",
        )
    try:
        params = ScanParams.from_json(claimed.params)
        market = build_market(params, ctx.settings, ctx.drain_requested)
    except InvalidInput as exc:
        return page_commit.fail(message, ctx, claimed, f"stored scan params are invalid: {exc}")
    pages = PageSlice(message, ctx.settings)
    try:
        with Heartbeat(lambda: _renew(pages, ctx), ctx.settings.lease_seconds / 3) as beat:
            walked = _walk_slice(pages, ctx, claimed, params, market, beat)
    finally:
        pages.abandon_prefetch()
        market.close()
    if isinstance(walked, Outcome):
        return walked
    claimed, work = walked
    # The slice's last page: what follows it goes through the queue.
    if isinstance(work, _HandOver):
        return page_commit.hand_over(pages.message, ctx, work.when)
    if isinstance(work, _Failure):
        return page_commit.fail(pages.message, ctx, claimed, work.reason)
    return page_commit.commit(pages.message, ctx, claimed, work)


def _walk_slice(
    pages: PageSlice,
    ctx: PageContext,
    claimed: ClaimedPage,
    params: ScanParams,
    market: MarketSource,
    beat: Heartbeat,
) -> Outcome | tuple[ClaimedPage, PageResult | _HandOver | _Failure]:
    """Walk pages while the slice has room; the last page's work is left to commit."""
    while True:
        work = _fetch_and_judge(pages, ctx, claimed, params, market, beat)
        going_on = (
            isinstance(work, PageResult)
            and pages.prefetching
            and work.page_complete
            and not (ctx.drain_requested() or beat.lost)
            and pages.still_has_room(ctx.others_waiting)
        )
        if not going_on:
            pages.abandon_prefetch()
            return claimed, work
        assert isinstance(work, PageResult)
        kept = page_commit.commit_and_keep(pages, ctx, claimed, work)
        if isinstance(kept, Outcome):
            return kept
        claimed = kept


def _fetch_and_judge(
    pages: PageSlice,
    ctx: PageContext,
    claimed: ClaimedPage,
    params: ScanParams,
    market: MarketSource,
    beat: Heartbeat,
) -> PageResult | _HandOver | _Failure:
    """Fetch and judge the page while the heartbeat keeps it ours."""
    message = pages.message

    def fetch(cursor: str | None, give_up: Callable[[], bool]) -> Page | str | None:
        with observe.timed_phase("fetch"):
            return page_fetch.fetch(
                market,
                cursor,
                params.page_size,
                ctx.settings,
                should_stop=lambda: give_up() or ctx.drain_requested() or beat.lost,
                sleep=ctx.sleep,
                label=str(message),
            )

    try:
        page = pages.prefetched() if pages.prefetching else fetch(claimed.cursor, lambda: False)
    except PermanentMarketError as exc:
        return _Failure(str(exc))
    if page is None:
        return _HandOver("while waiting to retry the market")
    if isinstance(page, str):
        return _Failure(page)
    # A fresh watch's poll is one page: its next poll comes on its interval, not now.
    if page.next_cursor is not None and not params.fresh and pages.has_room(ctx.others_waiting):
        next_cursor = page.next_cursor
        pages.prefetch(lambda give_up: fetch(next_cursor, give_up))
    with observe.timed_phase("judge"):
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
    if params.fresh:
        return replace(result, poll_every_seconds=params.poll_every_seconds)
    return result


def _renew(pages: PageSlice, ctx: PageContext) -> bool:
    with pages.lock, ctx.lease_sessions() as session:
        renewed = ctx.store.renew(session, pages.message, ctx.task_id, ctx.settings.lease_seconds)
        session.commit()
    return renewed


def _stopped_by_user(message: PageMessage, ctx: PageContext) -> bool:
    with ctx.sessions() as session:
        status = ctx.store.current_status(session, message)
    return status != ScanStatus.IN_PROGRESS.value
