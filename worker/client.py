"""The client for apps (a bot, a web backend): start, read, steer and follow scans.

The one way in: the `marketscan` CLI calls these functions too, so both validate alike.
Configuration (database, broker, fee, levels) comes from the environment, as for the
worker. For asyncio code, worker.async_client has the same functions as coroutines.

    scan_id = client.start("csgo", level="standard", user_id=42)
    for checkpoint in client.progress(scan_id):
        print(checkpoint.processed_items, checkpoint.total_items)
    print(client.results(scan_id, top=5))
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker.db import DBAPIError, Session, unavailable
from worker.domain.checkpoint import Checkpoint
from worker.domain.scan_params import DEFAULT_USER_ID, ScanParams
from worker.domain.status import TERMINAL_STATUSES
from worker.domain.validation import scan_id_of
from worker.domain.watch import PROGRESS_MESSAGES, Watch, every_seconds_of
from worker.errors import InvalidInput, ServiceUnavailable
from worker.markets.base import MAX_PAGE_SIZE
from worker.redaction import redacted
from worker.settings import get_settings

PROGRESS_POLL_SECONDS = 0.5
BROKER_TIMEOUT_SECONDS = 3.0


def start(
    game: str,
    *,
    market: str = "simulated",
    level: str = "standard",
    reference: str | None = None,
    min_price_cents: int | None = None,
    max_price_cents: int | None = None,
    page_size: int = MAX_PAGE_SIZE,
    user_id: int = DEFAULT_USER_ID,
    metadata: dict[str, Any] | None = None,
    market_options: dict[str, Any] | None = None,
    scan_id: uuid.UUID | str | None = None,
) -> uuid.UUID:
    """Store a scan and publish its first page; returns its scan_id once both are done.

    With `scan_id`, starting again is harmless: the existing scan is returned (and its
    chain made sure of), so a retry after a timeout never makes a second scan.
    """
    from worker.app import publisher
    from worker.markets.registry import check_market_options

    settings = get_settings()
    params = ScanParams(
        game=game,
        market=market,
        level=level,
        reference=reference,
        min_price_cents=min_price_cents,
        max_price_cents=max_price_cents,
        page_size=page_size,
        user_id=user_id,
        metadata=dict(metadata or {}),
        market_options=dict(market_options or {}),
    )
    # Everything about the request is checked before anything is stored or published.
    check_market_options(params, settings)
    params.configured(settings)
    wanted = None if scan_id is None else scan_id_of(scan_id)
    require_broker()
    return publisher.start(params, wanted, settings=settings, sessions=session)


def status(scan_id: uuid.UUID | str) -> Checkpoint:
    """The scan's checkpoint; CheckpointNotFound if there is no such scan."""
    from worker.db.scan_queries import scan_status

    with session() as opened:
        return scan_status(opened, scan_id)


def market_wait(checkpoint: Checkpoint) -> str | None:
    """Why a running DMarket scan is not fetching: "market unavailable since ..." while the
    fleet's circuit breaker is open, else None (also when the broker cannot be asked)."""
    import redis

    from worker import broker_redis
    from worker.markets.fleet import breaker

    if checkpoint.status.value != "in_progress" or (checkpoint.params or {}).get("market") != (
        "dmarket"
    ):
        return None
    settings = get_settings()
    try:
        state = breaker.breaker_state(
            broker_redis.shared(settings.broker_url, settings.sentinel_master),
            settings.dmarket_url,
        )
    except redis.RedisError:
        return None
    if state is None:
        return None
    return f"market unavailable since {state.since.isoformat(timespec='seconds')} ({state.cause})"


def scans(
    user_id: int | None = None, status: str | None = None, id_prefix: str | None = None
) -> list[Checkpoint]:
    """The newest scans first (at most a few hundred), only `user_id`'s, `status`'s or those
    whose id starts with `id_prefix` (hex digits, as short ids show them) if given."""
    from worker.db.scan_queries import list_scans

    with session() as opened:
        return list_scans(opened, status, user_id, id_prefix)


def running_scans(user_id: int) -> int:
    """How many of the user's scans run or wait in the queue, their watches' passes aside."""
    from worker.db.scan_queries import running_scans as running

    with session() as opened:
        return running(opened, user_id)


def results(scan_id: uuid.UUID | str, top: int = 20) -> list[dict[str, Any]]:
    """The scan's best `top` opportunities by profit percent, prices in integer cents."""
    from worker.db.scan_queries import top_opportunities

    with session() as opened:
        return top_opportunities(opened, scan_id, top)


def pause(scan_id: uuid.UUID | str) -> Checkpoint:
    """Pause a running scan at its next item; every committed item is kept."""
    from worker.chain.lifecycle import pause_scan

    with session() as opened:
        return pause_scan(opened, scan_id)


def resume(scan_id: uuid.UUID | str) -> Checkpoint:
    """Resume a paused or failed scan from its checkpoint."""
    from worker.app import publisher
    from worker.chain.lifecycle import resume_scan
    from worker.notify.notifier import get_notifier

    require_broker()
    with session() as opened:
        # A resumed scan's user sees its progress again, even after a failure summary.
        return resume_scan(
            opened,
            scan_id,
            get_settings(),
            publisher.publish_page,
            on_resumed=get_notifier().scan_resumed,
        )


