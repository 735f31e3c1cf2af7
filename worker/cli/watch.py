"""`marketscan watch ...`: recurring scans, steered by their owner like the bot's /watch."""

from __future__ import annotations

import time

import click

from worker.cli.scan import _cents, _pairs
from worker.cli.support import emit_json, handle_errors
from worker.domain.scan_params import MARKETS
from worker.domain.watch import OVERLAP_POLICIES, Watch, parse_every, state_text
from worker.domain.watermark import follow_of
from worker.markets.base import GAME_IDS

_OWNER = click.option(
    "--owner-id", type=int, required=True, help="Telegram id of the watch's owner."
)


def _follow(watch: Watch) -> dict[str, object] | None:
    """A fresh watch's polls, watermark and lag, read from its one scan (None: not begun)."""
    from worker import client

    if not watch.params.fresh or watch.last_scan_id is None:
        return None
    scan = client.status(watch.last_scan_id)
    return {"scan_id": str(scan.scan_id), "status": scan.status.value,
            **follow_of(scan.cursor, scan.page_seq, time.time())}  # fmt: skip


def _line(watch: Watch) -> str:
    params = watch.params
    band = ""
    if params.min_price_cents is not None or params.max_price_cents is not None:
        band = f" {params.min_price_cents or 0}-{params.max_price_cents or '∞'}c"
    if params.fresh:
        follow = _follow(watch)
        shown = "starting" if follow is None else (
            f"{follow['status']}, lag {follow['lag_seconds']}s, {follow['polls']} polls, "
            f"{follow['gaps']} gaps; scan {follow['scan_id']}"
        )  # fmt: skip
        return (
            f"{watch.watch_id}  {params.game} {params.level}{band} fresh every "
            f"{watch.every_seconds}s ({state_text(watch, shown)})"
        )
    state = state_text(watch, f"next {watch.next_due_at.isoformat(timespec='seconds')}")
    return (
        f"{watch.watch_id}  {params.game} {params.level}{band} every {watch.every_seconds}s "
        f"({watch.overlap}; {state}; skipped {watch.skipped_slots}, missed {watch.missed_slots})"
    )


@click.group()
def watch() -> None:
    """Watches: a scan run again every interval, its finds alerted to a Telegram chat."""


@watch.command()
@click.option("--game", required=True, type=click.Choice(sorted(GAME_IDS)), help="Game to scan.")
@click.option(
    "--every", required=True, help="Interval: 90s, 15m, 1h, 1d (10s to 7d; from 1s with --fresh)."
)
@_OWNER
@click.option("--chat-id", type=int, help="Chat that gets the alerts (default: the owner's).")
@click.option(
    "--level", default="standard", show_default=True, help="A level of MARKETSCAN_LEVELS."
)
@click.option("--min-price", type=float, help="Lowest item price, USD.")
@click.option("--max-price", type=float, help="Highest item price, USD.")
@click.option(
    "--overlap",
    type=click.Choice(OVERLAP_POLICIES),
    default="skip",
    show_default=True,
    help="A slot due while the last pass runs: skip it, or run it after (buffer_one).",
)
@click.option("--market", type=click.Choice(MARKETS), default="simulated", show_default=True)
@click.option("--market-opt", multiple=True, metavar="KEY=VALUE", help="Market option.")
@click.option("--watch-id", help="Your own id for the watch: adding it again changes nothing.")
@click.option(
    "--progress-messages",
    is_flag=True,
    help="Each pass also shows its progress in the owner's private chat.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Follow DMarket v2's newest listings (one long-lived scan), judging each new one once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def add(
    game: str,
    every: str,
    owner_id: int,
    chat_id: int | None,
    level: str,
    min_price: float | None,
    max_price: float | None,
    overlap: str,
    market: str,
    market_opt: tuple[str, ...],
    watch_id: str | None,
    progress_messages: bool,
    fresh: bool,
    as_json: bool,
) -> None:
    """Add a watch; its first pass is due at once. Prints the watch."""
    from worker import client

    added = client.add_watch(
        game,
        owner_id=owner_id,
        chat_id=owner_id if chat_id is None else chat_id,
        every_seconds=parse_every(every, fresh=fresh),
        level=level,
        min_price_cents=_cents("--min-price", min_price),
        max_price_cents=_cents("--max-price", max_price),
        overlap=overlap,
        market=market,
        market_options=_pairs("--market-opt", market_opt),
        watch_id=watch_id,
        progress_messages=progress_messages,
        fresh=fresh,
    )
    if as_json:
        emit_json(added.to_json())
    else:
        click.echo(_line(added))


@watch.command(name="list")
@_OWNER
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def list_(owner_id: int, as_json: bool) -> None:
    """The owner's watches, oldest first."""
    from worker import client

    watches = client.list_watches(owner_id)
    if as_json:
        emit_json({"watches": [{**one.to_json(), "follow": _follow(one)} for one in watches]})
        return
    for one in watches:
        click.echo(_line(one))
    if not watches:
        click.echo("no watches")


@watch.command()
@click.argument("watch_id")
@_OWNER
@handle_errors
def pause(watch_id: str, owner_id: int) -> None:
    """Start no more passes until resumed (a running pass goes on)."""
    from worker import client

    click.echo(_line(client.pause_watch(watch_id, owner_id)))


@watch.command()
@click.argument("watch_id")
@_OWNER
@handle_errors
def resume(watch_id: str, owner_id: int) -> None:
    """Run passes again; a slot that passed while paused is due at once."""
    from worker import client

    click.echo(_line(client.resume_watch(watch_id, owner_id)))


@watch.command()
@click.argument("watch_id")
@_OWNER
@handle_errors
def remove(watch_id: str, owner_id: int) -> None:
    """Delete the watch; the scans it started are kept."""
    from worker import client

    client.remove_watch(watch_id, owner_id)
    click.echo(f"removed watch {watch_id}")
