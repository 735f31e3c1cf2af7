"""Watches through the client: stored once per watch_id, steered only by their owner, and bad
input stores nothing. Asyncio gives the same."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanWatch
from worker import async_client, client
from worker.errors import InvalidInput, WatchNotFound

OWNER = 5_000_000_001
STRANGER = 5_000_000_002


def _stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ScanWatch)) or 0


def test_an_owner_adds_lists_pauses_resumes_and_removes_a_watch(
    env: dict[str, str], session: Session
) -> None:
    # When the owner adds a watch every 15 minutes
    watch = client.add_watch(
        "csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=900, min_price_cents=200
    )
    # Then it is listed, due at once, running, with the scan's params
    assert [w.watch_id for w in client.list_watches(OWNER)] == [watch.watch_id]
    assert watch.paused is False and watch.overlap == "skip"
    assert watch.params.min_price_cents == 200 and watch.params.user_id == OWNER
    assert watch.next_due_at <= watch.created_at
    # And pause and resume flip it
    assert client.pause_watch(watch.watch_id, OWNER).paused is True
    assert client.resume_watch(str(watch.watch_id), OWNER).paused is False
    # And remove deletes it
    client.remove_watch(watch.watch_id, OWNER)
    assert client.list_watches(OWNER) == []
    assert _stored(session) == 0


def test_another_owner_cannot_see_or_steer_a_watch(env: dict[str, str], session: Session) -> None:
    watch = client.add_watch("csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=60)
    # Then a stranger lists nothing, and each command answers as for an unknown watch
    assert client.list_watches(STRANGER) == []
    unknown = f"no watch with watch_id {watch.watch_id}"
    for steer in (client.pause_watch, client.resume_watch, client.remove_watch):
        with pytest.raises(WatchNotFound, match=unknown):
            steer(watch.watch_id, STRANGER)
    # And the watch is untouched
    assert client.list_watches(OWNER)[0].paused is False
    with pytest.raises(WatchNotFound, match=f"no watch with watch_id {(other := uuid.uuid4())}"):
        client.pause_watch(other, OWNER)


def test_adding_with_the_same_watch_id_twice_stores_one_watch(
    env: dict[str, str], session: Session
) -> None:
    watch_id = uuid.uuid4()
    first = client.add_watch(
        "csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=60, watch_id=watch_id
    )
    again = client.add_watch(
        "csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=60, watch_id=str(watch_id)
    )
    assert first.watch_id == again.watch_id == watch_id
    assert _stored(session) == 1
    # But the same id with other settings (or another owner) is refused
    with pytest.raises(InvalidInput, match=f"watch_id {watch_id} is taken"):
        client.add_watch(
            "csgo", owner_id=STRANGER, chat_id=OWNER, every_seconds=60, watch_id=watch_id
        )
    assert _stored(session) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every_seconds": 5}, "every_seconds must be at least 10s without --fresh"),
        ({"overlap": "queue"}, "overlap must be one of skip, buffer_one"),
        ({"level": "ultra"}, "level"),
        ({"min_price_cents": -1}, "min_price_cents"),
        ({"chat_id": "me"}, "chat_id must be a 64-bit integer"),
        ({"market_options": {"colour": "red"}}, "colour"),
        ({"watch_id": "not-a-uuid"}, "watch_id must be a UUID"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    env: dict[str, str], session: Session, options: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"owner_id": OWNER, "chat_id": OWNER, "every_seconds": 60}
    arguments.update(options)
    with pytest.raises(InvalidInput, match=message):
        client.add_watch("csgo", **arguments)  # type: ignore[arg-type]
    assert _stored(session) == 0


def test_the_async_client_steers_watches_alike(env: dict[str, str], session: Session) -> None:
    async def scenario() -> None:
        watch = await async_client.add_watch(
            "csgo", owner_id=OWNER, chat_id=OWNER, every_seconds=600
        )
        assert [w.watch_id for w in await async_client.list_watches(OWNER)] == [watch.watch_id]
        assert (await async_client.pause_watch(watch.watch_id, OWNER)).paused is True
        assert (await async_client.resume_watch(watch.watch_id, OWNER)).paused is False
        with pytest.raises(WatchNotFound):
            await async_client.remove_watch(watch.watch_id, STRANGER)
        await async_client.remove_watch(watch.watch_id, OWNER)

    asyncio.run(scenario())
    assert _stored(session) == 0
