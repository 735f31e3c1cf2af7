"""An alert: the finds one commit of a watch's pass stored, as Telegram messages that each fit
Telegram's limit, every find on one line with its price, reference, profit and listing link.

The messages are plain text (no parse mode): Telegram makes a bare URL a link by itself, and
a title needs no escaping. The offer id is URL-quoted, so no id can bend the link.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from worker.domain.reference import SECOND_MARKETS, TRADE_HOLD_DAYS

# Telegram refuses a message over 4096 characters, which it counts in UTF-16 code units (🔔
# is two of them); counting in them keeps every message under the limit, never over.
MESSAGE_MAX_UNITS = 4096
# A title is cut well before that, so that one find's line stays a line.
TITLE_MAX_CHARS = 80
CUT = "…"


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
    # How it was judged (worker.domain.appraisal; None in finds stored before).
    judging: Judging | None = None


@dataclass(frozen=True)
class Judging:
    """A find's fee (basis points, source), both exits' profits, liquidity and lock."""

    fee_bps: int
    fee_source: str
    sell_now_profit_cents: int | None
    listing_profit_cents: int | None
    sales_7d: int | None
    locked: bool
    lock_days: int | None
    # What it was judged against: a second market's kind sells there, after the trade hold.
    reference_kind: str | None = None


def judging_of_result(row: Mapping[str, Any]) -> Judging | None:
    """How a find was judged, from its results row (worker.db.scan_queries); None for one
    stored before fees were looked up."""
    if row.get("fee_bps") is None or row.get("fee_source") is None:
        return None
    return Judging(
        fee_bps=row["fee_bps"],
        fee_source=row["fee_source"],
        sell_now_profit_cents=row.get("sell_now_profit_cents"),
        listing_profit_cents=row.get("listing_profit_cents"),
        sales_7d=row.get("sales_7d"),
        locked=bool(row.get("locked")),
        lock_days=row.get("lock_days"),
        reference_kind=row.get("reference_kind"),
    )


def judging_text(judging: Judging | None) -> str:
    """What a find line adds: `fee 5.00% (reduced) · sell now +$1.20 · listing +$2.10 ·
    12 sales/7d · locked 7d`, or against a second market `sell on Skinport +$2.10 · fee
    8.00% (skinport) · 12 sales/7d on Skinport · 7-day hold`; empty for a find stored
    before fees were looked up."""
    if judging is None:
        return ""
    market = SECOND_MARKETS.get(judging.reference_kind or "")
    fee = f"fee {judging.fee_bps / 100:.2f}% ({judging.fee_source})"
    if market is not None:
        parts = [f"sell on {market} {_signed(judging.listing_profit_cents)}", fee]
        if judging.sales_7d is not None:
            parts.append(f"{judging.sales_7d} sales/7d on {market}")
        parts.append(f"{TRADE_HOLD_DAYS}-day hold")
    else:
        parts = [fee]
        for name, profit in (
            ("sell now", judging.sell_now_profit_cents),
            ("listing", judging.listing_profit_cents),
        ):
            if profit is not None:
                parts.append(f"{name} {_signed(profit)}")
        if judging.sales_7d is not None:
            parts.append(f"{judging.sales_7d} sales/7d")
    if judging.locked:
        parts.append("locked" if judging.lock_days is None else f"locked {judging.lock_days}d")
    return " · ".join(parts)


@dataclass(frozen=True)
class Alert:
    """One Telegram message of a commit's finds: its text, and the finds it lists in commit
    order (a leading run of those it was made from)."""

    text: str
    finds: tuple[Find, ...]


def _signed(cents: int | None) -> str:
    if cents is None:
        return "?"
    return f"{'+' if cents >= 0 else ''}{dollars(cents)}"


def dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def listing_link(link_base: str, item_id: str) -> str:
    """The listing's page: the configured base, then the offer id, URL-quoted."""
    return link_base + quote(item_id, safe="")


def alerts_of(scan_id: uuid.UUID, finds: list[Find], link_base: str) -> list[Alert]:
    """The finds of one commit (in commit order) as messages under Telegram's limit.

    Each message lists a run of the finds in commit order, best profit first within it, and
    every message but the last says more follow. Runs in commit order let the follower move
    its pass's cursor past each message once Telegram took it, so a later message that fails
    is sent again alone. A find's line is never split.
    """
    if not finds:
        return []
    page = finds[0].page_seq + 1
    # Room is reserved for the longest header and rank any run of these finds could have.
    header_units = _units(_header(scan_id, page, len(finds), more=True))
    rank_units = len(f"{len(finds)}. ")
    runs: list[list[Find]] = [[]]
    used = header_units
    for find in finds:
        needed = len("\n") + rank_units + _units(_body(find, link_base))
        if runs[-1] and used + needed > MESSAGE_MAX_UNITS:
            runs.append([])
            used = header_units
        runs[-1].append(find)
        used += needed
    last = len(runs) - 1
    return [
        Alert(_text(scan_id, page, run, link_base, more=number < last), tuple(run))
        for number, run in enumerate(runs)
    ]


def _text(scan_id: uuid.UUID, page: int, run: list[Find], link_base: str, more: bool) -> str:
    best = sorted(run, key=lambda find: (-find.profit_cents, find.item_id))
    lines = [_header(scan_id, page, len(run), more)]
    lines += [f"{rank}. {_body(find, link_base)}" for rank, find in enumerate(best, start=1)]
    return _within_limit("\n".join(lines))


def _header(scan_id: uuid.UUID, page: int, count: int, more: bool) -> str:
    plural = "s" if count != 1 else ""
    follow = ", more follow" if more else ""
    return f"🔔 {count} new find{plural} (scan {str(scan_id)[:8]}, page {page}){follow}"


def _body(find: Find, link_base: str) -> str:
    title = find.title if len(find.title) <= TITLE_MAX_CHARS else find.title[:79] + CUT
    judged = judging_text(find.judging)
    return (
        f"{title}: {dollars(find.price_cents)} (reference "
        f"{dollars(find.reference_price_cents)}), profit {dollars(find.profit_cents)} "
        f"({find.profit_percent:.1f}%){' · ' + judged if judged else ''} "
        f"{listing_link(link_base, find.item_id)}"
    )


def _within_limit(text: str) -> str:
    """The text, cut to the limit if one find's line alone exceeds it (an absurd link base
    or offer id): a message Telegram refuses would be tried again forever."""
    if _units(text) <= MESSAGE_MAX_UNITS:
        return text
    cut = text[: MESSAGE_MAX_UNITS - len(CUT)]
    while _units(cut + CUT) > MESSAGE_MAX_UNITS:
        cut = cut[:-1]
    return cut + CUT


def _units(text: str) -> int:
    """The text's length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2