def cancel(scan_id: uuid.UUID | str) -> Checkpoint:
    """Cancel a scan for good."""
    from worker.chain.lifecycle import cancel_scan

    with session() as opened:
        return cancel_scan(opened, scan_id)


def progress(
    scan_id: uuid.UUID | str, poll_seconds: float = PROGRESS_POLL_SECONDS
) -> Iterator[Checkpoint]:
    """The scan's checkpoint now and at every change, ending with its terminal state.

    A paused scan is not terminal: the iterator waits for it to be resumed or cancelled.
    """
    check_poll_seconds(poll_seconds)
    last: tuple[object, ...] | None = None
    while True:
        checkpoint = status(scan_id)
        seen = progress_key(checkpoint)
        if seen != last:
            last = seen
            yield checkpoint
        if is_terminal(checkpoint):
            return
        time.sleep(poll_seconds)


def add_watch(
    game: str,
    *,
    owner_id: int,
    chat_id: int,
    every_seconds: int,
    level: str = "standard",
    min_price_cents: int | None = None,
    max_price_cents: int | None = None,
    overlap: str = "skip",
    market: str = "simulated",
    market_options: dict[str, Any] | None = None,
    watch_id: uuid.UUID | str | None = None,
    progress_messages: bool = False,
    fresh: bool = False,
) -> Watch:
    """Store a watch: the scan again every `every_seconds`, its finds alerted to `chat_id`.

    `fresh`: instead, follow DMarket v2's newest listings, polling every `every_seconds`
    (from 1 s): one long-lived scan judges each listing created from now on once.

    Its first pass is due at once. With `watch_id`, adding again is harmless (the stored
    watch is returned). `overlap`: `skip` or `buffer_one` (see docs/telegram.md's watches).
    `progress_messages`: each pass also shows its progress in the owner's private chat.
    """
    from worker.schedules.watch_steering import add_watch as add

    if not isinstance(progress_messages, bool):
        raise InvalidInput(f"progress_messages must be true or false, got {progress_messages!r}")
    if not isinstance(fresh, bool):
        raise InvalidInput(f"fresh must be true or false, got {fresh!r}")
    params = ScanParams(
        fresh=fresh,
        poll_every_seconds=every_seconds_of(every_seconds, fresh=True) if fresh else None,
        game=game,
        market=market,
        level=level,
        min_price_cents=min_price_cents,
        max_price_cents=max_price_cents,
        user_id=owner_id,
        market_options=dict(market_options or {}),
        metadata={PROGRESS_MESSAGES: True} if progress_messages else {},
    )
    with session() as opened:
        return add(
            opened,
            params,
            get_settings(),
            chat_id=chat_id,
            every_seconds=every_seconds,
            overlap=overlap,
            watch_id=watch_id,
        )


def list_watches(owner_id: int, id_prefix: str | None = None) -> list[Watch]:
    """The owner's watches, oldest first; only those whose id starts with `id_prefix` (hex
    digits, as short ids show them) if given. While the bot's allow-list lacks the owner,
    each shows paused, saying so: the watch clock starts none of their passes."""
    from worker.schedules.watch_steering import list_watches as listed

    with session() as opened:
        return listed(opened, owner_id, id_prefix, get_settings().telegram_allowed_users)


def pause_watch(watch_id: uuid.UUID | str, owner_id: int) -> Watch:
    """Start no more passes until resumed; WatchNotFound for another owner's watch."""
    from worker.schedules.watch_steering import pause_watch as pause_it

    with session() as opened:
        return pause_it(opened, watch_id, owner_id)


def resume_watch(watch_id: uuid.UUID | str, owner_id: int) -> Watch:
    """Run passes again; a slot that passed while paused is due at once."""
    from worker.schedules.watch_steering import resume_watch as resume_it

    with session() as opened:
        return resume_it(opened, watch_id, owner_id)


def remove_watch(watch_id: uuid.UUID | str, owner_id: int) -> None:
    """Delete the watch; the scans it already started are kept."""
    from worker.schedules.watch_steering import remove_watch as remove_it

    with session() as opened:
        remove_it(opened, watch_id, owner_id)


def check_poll_seconds(poll_seconds: object) -> None:
    if (
        isinstance(poll_seconds, bool)
        or not isinstance(poll_seconds, int | float)
        or not poll_seconds > 0
    ):
        raise InvalidInput(f"poll_seconds must be a positive number, got {poll_seconds!r}")


def progress_key(checkpoint: Checkpoint) -> tuple[object, ...]:
    """What makes an update worth reporting: state and counts."""
    return (
        checkpoint.status,
        checkpoint.processed_items,
        checkpoint.total_items,
        checkpoint.total_is_lower_bound,
    )


def is_terminal(checkpoint: Checkpoint) -> bool:
    return checkpoint.status in TERMINAL_STATUSES


def require_broker() -> None:
    """ServiceUnavailable unless the broker answers: a scan is never stored unpublishable."""
    from worker.app import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # kombu raises several kinds; all mean "not reachable"
        raise ServiceUnavailable(
            redacted(f"the broker at {app.conf.broker_url} is unreachable: {exc}")
        ) from None


@contextmanager
def session() -> Iterator[Session]:
    """A session whose database failures become one ServiceUnavailable naming the problem."""
    from worker.db import session_scope

    try:
        with session_scope() as opened:
            yield opened
    except DBAPIError as exc:
        # Which database, and the bound it ran into (worker.db.engine), if one it was.
        raise unavailable(exc) from None
