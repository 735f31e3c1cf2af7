"""What one chat user may start: a few running scans and watches, refused past that.

The limits are the chat's: the operator's CLI and client start what they like.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.fakes.telegram_server import FakeTelegram
from tests.support.bot import ALLOWED, ask, scan_count
from tests.support.processes import CeleryProcess
from worker import client


def test_a_chat_user_past_their_limits_is_refused_in_one_line_and_nothing_is_started(
    env: dict[str, str],
    database_url: str,
    telegram: FakeTelegram,
    start_bot: Callable[..., CeleryProcess],
) -> None:
    # Given a bot that lets a chat user run one scan and keep one watch (no worker runs them)
    start_bot(MARKETSCAN_CHAT_MAX_RUNNING_SCANS="1", MARKETSCAN_CHAT_MAX_WATCHES="1")
    # When the user starts a scan, then another
    assert ask(telegram, ALLOWED, "/scan csgo").startswith("🔄 Scan ")
    refused = ask(telegram, ALLOWED, "/scan csgo")
    # Then the second is refused in one line naming the limit, and no second scan exists
    assert refused == (
        "⚠️ you have 1 running scans, and a chat user may have at most 1 at once: "
        "/cancel one or wait for one to end"
    )
    assert scan_count(database_url) == 1
    # When they add a watch, then another
    assert ask(telegram, ALLOWED, "/watch csgo standard 15m").startswith("👁 Watch ")
    refused = ask(telegram, ALLOWED, "/watch csgo standard 1h")
    # Then the second is refused, and they still have one watch
    assert refused == (
        "⚠️ you have 1 watches, and a chat user may have at most 1: /unwatch one first"
    )
    assert len(client.list_watches(ALLOWED)) == 1
    # And the operator's client is not limited for the same user
    client.start("csgo", user_id=ALLOWED)
    client.add_watch("csgo", owner_id=ALLOWED, chat_id=ALLOWED, every_seconds=600)
    assert scan_count(database_url) == 2
    assert len(client.list_watches(ALLOWED)) == 2
