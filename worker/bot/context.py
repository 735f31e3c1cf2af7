"""What every handler of the bot shares: settings, the broker's Redis, the sender's scans."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from telegram import Update
from telegram.ext import ContextTypes

from worker.bot.arguments import ScanRef
from worker.cli import async_client
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


def services(context: ContextTypes.DEFAULT_TYPE) -> BotServices:
    found = context.bot_data[SERVICES_KEY]
    assert isinstance(found, BotServices)
    return found


def sender_id(update: Update) -> int:
    """The Telegram id of who sent the update; the gate lets no update without one through."""
    assert update.effective_user is not None
    return update.effective_user.id


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
    matching = [c for c in await async_client.scans(user_id=user_id) if ref.matches(c.scan_id)]
    if not matching:
        raise CheckpointNotFound(f"you have no scan starting with {ref.prefix}")
    if len(matching) > 1:
        raise InvalidInput(f"SCAN {ref.prefix} names {len(matching)} of your scans: give more")
    return matching[0]


async def latest_scans(user_id: int) -> list[Checkpoint]:
    return (await async_client.scans(user_id=user_id))[:LATEST_SCANS]
