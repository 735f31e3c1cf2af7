"""A real worker runs whole scans started from the real CLI."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_status,
)
from worker.scan_params import ScanParams


def test_cli_scan_of_5000_items_completes_with_exactly_the_expected_opportunities(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a running worker
    start_worker()
    # When a 5,000-item simulated scan is started from the CLI
    scan_id = start_scan_cli(celery_env, "--market-opt", "items=5000", "--market-opt", "seed=7")
    # Then it completes with every item processed once, in 50 pages
    done = wait_for_status(database_url, scan_id)
    assert (done.processed_items, done.total_items, done.page_seq) == (5000, 5000, 50)
    assert done.cursor is None and done.error_message is None
    # And its opportunities are exactly those a direct computation finds
    params = ScanParams.from_json(row(database_url, scan_id).params)
    expected = expected_opportunities(params)
    assert expected, "the catalog must hold some opportunities for this test to mean anything"
    assert stored_opportunities(database_url, scan_id) == expected
