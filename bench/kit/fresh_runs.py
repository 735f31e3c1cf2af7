"""The two runs of the fresh-latency figure (bench.fresh_latency): two real workers and
beat, the live loopback DMarket, the loopback Bot API, fresh watches added through
worker.client, and what each run read back (bench.kit.fresh_timeline)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from bench.kit import fresh_timeline, scans
from bench.kit.database import Connection, connect
from bench.kit.fresh_timeline import Outcome, Window
from bench.kit.harness import Bench, say
from worker import client
from worker.db import close_engines, reset_engines
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings
from worker.testing.dmarket_server import FakeDMarket, LiveListing
from worker.testing.telegram_server import FakeTelegram

FIGURE = "fresh-latency"
LISTINGS_PER_SECOND = 5.0
UNDERPRICED_SHARE = 0.1
SEED = 16
EVERY_SECONDS = 2
BUDGETS = {"market_items": 2, "other": 6}
# A level whose band holds every price the live listing makes (its bids are 2-200 USD).
LEVEL = "everything"
LEVELS = f"standard=100-10000:0.05,{LEVEL}=1-1000000:0.05"
OWNER = 4_242
CHAT = 4_242
# The four more watches of the five: their bands (cents) and chats.
OTHER_BANDS = ((100, 2_000), (2_000, 5_000), (5_000, 10_000), (10_000, 1_000_000))
FULL_SCANS = 16
# Sales the loopback DMarket reports for each live title, at its best bid: recent and many
# enough for the level's liquidity minimums (3 this week by default), so the finds are
# exactly the listings priced under the bid by the margin.
SALES_PER_TITLE = 5
# Seconds of listings made before the loaded run, which the full scans walk (30 pages each).
BACKLOG_SECONDS = 600.0
DRAIN_SECONDS = 15.0


@dataclass(frozen=True)
class Walks:
    """A watch's walk requests in a window: how many a second, and how they fell into poll
    rounds (in words, for the figure's detail)."""

    per_second: float
    rounds: str


@dataclass(frozen=True)
class Run:
    """One run: its underpriced listings by alert (or by commit, if no alert named one) and
    by commit, the first watch's walks, the five watches' walks (the first run only), and
    what else ran beside the watch (the second run's full scans)."""

    outcome: Outcome
    by_commit: Outcome
    walks: Walks
    five: Walks | None = None
    context: str = ""


@contextlib.contextmanager
def _client_on(database_url: str, **variables: str) -> Iterator[None]:
    """worker.client (and the bench's scans) on the figure's database and settings."""
    wanted = {"DATABASE_URL": database_url, **variables}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    get_settings.cache_clear()
    reset_engines()
    try:
        yield
    finally:
        close_engines()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def _start_fleet(bench: Bench, env: dict[str, str]) -> None:
    for hostname in ("fresh1@bench", "fresh2@bench"):
        bench.start_worker(env, hostname, concurrency=2)
    bench.start_beat(env)


def _settings_env(dmarket: FakeDMarket, telegram: FakeTelegram) -> dict[str, str]:
    return {
        "MARKETSCAN_DMARKET_URL": dmarket.url,
        "MARKETSCAN_DMARKET_API": "v2",
        "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        "MARKETSCAN_WATCH_TICK_SECONDS": "0.5",
        "MARKETSCAN_LEVELS": LEVELS,
    }


def _recent_sales(live: LiveListing) -> dict[str, list[int]]:
    return {title: [cents] * SALES_PER_TITLE for title, (cents, _) in live.best_bids().items()}


def _add_watch(chat_id: int, band: tuple[int, int] | None = None) -> None:
    client.add_watch(
        "csgo",
        owner_id=OWNER,
        chat_id=chat_id,
        every_seconds=EVERY_SECONDS,
        level=LEVEL,
        market="dmarket",
        fresh=True,
        min_price_cents=None if band is None else band[0],
        max_price_cents=None if band is None else band[1],
    )


def _fresh_scans(connection: Connection, polled: int, timeout_s: float = 60.0) -> list[uuid.UUID]:
    """The fresh scans, oldest first, once `polled` of them have committed a poll."""
    deadline = time.monotonic() + timeout_s
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT scan_id, page_seq, status, error_message FROM scan_checkpoints"
                " WHERE params->>'fresh' = 'true' ORDER BY created_at"
            )
            rows = cursor.fetchall()
        failed = [(scan_id, error) for scan_id, _, status, error in rows if status == "failed"]
        if failed:
            raise RuntimeError(f"a fresh scan failed: {failed[0]}")
        if sum(1 for _, page_seq, _, _ in rows if page_seq >= 1) >= polled:
            return [uuid.UUID(str(scan_id)) for scan_id, _, _, _ in rows]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{polled} fresh scans did not poll within {timeout_s}s: {rows}")
        time.sleep(0.1)


def _outcome(
    dmarket: FakeDMarket,
    telegram: FakeTelegram,
    connection: Connection,
    scan_id: uuid.UUID,
    window: Window,
) -> tuple[Outcome, Outcome]:
    """(by alert, or by commit where no alert names an offer; by commit) of the window."""
    offset = time.time() - time.monotonic()
    listings = dmarket.live.listings()
    walks = fresh_timeline.fresh_walk_times(dmarket.requests, offset)
    alerted = fresh_timeline.alert_arrivals(telegram.calls, CHAT, offset)
    committed = fresh_timeline.commit_arrivals(connection, [scan_id])
    by_commit = fresh_timeline.outcome(listings, window, walks, committed, "commit")
    by_alert = fresh_timeline.outcome(listings, window, walks, alerted, "alert")
    return (by_alert if by_alert.covered else by_commit), by_commit


