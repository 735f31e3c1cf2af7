"""The bot's python-telegram-bot Application: the gate, the commands, the buttons.

Pointed at `MARKETSCAN_TELEGRAM_API_URL`, so the tests' loopback Bot API stands in for
Telegram by the library's own base URL. It has no Updater: worker.bot.polling fetches
updates itself, so that an update is confirmed only once its handler has run.
"""

from __future__ import annotations

from typing import Any

import redis
from telegram import BotCommand
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    TypeHandler,
    filters,
)

from worker.bot import access, commands, replies, scan_steering, watch_commands
from worker.bot.context import SERVICES_KEY, BotServices
from worker.bot.refusals import Refusals
from worker.errors import ConfigError
from worker.settings import Settings

# The gate runs first, in a group of its own; the commands after it.
GATE_GROUP = -1
# New messages only: an edited "/scan" would reuse its message's scan id with other params.
NEW_MESSAGES = filters.UpdateType.MESSAGE
# Fewer connections than PTB's default 256 for the one-update-at-a-time loop.
CONNECTION_POOL_SIZE = 8
# A reply Telegram answers 429 is sent again after its retry_after, this many times: a
# burst of replies waits, it is not dropped. (The limiter also keeps to Telegram's 30
# messages a second overall and 20 a minute per group.)
REPLY_RETRIES = 3

BotApplication = Application[Any, Any, Any, Any, Any, Any]


def build(settings: Settings, connection: redis.Redis) -> BotApplication:
    """The Application with every handler, its services in bot_data."""
    if not settings.telegram_bot_token:
        raise ConfigError(
            "marketscan bot needs MARKETSCAN_TELEGRAM_BOT_TOKEN (ask @BotFather for one)"
        )
    timeout = settings.http_timeout_seconds
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(f"{settings.telegram_api_url}/bot")
        .base_file_url(f"{settings.telegram_api_url}/file/bot")
        .updater(None)
        .rate_limiter(AIORateLimiter(max_retries=REPLY_RETRIES))
        .connection_pool_size(CONNECTION_POOL_SIZE)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .get_updates_connect_timeout(timeout)
        .get_updates_read_timeout(timeout)
        .build()
    )
    refusals = Refusals.over(
        settings.telegram_bot_token,
        settings.telegram_api_url,
        timeout,
        settings.telegram_refusal_window_seconds,
    )
    application.bot_data[SERVICES_KEY] = BotServices(settings, connection, refusals)
    application.add_handler(TypeHandler(object, access.gate), group=GATE_GROUP)
    for name, callback in (
        ("start", commands.help_command),
        ("help", commands.help_command),
        ("scan", commands.scan),
        ("status", commands.status),
        ("top", commands.top),
        ("pause", scan_steering.steer_command),
        ("resume", scan_steering.steer_command),
        ("cancel", scan_steering.steer_command),
        ("watch", watch_commands.watch),
        ("watches", watch_commands.watches),
        ("unwatch", watch_commands.unwatch),
    ):
        application.add_handler(CommandHandler(name, callback, filters=NEW_MESSAGES))
    application.add_handler(CallbackQueryHandler(scan_steering.button))
    application.add_error_handler(commands.on_error)
    return application


def bot_commands() -> list[BotCommand]:
    """The command menu Telegram shows the user."""
    return [
        BotCommand(name, replies.command_description(arguments, does)[:256])
        for name, arguments, does in replies.COMMANDS
    ]
