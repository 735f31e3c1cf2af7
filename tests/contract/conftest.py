"""Every implementation of the checkpoint store, behind one fixture, as dramatiq runs its
tests over every broker: PostgreSQL on the suite's real database, JSON files in a temp
dir, and memory; the asyncio flavours are driven through a sync wrapper on one event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from worker.domain.checkpoint import Checkpoint
from worker.state.file_format import read_checkpoint_file, write_checkpoint_file
from worker.state.local import LocalStateManager
from worker.state.manager import SyncStateManager
from worker.state.memory import AsyncMemoryStateManager, MemoryCheckpointStore, MemoryStateManager
from worker.state.protocol import (
    AsyncStateManagerProtocol,
    CheckpointStore,
    EmergencyShutdown,
)

T = TypeVar("T")
_SYNC_ON_BOTH_FACES = frozenset(
    {
        "max_consecutive_errors",
        "consecutive_errors",
        "is_paused",
        "record_error",
        "reset_error_counter",
        "pause_operations",
        "resume_operations",
        "set_shutdown_callback",
    }
)


class ManagerUnderTest(CheckpointStore, EmergencyShutdown, Protocol):
    """What the suite drives: the store's methods and the manager's error counter."""


# Builds another manager of the same flavour from constructor keywords
# (checkpoint_interval, max_consecutive_errors).
Build = Callable[..., ManagerUnderTest]


@dataclass(frozen=True)
class StoreUnderTest:
    """One implementation, and what the suite needs to know or do beside its public API."""

    store: ManagerUnderTest
    # Make a row look untouched for `days` days: cleanup's input, which no method can set.
    age: Callable[[uuid.UUID, int], None]
    build: Build
    # The file store creates a scan on its first save (the seed's development example).
    creates_on_save: bool = False


class Awaited:
    """An asyncio state manager driven from sync test code, every call on one loop."""

    def __init__(self, store: AsyncStateManagerProtocol, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        # The error counter's sync methods and properties are the same on both faces.
        if name in _SYNC_ON_BOTH_FACES:
            return getattr(self._store, name)
        raise AttributeError(name)

    def trigger_emergency_shutdown(self, reason: str) -> None:
        self._wait(self._store.trigger_emergency_shutdown(reason))

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(call)

    def create_checkpoint(self, *args: Any, **kwargs: Any) -> Checkpoint:
        return self._wait(self._store.create_checkpoint(*args, **kwargs))

    def save_checkpoint(self, *args: Any, **kwargs: Any) -> Checkpoint:
        return self._wait(self._store.save_checkpoint(*args, **kwargs))

    def load_checkpoint(self, scan_id: uuid.UUID | str) -> Checkpoint | None:
        return self._wait(self._store.load_checkpoint(scan_id))

    def get_active_checkpoints(self, *args: Any, **kwargs: Any) -> list[Checkpoint]:
        return self._wait(self._store.get_active_checkpoints(*args, **kwargs))

    def mark_checkpoint_completed(self, scan_id: uuid.UUID | str) -> Checkpoint:
        return self._wait(self._store.mark_checkpoint_completed(scan_id))

    def mark_checkpoint_failed(self, scan_id: uuid.UUID | str, error_message: str) -> Checkpoint:
        return self._wait(self._store.mark_checkpoint_failed(scan_id, error_message))

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        return self._wait(self._store.cleanup_old_checkpoints(days))


@pytest.fixture
def event_loop_for_store() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _postgres(request: pytest.FixtureRequest) -> StoreUnderTest:
    session: Session = request.getfixturevalue("session")

    def age(scan_id: uuid.UUID, days: int) -> None:
        session.execute(
            update(ScanCheckpoint)
            .where(ScanCheckpoint.scan_id == scan_id)
            .values(updated_at=func.now() - timedelta(days=days))
        )
        session.commit()

    return StoreUnderTest(
        SyncStateManager(session), age, lambda **kwargs: SyncStateManager(session, **kwargs)
    )


def _files(request: pytest.FixtureRequest) -> StoreUnderTest:
    state_dir: Path = request.getfixturevalue("tmp_path") / "checkpoints"
    loop = request.getfixturevalue("event_loop_for_store")

    def age(scan_id: uuid.UUID, days: int) -> None:
        path = state_dir / f"{scan_id}.json"
        checkpoint = read_checkpoint_file(path)
        assert checkpoint is not None and checkpoint.updated_at is not None
        write_checkpoint_file(
            path, replace(checkpoint, updated_at=checkpoint.updated_at - timedelta(days=days))
        )

    return StoreUnderTest(
        Awaited(LocalStateManager(state_dir), loop),
        age,
        lambda **kwargs: Awaited(LocalStateManager(state_dir, **kwargs), loop),
        creates_on_save=True,
    )


def _memory_age(rows: MemoryCheckpointStore) -> Callable[[uuid.UUID, int], None]:
    def age(scan_id: uuid.UUID, days: int) -> None:
        checkpoint = rows.checkpoints[scan_id]
        assert checkpoint.updated_at is not None
        rows.checkpoints[scan_id] = replace(
            checkpoint, updated_at=checkpoint.updated_at - timedelta(days=days)
        )

    return age


def _memory(request: pytest.FixtureRequest) -> StoreUnderTest:
    manager = MemoryStateManager()
    return StoreUnderTest(
        manager, _memory_age(manager.store), lambda **kwargs: MemoryStateManager(**kwargs)
    )


def _memory_async(request: pytest.FixtureRequest) -> StoreUnderTest:
    manager = AsyncMemoryStateManager()
    loop = request.getfixturevalue("event_loop_for_store")
    return StoreUnderTest(
        Awaited(manager, loop),
        _memory_age(manager.store),
        lambda **kwargs: Awaited(AsyncMemoryStateManager(**kwargs), loop),
    )


_IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest], StoreUnderTest]] = {
    "postgres": _postgres,
    "files": _files,
    "memory": _memory,
    "memory-async": _memory_async,
}


@pytest.fixture(params=sorted(_IMPLEMENTATIONS))
def under_test(request: pytest.FixtureRequest) -> StoreUnderTest:
    return _IMPLEMENTATIONS[request.param](request)