def alone(bench: Bench, seconds: float, five_seconds: float) -> Run:
    """One fresh watch for `seconds` of listings; then five, for `five_seconds`."""
    live = LiveListing(LISTINGS_PER_SECOND, seed=SEED, underpriced_share=UNDERPRICED_SHARE)
    with (
        FakeDMarket([], live=live, sales=_recent_sales(live), class_budgets=BUDGETS) as dmarket,
        FakeTelegram() as telegram,
        bench.database(FIGURE) as url,
    ):
        env = _settings_env(dmarket, telegram)
        _start_fleet(bench, bench.worker_env(url, **env))
        connection = connect(url)
        with _client_on(url, **env):
            _add_watch(CHAT)
            scan_id = _fresh_scans(connection, 1)[0]
            window = _window(seconds)
            say(f"{FIGURE}: one fresh watch polling; {seconds:.0f} s of listings")
            time.sleep(seconds + DRAIN_SECONDS)
            outcome, by_commit = _outcome(dmarket, telegram, connection, scan_id, window)
            one = _walks(dmarket, Window(window.start, window.end + DRAIN_SECONDS))
            for number, band in enumerate(OTHER_BANDS, start=1):
                _add_watch(CHAT + number, band)
            _fresh_scans(connection, 1 + len(OTHER_BANDS))
            five_window = _window(five_seconds)
            say(f"{FIGURE}: five fresh watches polling; {five_seconds:.0f} s")
            time.sleep(five_seconds)
        five = _walks(dmarket, five_window)
        connection.close()
    return Run(outcome, by_commit, one, five=five)


def _window(seconds: float) -> Window:
    now = time.time()
    return Window(now, now + seconds)


def _walks(dmarket: FakeDMarket, window: Window) -> Walks:
    """The fresh walks' requests a second in the window, and how they fell into poll rounds."""
    times = fresh_timeline.fresh_walk_times(dmarket.requests, time.time() - time.monotonic())
    rounds = fresh_timeline.poll_rounds(times, window)
    doubled = [burst for burst in rounds if len(burst) > 1]
    apart = ", ".join(f"{burst[-1] - burst[0]:.2f}" for burst in doubled)
    return Walks(
        fresh_timeline.walks_per_second(times, window),
        f"{sum(len(burst) for burst in rounds)} walk requests in {len(rounds)} poll rounds, "
        f"{len(doubled)} rounds with more than one"
        + (f" (first to last request of each: {apart} s)" if doubled else ""),
    )


def loaded(bench: Bench, seconds: float) -> Run:
    """One fresh watch beside 16 full scans on its market budget, for `seconds` of listings."""
    live = LiveListing(
        LISTINGS_PER_SECOND,
        seed=SEED + 1,
        underpriced_share=UNDERPRICED_SHARE,
        start=time.time() - BACKLOG_SECONDS,
    )
    with (
        FakeDMarket([], live=live, sales=_recent_sales(live), class_budgets=BUDGETS) as dmarket,
        FakeTelegram() as telegram,
        bench.database(f"{FIGURE}-loaded") as url,
    ):
        env = _settings_env(dmarket, telegram)
        _start_fleet(bench, bench.worker_env(url, **env))
        connection = connect(url)
        with _client_on(url, **env):
            _add_watch(CHAT)
            scan_id = _fresh_scans(connection, 1)[0]
            full = ScanParams(game="csgo", market="dmarket", level=LEVEL)
            full_ids = [scans.start(url, full, dmarket_api="v2") for _ in range(FULL_SCANS)]
        window = _window(seconds)
        say(f"{FIGURE}: one fresh watch beside {FULL_SCANS} full scans; {seconds:.0f} s")
        time.sleep(seconds + DRAIN_SECONDS)
        outcome, by_commit = _outcome(dmarket, telegram, connection, scan_id, window)
        share = _full_scans_share(dmarket, connection, full_ids, window)
        walks = _walks(dmarket, window)
        connection.close()
    return Run(outcome, by_commit, walks, context=share)


def _full_scans_share(
    dmarket: FakeDMarket, connection: Connection, full_ids: list[uuid.UUID], window: Window
) -> str:
    """What the full scans took of the market budget in the window, and where they stood."""
    offset = time.time() - time.monotonic()
    served = [
        request.received_at + offset
        for request in dmarket.requests_to(fresh_timeline.OFFERS_PATH)
        if request.status == 200 and request.query.get("orderBy") != fresh_timeline.FRESH_ORDER
    ]
    rate = sum(1 for at in served if window.start <= at < window.end) / window.seconds
    running = sum(1 for scan_id in full_ids if scans.status(connection, scan_id)[0] != "completed")
    return (
        f"the full scans were served {rate:.2f} market requests/s in the window, "
        f"{running}/{len(full_ids)} still running at its end plus {DRAIN_SECONDS:.0f} s; "
        f"{len(dmarket.rate_limited)} requests answered 429"
    )
