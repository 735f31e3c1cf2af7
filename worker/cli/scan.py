"""`marketscan scan ...`: start, inspect, watch and steer scans."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from worker.cli.support import cli_session, emit_json, handle_errors
from worker.domain.checkpoint import Checkpoint
from worker.domain.progress import total_text
from worker.domain.reference import SECOND_MARKETS, TRADE_HOLD_DAYS
from worker.domain.scan_params import MARKETS
from worker.domain.validation import dollars_to_cents
from worker.domain.watermark import follow_of
from worker.errors import InvalidInput
from worker.markets.base import GAME_IDS
from worker.redaction import redacted

WATCH_POLL_SECONDS = 0.5


def _pairs(option: str, values: tuple[str, ...]) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} takes KEY=VALUE, got {value!r}")
        pairs[key.strip()] = _scalar(raw)
    return pairs


def _scalar(raw: str) -> Any:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _cents(option: str, dollars: float | None) -> int | None:
    return None if dollars is None else dollars_to_cents(option, dollars)


@click.group()
def scan() -> None:
    """Start, inspect and steer market scans."""


@scan.command()
@click.option("--game", required=True, type=click.Choice(sorted(GAME_IDS)), help="Game to scan.")
@click.option("--market", type=click.Choice(MARKETS), default="simulated", show_default=True)
@click.option(
    "--level", default="standard", show_default=True, help="A level of MARKETSCAN_LEVELS."
)
@click.option(
    "--reference",
    default=None,
    help="What listings are judged against: best_bid, last_sales, skinport (sell on "
    "Skinport after the trade hold) or suggested (v1 only); default: best_bid on DMarket, "
    "suggested on the simulated market.",
)
@click.option("--min-price", type=float, help="Lowest item price, USD.")
@click.option("--max-price", type=float, help="Highest item price, USD.")
@click.option("--page-size", type=int, default=100, show_default=True, help="Items per page.")
@click.option("--user-id", type=int, default=0, show_default=True)
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata stored with the scan.")
@click.option("--market-opt", multiple=True, metavar="KEY=VALUE", help="Market option.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def start(
    game: str,
    market: str,
    level: str,
    reference: str | None,
    min_price: float | None,
    max_price: float | None,
    page_size: int,
    user_id: int,
    meta: tuple[str, ...],
    market_opt: tuple[str, ...],
    as_json: bool,
) -> None:
    """Start a scan; prints its scan_id once it is stored and its first page published."""
    from worker import client

    scan_id = client.start(
        game,
        market=market,
        level=level,
        reference=reference,
        min_price_cents=_cents("--min-price", min_price),
        max_price_cents=_cents("--max-price", max_price),
        page_size=page_size,
        user_id=user_id,
        metadata=_pairs("--meta", meta),
        market_options=_pairs("--market-opt", market_opt),
    )
    if as_json:
        emit_json({"scan_id": str(scan_id)})
    else:
        click.echo(str(scan_id))


def _shown(checkpoint: Checkpoint) -> dict[str, Any]:
    """The checkpoint as printed: a market error may quote a URL with its credentials. A
    fresh watch's scan also shows its polls, watermark and lag (its cursor is the watermark)."""
    data = checkpoint.to_json()
    if data["error_message"] is not None:
        data["error_message"] = redacted(data["error_message"])
    if (checkpoint.params or {}).get("fresh") is True:
        data["fresh"] = follow_of(checkpoint.cursor, checkpoint.page_seq, time.time())
    return data


def _describe(checkpoint: Checkpoint) -> list[tuple[str, Any]]:
    data = _shown(checkpoint)
    keys: tuple[str, ...] = (
        "scan_id", "status", "processed_items", "total_items", "page_seq", "page_offset",
        "cursor", "error_message", "note", "skipped_items", "unreferenced_items", "illiquid_items",
        "recoveries",
        "lease_owner", "created_at",
        "updated_at", "timestamp", "metadata",
    )  # fmt: skip
    # "at least N" when the market's total is only a lower bound (DMarket caps it).
    data["total_items"] = total_text(checkpoint.total_items, checkpoint.total_is_lower_bound)
    if "fresh" in data:  # the watermark reads better as its summary than as the raw cursor
        data["cursor"] = None
        keys = (*keys, "fresh")
    return [(key, data[key]) for key in keys]


