"""What every handler of the bot shares: settings, the broker's Redis, the sender's scans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis
from telegram.ext import ContextTypes

from worker import async_client
from worker.bot.arguments import ScanRef
from worker.bot.refusals import Refusals
from worker.domain.checkpoint import Checkpoint
from worker.errors import CheckpointNotFound, InvalidInput
from worker.settings import Settings

SERVICES_KEY = "marketscan"
# How many of a user's scans /status without SCAN lists.
LATEST_SCANS = 5


@dataclass(frozen=True)
class BotServices:
    """Made once at start-up and handed to every handler through the application's bot_data."""

    settings: Settings
    # The notifier's state (worker.notify) lives in the broker's Redis.
    redis: redis.Redis
    refusals: Refusals


def services(context: ContextTypes.DEFAULT_TYPE) -> BotServices:
    return services_in(context.bot_data)


def services_in(bot_data: Mapping[str, object]) -> BotServices:
    found = bot_data[SERVICES_KEY]
    assert isinstance(found, BotServices)
    return found


async def own_scan(user_id: int, ref: ScanRef) -> Checkpoint:
    """The user's scan named by `ref`; another user's scan is as unknown as a missing one."""
    if ref.scan_id is not None:
        try:
            checkpoint = await async_client.status(ref.scan_id)
        except CheckpointNotFound:
            checkpoint = None
        if checkpoint is None or checkpoint.user_id != user_id:
            raise CheckpointNotFound(f"you have no scan {ref.scan_id}")
        return checkpoint
    matching = await async_client.scans(user_id=user_id, id_prefix=ref.id_prefix)
    if not matching:
        raise CheckpointNotFound(f"you have no scan starting with {ref.prefix}")
    if len(matching) > 1:
        raise InvalidInput(f"SCAN {ref.prefix} names {len(matching)} of your scans: give more")
    return matching[0]


async def latest_scans(user_id: int) -> list[Checkpoint]:
    return (await async_client.scans(user_id=user_id))[:LATEST_SCANS]
