"""The checkpoint store on PostgreSQL: worker.db.checkpoints on one sync Session.

Each call is a transaction of its own, committed before it returns (a checkpoint is durable
when the call returns) and rolled back if anything is raised, so that a refused call leaves
the caller's session usable. StateManager runs it on a `Session`, or inside
`AsyncSession.run_sync` for its asyncio face.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from worker.db import Session, checkpoints, retention
from worker.settings import get_settings
from worker.state.signatures import named_as

P = ParamSpec("P")
R = TypeVar("R")


def _committed(
    run: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[PostgresCheckpointStore, P], R]:
    """A store method that is `run` (a worker.db.checkpoints function) in its own transaction,
    with `run`'s signature, which mypy holds to the store protocol."""

    def method(store: PostgresCheckpointStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return store.in_transaction(run, *args, **kwargs)

    return named_as(method, run)


class PostgresCheckpointStore:
    """The seed API's checkpoints as rows of `scan_checkpoints`, through one sync Session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def in_transaction(
        self, run: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """`run(session, ...)`, then commit; roll back whatever it raised."""
        try:
            result = run(self.session, *args, **kwargs)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return result

    create_checkpoint = _committed(checkpoints.create_checkpoint)
    save_checkpoint = _committed(checkpoints.save_checkpoint)
    load_checkpoint = _committed(checkpoints.load_checkpoint)
    get_active_checkpoints = _committed(checkpoints.get_active_checkpoints)
    mark_checkpoint_completed = _committed(checkpoints.mark_checkpoint_completed)
    mark_checkpoint_failed = _committed(checkpoints.mark_checkpoint_failed)

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Delete finished checkpoints untouched for `days` days, paced in committed batches
        (worker.db.retention); how many were deleted."""
        settings = get_settings()
        return self.in_transaction(
            retention.cleanup_old_checkpoints,
            days,
            settings.cleanup_batch_size,
            settings.cleanup_pause_ratio,
        )
