"""Odd listings on a real worker: one unusable listing never fails a scan of many."""

from __future__ import annotations

from collections.abc import Callable

from tests.fakes.dmarket_server import FakeDMarket, dmarket_item
from tests.support.processes import CeleryProcess
from tests.support.scans import cli, start_scan_cli, wait_for_status

ODD = {
    "dm-nul": ("AK-47 | Red\x00line", 1000, 5000, "title contains a NUL byte"),
    "dm-huge": ("AWP | Asiimov", 1000, 2**63 + 5, "reference_price_cents"),
    "dm-million": ("P250 | Sand Dune", 150, 100_000_000, "profit_percent"),
}


def test_listings_no_column_can_hold_are_skipped_counted_and_logged_and_the_scan_completes(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a market of 300 listings, three of them holding values no column can store
    listings = [
        dmarket_item(f"dm-{n:04d}", f"M4A4 | Howl #{n}", 1000 + n, 1000 + n + 300 * (n % 5 == 0))
        for n in range(297)
    ]
    listings[150:150] = [dmarket_item(key, *values[:3]) for key, values in ODD.items()]
    with FakeDMarket(listings) as fake:
        celery_env["MARKETSCAN_DMARKET_URL"] = fake.url
        celery_env["MARKETSCAN_DMARKET_API"] = "v1"
        celery_env["MARKETSCAN_DMARKET_REQUESTS_PER_SECOND"] = "50"
        worker = start_worker("w1@test", concurrency=1)
        # When a real worker scans it
        scan_id = start_scan_cli(celery_env, "--market", "dmarket")
        done = wait_for_status(database_url, scan_id, ("completed", "failed"), timeout=120)
    # Then the scan completes at once, every listing walked, the three counted as skipped
    assert (done.status, done.processed_items, done.skipped_items) == ("completed", 300, 3)
    assert done.recoveries == 0 and done.error_message is None
    # And `scan status` shows the count, and the worker's log says why for each listing
    status = cli(["scan", "status", str(scan_id)], celery_env)
    assert status.returncode == 0 and "skipped_items: 3" in status.stdout, status.stdout
    log = worker.log()
    for item_id, (*_, why) in ODD.items():
        assert any(item_id in line and why in line for line in log.splitlines()), item_id
