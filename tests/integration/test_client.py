"""The client for apps: starts are idempotent on a caller's scan_id, configured by the
worker's settings, and bad input stores and enqueues nothing. Asyncio gives the same."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from worker import async_client, client
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput
from worker.settings import get_settings


def _queued(redis_url: str) -> list[PageMessage]:
    """The page messages waiting in the marketscan queue, oldest first."""
    broker = redis.Redis.from_url(redis_url)
    try:
        raw = broker.lrange("marketscan", 0, -1)
    finally:
        broker.close()
    messages = [json.loads(item) for item in reversed(raw)]
    return [PageMessage.from_args(*json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


def _stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ScanCheckpoint)) or 0


def test_a_start_with_the_same_scan_id_twice_makes_one_scan_and_republishes_its_fence(
    env: dict[str, str], redis_url: str, session: Session
) -> None:
    # Given a caller-chosen scan_id
    scan_id = uuid.uuid4()
    # When the app starts it twice (a retry after a timeout, say)
    first = client.start("csgo", user_id=7, market_options={"items": 300}, scan_id=scan_id)
    second = client.start("csgo", user_id=7, market_options={"items": 300}, scan_id=scan_id)
    # Then both return the scan_id, one scan is stored, readable at once
    assert first == second == scan_id
    assert _stored(session) == 1
    assert client.status(scan_id).status.value == "in_progress"
    # And the second start republished page 0 at the row's own fence (a duplicate there)
    queued = _queued(redis_url)
    assert len(queued) == 2 and queued[0] == queued[1]
    assert (queued[0].scan_id, queued[0].page_seq, queued[0].page_offset) == (scan_id, 0, 0)


def test_a_start_reusing_a_scan_id_with_other_params_is_refused(
    env: dict[str, str], redis_url: str, session: Session
) -> None:
    scan_id = client.start("csgo", user_id=7)
    with pytest.raises(DuplicateScan, match=f"scan_id {scan_id} is taken by a scan with other"):
        client.start("csgo", user_id=8, scan_id=scan_id)
    assert _stored(session) == 1 and len(_queued(redis_url)) == 1


def test_a_start_is_configured_by_the_settings(
    env: dict[str, str], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 10 % fee and levels of our own in the environment
    monkeypatch.setenv("MARKETSCAN_FEE", "0.1")
    monkeypatch.setenv("MARKETSCAN_LEVELS", "cheap=50-5000:0.02")
    get_settings.cache_clear()
    # When the client starts a scan at that level
    scan_id = client.start("csgo", level="cheap")
    # Then the stored params froze both
    frozen = ScanParams.from_json(client.status(scan_id).params)
    assert (frozen.fee, frozen.price_band, frozen.min_profit) == (0.1, (50, 5000), 0.02)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"level": "gold"}, "level must be one of boost, medium, pro, standard, got 'gold'"),
        ({"page_size": 0}, "page_size must be an integer from 1 to 100"),
        ({"scan_id": "nope"}, "scan_id must be a UUID"),
        ({"market_options": {"colour": 1}}, "colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored_or_enqueued(
    env: dict[str, str], redis_url: str, session: Session, options: dict[str, object],
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidInput, match=message):
        client.start("csgo", **options)  # type: ignore[arg-type]
    assert _stored(session) == 0 and _queued(redis_url) == []


def test_steering_and_reading_through_the_client(env: dict[str, str]) -> None:
    scan_id = client.start("csgo")
    assert client.pause(scan_id).status.value == "paused"
    assert client.resume(scan_id).status.value == "in_progress"
    assert client.cancel(scan_id).status.value == "cancelled"
    # A cancelled scan is terminal: progress yields it once and ends
    assert [c.status.value for c in client.progress(scan_id)] == ["cancelled"]
    assert client.results(scan_id) == []
    with pytest.raises(CheckpointNotFound):
        client.status(uuid.uuid4())


def test_the_async_client_starts_steers_and_follows_the_same_way(env: dict[str, str]) -> None:
    async def scenario() -> list[str]:
        scan_id = uuid.uuid4()
        assert await async_client.start("csgo", scan_id=scan_id) == scan_id
        assert await async_client.start("csgo", scan_id=scan_id) == scan_id
        await async_client.cancel(scan_id)
        return [c.status.value async for c in async_client.progress(scan_id)]

    assert asyncio.run(scenario()) == ["cancelled"]
    with pytest.raises(InvalidInput, match="poll_seconds must be a positive number"):
        asyncio.run(anext(async_client.progress(uuid.uuid4(), poll_seconds=0)))
