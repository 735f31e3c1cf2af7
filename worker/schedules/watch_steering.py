"""A watch's owner steers it: add, list, pause, resume, remove. These use cases commit.

Everything about a request is checked before anything is stored; an owner sees and
steers only their own watches (another's is answered as not found).
"""

from __future__ import annotations

import uuid

from worker.db import Session, fresh_polls
from worker.db import watches as watch_store
from worker.domain import watch as watch_rules
from worker.domain.scan_params import ScanParams
from worker.domain.validation import user_id_of
from worker.domain.watch import Watch
from worker.errors import InvalidInput
from worker.markets.registry import check_market_options
from worker.settings import Settings


def add_watch(
    session: Session,
    params: ScanParams,
    settings: Settings,
    *,
    chat_id: int,
    every_seconds: int,
    overlap: str,
    watch_id: uuid.UUID | str | None = None,
) -> Watch:
    """Store a watch whose first pass is due at once. Idempotent on `watch_id`."""
    chat = watch_rules.chat_id_of(chat_id)
    every = watch_rules.every_seconds_of(every_seconds, fresh=params.fresh)
    policy = watch_rules.overlap_of(overlap)
    check_market_options(params, settings)
    params.configured(settings)  # the level must exist now, not only at the first pass
    wanted = uuid.uuid4() if watch_id is None else watch_rules.watch_id_of(watch_id)
    created = watch_store.create_watch(
        session,
        wanted,
        owner_id=params.user_id,
        chat_id=chat,
        params=params.to_json(),
        every_seconds=every,
        overlap=policy,
    )
    if created:
        session.commit()
        return watch_store.owned_watch(session, wanted, params.user_id)
    session.rollback()
    existing = watch_store.any_watch(session, wanted)
    if existing is None:  # removed between the INSERT and this read
        raise InvalidInput(f"watch_id {wanted} was removed while being added again")
    same = (
        existing.owner_id == params.user_id
        and existing.chat_id == chat
        and existing.params == params
        and existing.every_seconds == every
        and existing.overlap == policy
    )
    if not same:
        raise InvalidInput(f"watch_id {wanted} is taken by a watch with other settings")
    return existing


def list_watches(
    session: Session,
    owner_id: int,
    id_prefix: str | None = None,
    allowed_owners: frozenset[int] = frozenset(),
) -> list[Watch]:
    """The owner's watches, each paused with its reason while the allow-list lacks them."""
    listed = watch_store.list_watches(session, user_id_of(owner_id), id_prefix)
    return [watch_rules.as_clocked(watch, allowed_owners) for watch in listed]


def pause_watch(session: Session, watch_id: uuid.UUID | str, owner_id: int) -> Watch:
    """No pass starts while paused; a running pass goes on (pause the scan to stop it).
    A fresh watch's one scan is paused with it."""
    return _set_paused(session, watch_id, owner_id, paused=True)


def resume_watch(session: Session, watch_id: uuid.UUID | str, owner_id: int) -> Watch:
    """Passes start again; a fresh watch's scan polls again from its watermark."""
    return _set_paused(session, watch_id, owner_id, paused=False)


def remove_watch(session: Session, watch_id: uuid.UUID | str, owner_id: int) -> None:
    """Remove the watch; a fresh watch's scan is cancelled with it (its finds stay)."""
    owner = user_id_of(owner_id)
    watch = watch_store.owned_watch(session, watch_rules.watch_id_of(watch_id), owner)
    if watch.params.fresh and watch.last_scan_id is not None:
        fresh_polls.cancel_scan(session, watch.last_scan_id)
    watch_store.delete_watch(session, watch.watch_id, owner)
    session.commit()


def _set_paused(
    session: Session, watch_id: uuid.UUID | str, owner_id: int, *, paused: bool
) -> Watch:
    watch = watch_store.set_paused(
        session, watch_rules.watch_id_of(watch_id), user_id_of(owner_id), paused
    )
    if watch.params.fresh and watch.last_scan_id is not None:
        steer = fresh_polls.pause_scan if paused else fresh_polls.resume_scan
        steer(session, watch.last_scan_id)
    session.commit()
    return watch
