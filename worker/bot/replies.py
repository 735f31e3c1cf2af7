"""What the bot says: help, refusals, scan lines, finds, and the buttons under a scan."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from worker.domain.alert import judging_of_result, judging_text
from worker.domain.checkpoint import Checkpoint
from worker.domain.progress import percent_done, total_text
from worker.domain.status import ScanStatus
from worker.redaction import redacted

ALLOWED_USERS_VARIABLE = "MARKETSCAN_TELEGRAM_ALLOWED_USERS"
# Telegram's longest message text.
MESSAGE_MAX_CHARS = 4096
# The buttons' callback data: "<action>:<scan_id>", 43 bytes of Telegram's 64.
ACTIONS = ("pause", "resume", "cancel")
BUTTON_LABELS = {"pause": "⏸ Pause", "resume": "▶️ Resume", "cancel": "⏹ Cancel"}
STEERED = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}
STATUS_ICONS = {
    ScanStatus.IN_PROGRESS: "🔄",
    ScanStatus.PAUSED: "⏸",
    ScanStatus.COMPLETED: "✅",
    ScanStatus.FAILED: "❌",
    ScanStatus.CANCELLED: "⏹",
}

# (command, its arguments, what it does): the help text and Telegram's command menu.
COMMANDS = (
    ("scan", "GAME [LEVEL] [MIN-MAX]", "start a scan, e.g. /scan csgo standard 1-50"),
    ("status", "[SCAN]", "one scan, or your latest scans"),
    ("top", "SCAN [N]", "the scan's N best finds"),
    ("pause", "SCAN", "pause a scan"),
    ("resume", "SCAN", "resume a paused or failed scan"),
    ("cancel", "SCAN", "cancel a scan for good"),
    (
        "watch",
        "GAME LEVEL EVERY [MIN-MAX] [fresh]",
        "scan again every EVERY (15m, 1h); with fresh, follow new listings every EVERY (2s)",
    ),
    ("watches", "", "your watches"),
    ("unwatch", "WATCH", "remove a watch"),
    ("help", "", "this list"),
)


def in_messages(text: str) -> list[str]:
    """`text` cut at line ends into messages Telegram takes (at most MESSAGE_MAX_CHARS each)."""
    messages: list[str] = []
    current = ""
    for line in text.splitlines():
        line = line[:MESSAGE_MAX_CHARS]
        if current and len(current) + 1 + len(line) > MESSAGE_MAX_CHARS:
            messages.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return [*messages, current] if current else messages


def command_description(arguments: str, does: str) -> str:
    return f"{arguments}: {does}" if arguments else does


def help_text() -> str:
    lines = ["marketscan scans the market for arbitrage. Commands:"]
    lines += [
        f"/{name}{' ' + arguments if arguments else ''}: {does}"
        for name, arguments, does in COMMANDS
    ]
    lines.append("SCAN is a scan id or its first 8 characters, as messages show it.")
    return "\n".join(lines)


def refusal_text(user_id: int, allow_list_empty: bool) -> str:
    if allow_list_empty:
        return (
            f"This bot lets nobody in yet: its operator sets {ALLOWED_USERS_VARIABLE} "
            f"(your id is {user_id}) and restarts it."
        )
    return f"Sorry, you may not command this bot (your id {user_id} is not on its allow-list)."


def keyboard(scan_id: uuid.UUID) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(BUTTON_LABELS[action], callback_data=f"{action}:{scan_id}")
                for action in ACTIONS
            ]
        ]
    )


def keyboard_json(scan_id: uuid.UUID) -> str:
    """The buttons as the Bot API takes them, for the notifier's edits to keep."""
    return json.dumps(keyboard(scan_id).to_dict())


def short(scan_id: uuid.UUID) -> str:
    return scan_id.hex[:8]


def started_text(scan_id: uuid.UUID, game: str, level: str) -> str:
    return f"🔄 Scan {short(scan_id)} ({game}, {level}) started: 0 items processed so far"


def scan_line(checkpoint: Checkpoint) -> str:
    """One scan on one line: icon, short id, status, how far."""
    done = f"{checkpoint.processed_items}"
    total = total_text(checkpoint.total_items, checkpoint.total_is_lower_bound, symbol=True)
    if total:
        done += f"/{total}"
    share = percent_done(
        checkpoint.processed_items, checkpoint.total_items, checkpoint.total_is_lower_bound
    )
    if share is not None:
        done += f" ({share}%)"
    line = (
        f"{STATUS_ICONS[checkpoint.status]} {short(checkpoint.scan_id)} "
        f"{checkpoint.status.value}: {done} items"
    )
    if checkpoint.error_message:
        line += f"; {redacted(checkpoint.error_message)[:300]}"
    return line


def steered_text(action: str, checkpoint: Checkpoint) -> str:
    return f"Scan {short(checkpoint.scan_id)} {STEERED[action]}.\n{scan_line(checkpoint)}"


def scans_text(checkpoints: Sequence[Checkpoint]) -> str:
    if not checkpoints:
        return "You have no scans yet: start one with /scan csgo"
    return "Your latest scans:\n" + "\n".join(scan_line(c) for c in checkpoints)


def top_text(scan_id: uuid.UUID, found: Sequence[dict[str, Any]]) -> str:
    if not found:
        return f"Scan {short(scan_id)} has found nothing yet."
    lines = [f"Scan {short(scan_id)}: best {len(found)} by profit"]
    for row in found:
        judged = judging_text(judging_of_result(row))
        lines.append(
            f"{row['profit_percent']:.1f}% ${row['price_cents'] / 100:.2f} → "
            f"ref ${row['reference_price_cents'] / 100:.2f} (+${row['profit_cents'] / 100:.2f}) "
            f"{row['title']}{' · ' + judged if judged else ''}"
        )
    return "\n".join(lines)
