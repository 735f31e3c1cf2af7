"""The ends of a page: its fenced commit, then the publish, then the reports; or a
hand-over to the queue, or the scan's failure.

A commit inside a time slice keeps the scan for the next page (worker.chain.slice); the
slice's last commit queues the next page and publishes it, only after the commit.
"""

from __future__ import annotations

import logging

from worker import observe
from worker.chain.context import Outcome, PageContext, report
from worker.chain.slice import PageSlice
from worker.db import DataError, IntegrityError
from worker.db.pages import ClaimedPage, Lease, PageResult
from worker.domain import progress as scan_total
from worker.domain import watch as watch_rules
from worker.domain.page_message import PageMessage
from worker.domain.progress import ScanProgress
from worker.domain.status import ScanStatus
from worker.redaction import redacted

log = logging.getLogger(__name__)


def commit_and_keep(
    pages: PageSlice, ctx: PageContext, claimed: ClaimedPage, result: PageResult
) -> ClaimedPage | Outcome:
    """Commit a page inside the slice, keeping the scan for the next page; its claim."""
    message = pages.message
    keep = Lease(ctx.task_id, ctx.settings.lease_seconds)
    try:
        with observe.timed_phase("commit"), pages.lock, ctx.sessions() as session:
            status = ctx.store.commit_page(session, message, result, keep=keep)
            session.commit()
            if status == ScanStatus.IN_PROGRESS.value:
                pages.advance()
    except (DataError, IntegrityError) as exc:
        return fail(message, ctx, claimed, _unstorable(message, exc))
    if status is None:
        log.info("page %s went stale before its commit; its work is dropped", message)
        observe.stale_dropped()
        return Outcome.STALE
    progress = _progress(message, claimed, result)
    report(ctx.on_progress, progress)
    if status != ScanStatus.IN_PROGRESS.value:
        return Outcome.STOPPED
    return ClaimedPage(
        cursor=result.next_cursor,
        params=claimed.params,
        processed_items=progress.processed,
        total_items=progress.total,
        deliveries=1,
        user_id=claimed.user_id,
        total_is_lower_bound=progress.total_is_lower_bound,
        page_seq=pages.message.page_seq,
        page_offset=0,
    )


def commit(
    message: PageMessage, ctx: PageContext, claimed: ClaimedPage, result: PageResult
) -> Outcome:
    """One fenced transaction for the page, then the publish, then the reports."""
    try:
        with observe.timed_phase("commit"), ctx.sessions() as session:
            status = ctx.store.commit_page(session, message, result)
            session.commit()
    except (DataError, IntegrityError) as exc:
        return fail(message, ctx, claimed, _unstorable(message, exc))
    if status is None:
        log.info("page %s went stale before its commit; its work is dropped", message)
        observe.stale_dropped()
        return Outcome.STALE
    outcome = _publish_after_commit(message, ctx, result, status)
    progress = _progress(message, claimed, result)
    report(ctx.on_progress, progress)
    if outcome is Outcome.COMPLETED:
        report(ctx.on_completed, progress)
    return outcome


def _unstorable(message: PageMessage, exc: DataError | IntegrityError) -> str:
    # Values are validated before they get here; a page the database still refuses fails
    # the scan with the database's own words, at once (a retry cannot fix it).
    return f"page {message.page_seq} could not be stored: {exc.orig}"


def _progress(message: PageMessage, claimed: ClaimedPage, result: PageResult) -> ScanProgress:
    processed = claimed.processed_items + result.items_done
    total, lower_bound = scan_total.merged_total(
        claimed.total_items if result.total_items is None else result.total_items,
        processed,
        claimed.total_is_lower_bound or result.total_is_lower_bound,
    )
    return ScanProgress(
        message.scan_id,
        claimed.user_id,
        processed,
        total,
        lower_bound,
        message.page_seq,
        watch_rules.tells_its_user(claimed.params),
    )


def _publish_after_commit(
    message: PageMessage, ctx: PageContext, result: PageResult, status: str
) -> Outcome:
    if status == ScanStatus.COMPLETED.value:
        return Outcome.COMPLETED
    if status != ScanStatus.IN_PROGRESS.value:
        return Outcome.STOPPED
    if result.rests:
        return Outcome.RESTING  # beat's fresh clock publishes the next poll when it is due
    if result.page_complete:
        ctx.publish(message.at(message.page_seq + 1, 0))
        return Outcome.NEXT_PUBLISHED
    ctx.publish(message.at(message.page_seq, message.page_offset + result.items_done))
    return Outcome.HANDED_OVER


def hand_over(message: PageMessage, ctx: PageContext, when: str) -> Outcome:
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


def fail(
    message: PageMessage, ctx: PageContext, claimed: ClaimedPage, error_message: str
) -> Outcome:
    # The cause may quote a credential (a market, or a proxy before it, echoing a URL): it
    # is stored, logged and sent to the scan's user, so it is hidden once, here, for all three.
    error_message = redacted(error_message)
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
        tell_user=watch_rules.tells_its_user(claimed.params),
    )
    report(ctx.on_failed, progress, error_message)
    return Outcome.FAILED