@scan.command()
@click.argument("scan_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def status(scan_id: str, as_json: bool) -> None:
    """Show a scan's checkpoint."""
    from worker import client

    checkpoint = client.status(scan_id)
    waiting = client.market_wait(checkpoint)
    if as_json:
        emit_json({**_shown(checkpoint), "waiting": waiting})
        return
    for key, value in _describe(checkpoint):
        shown = json.dumps(value) if isinstance(value, dict) else value
        click.echo(f"{key:>16}: {'' if shown is None else shown}")
    if waiting is not None:
        click.echo(f"{'waiting':>16}: {redacted(waiting)}")


@scan.command(name="list")
@click.option("--status", "status_filter", default=None, help="Only scans in this status.")
@click.option("--user-id", type=int, default=None, help="Only this user's scans.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def list_(status_filter: str | None, user_id: int | None, as_json: bool) -> None:
    """List scans, newest first."""
    from worker.db.scan_queries import list_scans

    with cli_session() as session:
        scans = list_scans(session, status_filter, user_id)
    if as_json:
        emit_json([_shown(checkpoint) for checkpoint in scans])
        return
    click.echo(f"{'scan_id':36}  {'status':11}  {'processed':>9}  {'total':>9}  created_at")
    for c in scans:
        total = total_text(c.total_items, c.total_is_lower_bound, symbol=True)
        created = c.created_at.isoformat(timespec="seconds") if c.created_at else ""
        click.echo(
            f"{c.scan_id!s:36}  {c.status.value:11}  {c.processed_items:>9}  {total:>9}  {created}"
        )


@scan.command()
@click.argument("scan_id")
@click.option("--top", type=int, default=20, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def results(scan_id: str, top: int, as_json: bool) -> None:
    """Show a scan's best opportunities."""
    from worker import client

    found = client.results(scan_id, top)
    if as_json:
        emit_json(found)
        return
    click.echo(
        f"{'profit %':>8}  {'price $':>9}  {'ref $':>9}  {'profit $':>9}  "
        f"{'fee %':>6}  {'fee from':10}  {'sell now $':>10}  {'listing $':>9}  "
        f"{'7d':>3}  {'lock':5}  {'sell on':17}  title"
    )
    for row in found:
        click.echo(
            f"{row['profit_percent']:>8.2f}  {row['price_cents'] / 100:>9.2f}  "
            f"{row['reference_price_cents'] / 100:>9.2f}  {row['profit_cents'] / 100:>9.2f}  "
            f"{_cell(row['fee_bps'], 100):>6}  {row['fee_source'] or '-':10}  "
            f"{_cell(row['sell_now_profit_cents'], 100):>10}  "
            f"{_cell(row['listing_profit_cents'], 100):>9}  "
            f"{'-' if row['sales_7d'] is None else row['sales_7d']:>3}  {_lock(row):5}  "
            f"{_sold_on(row['reference_kind']):17}  {row['title']}"
        )


def _cell(value: int | None, per_unit: int) -> str:
    """A stored amount in units (cents, basis points) as a number, or `-` when unknown."""
    return "-" if value is None else f"{value / per_unit:.2f}"


def _sold_on(reference_kind: str | None) -> str:
    """Where a find judged against a second market is sold, after Steam's trade hold; `-`
    for one sold on the market it is bought on."""
    market = SECOND_MARKETS.get(reference_kind or "")
    return "-" if market is None else f"{market}, {TRADE_HOLD_DAYS}d hold"


def _lock(row: dict[str, Any]) -> str:
    if not row["locked"]:
        return "-" if row["locked"] is None else "no"
    return "yes" if row["lock_days"] is None else f"{row['lock_days']}d"


@scan.command()
@click.argument("scan_id")
@handle_errors
def watch(scan_id: str) -> None:
    """Show a live progress bar (rate, ETA) until the scan ends."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )  # fmt: skip

    from worker import client

    columns = (
        TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.completed:.0f}/{task.fields[shown_total]}"),
        TextColumn("{task.fields[rate]} items/s"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns) as progress:
        task = progress.add_task("scanning", total=None, rate="-", shown_total="?")
        for checkpoint in client.progress(scan_id, WATCH_POLL_SECONDS):
            speed = progress.tasks[0].speed
            lower_bound = checkpoint.total_is_lower_bound
            progress.update(
                task,
                completed=checkpoint.processed_items,
                # A lower-bound total is no end to measure a bar or an ETA against.
                total=None if lower_bound else checkpoint.total_items,
                shown_total=total_text(checkpoint.total_items, lower_bound) or "?",
                description=checkpoint.status.value,
                rate=f"{speed:.0f}" if speed else "-",
            )
    click.echo(
        f"scan {checkpoint.scan_id} {checkpoint.status.value}: "
        f"{checkpoint.processed_items} items"
        + (
            f" of {total_text(checkpoint.total_items, checkpoint.total_is_lower_bound)}"
            if checkpoint.total_items is not None
            else ""
        )
        + (f"; {redacted(checkpoint.error_message)}" if checkpoint.error_message else "")
    )


def _steer(action: str, scan_id: str) -> None:
    from worker import client

    steer = {"pause": client.pause, "resume": client.resume, "cancel": client.cancel}[action]
    checkpoint = steer(scan_id)
    click.echo(f"scan {checkpoint.scan_id} is {checkpoint.status.value}")


@scan.command()
@click.argument("scan_id")
@handle_errors
def pause(scan_id: str) -> None:
    """Pause a running scan at its next item; every committed item is kept."""
    _steer("pause", scan_id)


@scan.command()
@click.argument("scan_id")
@handle_errors
def resume(scan_id: str) -> None:
    """Resume a paused or failed scan from its checkpoint."""
    _steer("resume", scan_id)


@scan.command()
@click.argument("scan_id")
@handle_errors
def cancel(scan_id: str) -> None:
    """Cancel a scan for good."""
    _steer("cancel", scan_id)
