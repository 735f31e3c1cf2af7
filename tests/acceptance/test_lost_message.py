"""A message lost between kombu's BRPOP and its unacked bookkeeping (a worker killed in
that window) leaves the page's marker at `sent` with no message anywhere: the ledger audit
finds it within MARKETSCAN_LEDGER_AUDIT_SECONDS and the scan completes exactly."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from tests.support import commit_log
from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_status,
)
from worker import redis_keys
from worker.chain import broker_ledger
from worker.domain.scan_params import ScanParams

AUDIT_SECONDS = 6


@pytest.fixture
def celery_env(celery_env: dict[str, str]) -> dict[str, str]:
    return {**celery_env, "MARKETSCAN_LEDGER_AUDIT_SECONDS": str(AUDIT_SECONDS)}


def test_a_message_lost_between_pop_and_unacked_is_found_and_the_scan_ends_exact(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    commit_log.install(database_url)
    # Given a scan whose first page was published while no worker ran
    scan_id = start_scan_cli(celery_env, "--market-opt", "items=600")
    client = redis.Redis.from_url(celery_env["CELERY_BROKER_URL"], decode_responses=True)
    marker = client.get(f"{redis_keys.LEDGER_PREFIX}{scan_id}") or ""
    assert marker.startswith("sent "), marker
    # When its message vanishes from Redis the way a kill after BRPOP leaves it: in no
    # queue, not unacked, the marker still `sent`
    assert client.rpop("marketscan") is not None
    assert client.llen("marketscan") == 0 and client.hlen(broker_ledger.KOMBU_UNACKED_KEY) == 0
    lost_at = time.monotonic()
    start_worker("w1@test")
    start_beat()
    # Then the scan moves again within the audit bound (plus a recovery tick and a page)
    while row(database_url, scan_id).processed_items == 0:
        assert time.monotonic() - lost_at < AUDIT_SECONDS + 15, "the lost page was never found"
        time.sleep(0.05)
    found = time.monotonic() - lost_at
    print(f"\nlost message found and its page committed {found:.2f}s after it vanished")
    assert found < AUDIT_SECONDS + 5
    # And the scan ends exactly, recovered once
    done = wait_for_status(database_url, scan_id)
    assert done.processed_items == 600 and done.recoveries == 1
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 600)
    client.close()
