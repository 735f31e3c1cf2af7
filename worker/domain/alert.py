"""An alert: the finds of one committed page of a watch's pass, as one Telegram message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Telegram refuses a message over 4096 characters; a title is cut well before that.
TITLE_MAX_CHARS = 80


@dataclass(frozen=True)
class Find:
    """One stored opportunity, as an alert shows it (amounts in integer cents)."""

    opportunity_id: int
    item_id: str
    title: str
    price_cents: int
    reference_price_cents: int
    profit_cents: int
    profit_percent: float
    page_seq: int


def dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def alert_text(scan_id: uuid.UUID, finds: list[Find], top: int) -> str:
    """The best `top` finds by profit, then "… and M more"; each with price, reference, profit."""
    best = sorted(finds, key=lambda find: (-find.profit_cents, find.item_id))
    page = finds[0].page_seq + 1 if finds else 0
    plural = "s" if len(finds) != 1 else ""
    lines = [f"🔔 {len(finds)} new find{plural} (scan {str(scan_id)[:8]}, page {page})"]
    for rank, find in enumerate(best[:top], start=1):
        title = find.title if len(find.title) <= TITLE_MAX_CHARS else find.title[:79] + "…"
        lines.append(
            f"{rank}. {title}: {dollars(find.price_cents)} (reference "
            f"{dollars(find.reference_price_cents)}), profit {dollars(find.profit_cents)} "
            f"({find.profit_percent:.1f}%)"
        )
    if len(best) > top:
        lines.append(f"… and {len(best) - top} more")
    return "\n".join(lines)
