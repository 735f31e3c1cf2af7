"""The seed guide's manager over any checkpoint store, each method written once for both faces.

A manager's method is the store's method (its signature and text, worker.state.records) and
what the manager remembers of the result for the final save on SIGTERM/SIGINT: one
`SeedMethod` line. Read from a sync manager it calls the store; read from an asyncio manager
it is the same call, awaited, run by the manager's runner: inline for files and memory,
inside `AsyncSession.run_sync` on PostgreSQL (procrastinate's way: one sync core, and an
awaitable face that runs it).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Coroutine
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from worker.domain import validation
from worker.state.error_guard import AsyncErrorGuard, ErrorGuard, SyncErrorGuard
from worker.state.final_save import FinalCheckpoint, Progress, SaveFinal
from worker.state.protocol import CheckpointStore
from worker.state.signatures import named_as

P = ParamSpec("P")
R = TypeVar("R")
# What the manager does with a store method's result: remember or forget the scan's progress.
Then = Callable[[FinalCheckpoint, R], R]


class SeedMethod(Generic[P, R]):
    """One seed method, for both faces: the store's method of that name, checked against its
    signature whatever the store accepts, then `then` on the result.

    Read from a sync manager it is that call; from an asyncio manager, the same call awaited,
    run by the manager's runner. mypy reads either face's signature off the descriptor.
    """

    def __init__(
        self, contract: Callable[Concatenate[CheckpointStore, P], R], then: Then[R] | None = None
    ) -> None:
        self._name = contract.__name__
        self._signature = inspect.signature(contract)
        parameters = list(self._signature.parameters.values())[1:]  # after self
        self._keywords = frozenset(parameter.name for parameter in parameters)
        self._positional = sum(
            parameter.kind is parameter.POSITIONAL_OR_KEYWORD for parameter in parameters
        )
        self._then = then

        def sync_face(manager: CheckpointManager, /, *args: Any, **kwargs: Any) -> R:
            return self._call(manager, manager.store, args, kwargs)

        async def async_face(manager: AsyncCheckpointManager, /, *args: Any, **kwargs: Any) -> R:
            return await manager._run(lambda store: self._call(manager, store, args, kwargs))

        self._sync_face = named_as(sync_face, contract)
        self._async_face = named_as(async_face, contract)

    def _call(
        self,
        manager: FinalCheckpoint,
        store: CheckpointStore,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        if len(args) > self._positional or not self._keywords.issuperset(kwargs):
            # What the method does not take, a store might (the database's own keywords):
            # refused here as a call of the method itself would be.
            self._signature.bind(store, *args, **kwargs)
        result: R = getattr(store, self._name)(*args, **kwargs)
        return result if self._then is None else self._then(manager, result)

    @overload
    def __get__(self, manager: None, owner: type[Any]) -> Callable[..., Any]: ...
    @overload
    def __get__(
        self, manager: AsyncCheckpointManager, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, manager: SyncCheckpointManager, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, manager: CheckpointManager | None, owner: type[Any]) -> Callable[..., Any]:
        awaited = issubclass(owner, AsyncCheckpointManager)
        face = self._async_face if awaited else self._sync_face
        return face if manager is None else MethodType(face, manager)


class CheckpointManager(FinalCheckpoint, ErrorGuard):
    """The seed guide's manager: its checkpoint interval, a final save on SIGTERM/SIGINT, and
    the upstream module's error counter, pause and emergency shutdown, over `store`."""

    store: CheckpointStore

    create_checkpoint = SeedMethod(CheckpointStore.create_checkpoint, FinalCheckpoint._remember)
    save_checkpoint = SeedMethod(CheckpointStore.save_checkpoint, FinalCheckpoint._saved)
    load_checkpoint = SeedMethod(CheckpointStore.load_checkpoint)
    get_active_checkpoints = SeedMethod(CheckpointStore.get_active_checkpoints)
    mark_checkpoint_completed = SeedMethod(
        CheckpointStore.mark_checkpoint_completed, FinalCheckpoint._finished
    )
    mark_checkpoint_failed = SeedMethod(
        CheckpointStore.mark_checkpoint_failed, FinalCheckpoint._finished
    )
    cleanup_old_checkpoints = SeedMethod(CheckpointStore.cleanup_old_checkpoints)

    def __init__(
        self,
        checkpoint_interval: int = validation.DEFAULT_CHECKPOINT_INTERVAL,
        max_consecutive_errors: int = validation.DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__()
        self.checkpoint_interval = validation.checkpoint_interval_of(checkpoint_interval)
        self._init_error_guard(max_consecutive_errors)

    def _final_saver(self) -> SaveFinal:
        store = self.store

        def save(scan: uuid.UUID, progress: Progress) -> None:
            save_progress(store, scan, progress)

        return save


def save_progress(store: CheckpointStore, scan: uuid.UUID, progress: Progress) -> None:
    """The final save: the scan's latest progress, remembered in memory, written to `store`."""
    store.save_checkpoint(
        scan,
        progress.cursor,
        progress.processed_items,
        progress.total_items,
        total_is_lower_bound=progress.total_is_lower_bound,
    )


class SyncCheckpointManager(CheckpointManager, SyncErrorGuard):
    """The seed guide's manager for sync code: every method returns its result."""


class AsyncCheckpointManager(CheckpointManager, AsyncErrorGuard):
    """The seed guide's manager for asyncio code: every method is awaited."""

    async def _run(self, work: Callable[[CheckpointStore], R]) -> R:
        """`work` on the store. Files and memory answer in milliseconds, so it runs inline
        rather than in a thread."""
        return work(self.store)
