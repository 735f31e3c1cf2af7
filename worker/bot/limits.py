"""What one chat user may have at once: a few running scans and watches, on the operator's
budget. The CLI and the client are the operator's own and are not limited.

The bot handles one update at a time, so a count read just before a start cannot be
overtaken by another of the same user's commands.
"""

from __future__ import annotations

from worker.errors import InvalidInput
from worker.settings import Settings


def check_running_scans(running: int, settings: Settings) -> None:
    if running >= settings.chat_max_running_scans:
        raise InvalidInput(
            f"you have {running} running scans, and a chat user may have at most "
            f"{settings.chat_max_running_scans} at once: /cancel one or wait for one to end"
        )


def check_watches(watches: int, settings: Settings) -> None:
    if watches >= settings.chat_max_watches:
        raise InvalidInput(
            f"you have {watches} watches, and a chat user may have at most "
            f"{settings.chat_max_watches}: /unwatch one first"
        )
