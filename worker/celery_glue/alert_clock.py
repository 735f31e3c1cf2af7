"""Beat's alert follower: each tick alerts the committed finds of watch passes
(worker.schedules.alerting), with one Redis connection and one Bot API client for life. The
configuration, the listing link's base included, is read here and passed in."""

from __future__ import annotations

import functools

from worker import broker_redis
from worker.db import session_scope
from worker.notify import alerts
from worker.notify.telegram import TelegramClient
from worker.schedules import alerting
from worker.settings import get_settings

REDIS_TIMEOUT_SECONDS = 5.0


@functools.cache
def _desk() -> alerts.AlertDesk:
    settings = get_settings()
    assert settings.telegram_bot_token is not None
    return alerts.AlertDesk(
        broker_redis.new_client(
            settings.broker_url,
            settings.sentinel_master,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        ),
        TelegramClient(
            settings.telegram_api_url, settings.telegram_bot_token, settings.http_timeout_seconds
        ),
        chat_interval_seconds=settings.alert_chat_interval_seconds,
        messages_per_second=settings.alert_messages_per_second,
        dedup_seconds=settings.alert_dedup_seconds,
        pass_lock_seconds=alerts.pass_lock_seconds(settings.http_timeout_seconds),
    )


def alerts_on() -> bool:
    """Alerts need a bot token; without one the follower is not started."""
    return bool(get_settings().telegram_bot_token)


def alert_committed_finds() -> int:
    """One tick of the follower; how many alerts it sent."""
    settings = get_settings()
    return alerting.tick(
        session_scope, _desk(), settings.listing_link_url, settings.telegram_allowed_users
    )
