"""A Sentinel-managed broker (master, replica, two sentinels on loopback): a scan run by a
real worker survives `SENTINEL FAILOVER` mid-scan, exactly, with the ledger consistent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support import commit_log
from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_progress,
    wait_for_status,
)
from worker import broker_redis, redis_keys
from worker.chain import broker_ledger
from worker.devtools.embedded_sentinel import MASTER_NAME, SentinelRedis, sentinel_redis
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelRedis]:
    # Started like the suite's other servers; a group that cannot start fails the test.
    with sentinel_redis(tmp_path / "sentinel") as group:
        yield group


@pytest.fixture
def celery_env(
    celery_env: dict[str, str], sentinel_group: SentinelRedis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Workers, beat, the CLI and this process all given the Sentinel URL, as a deployment
    would be."""
    monkeypatch.setenv("CELERY_BROKER_URL", sentinel_group.url)
    get_settings.cache_clear()
    yield {**celery_env, "CELERY_BROKER_URL": sentinel_group.url}
    get_settings.cache_clear()


def _wait_for_replica(port: int) -> None:
    """Until the sentinels have turned the old master into a replica of the new one."""
    deadline = time.monotonic() + 30
    with redis.Redis(port=port, decode_responses=True) as old:
        while old.info("replication")["role"] != "slave":
            assert time.monotonic() < deadline, "the old master was never reconfigured"
            time.sleep(0.1)


def _wait_for_new_master(group: SentinelRedis, old_port: int) -> float:
    started = time.monotonic()
    while group.master_port() == old_port:
        assert time.monotonic() - started < 30, "no new master elected"
        time.sleep(0.02)
    return time.monotonic() - started


def _next_commit_seconds(database_url: str, scan_id: object, after: float) -> float:
    processed = row(database_url, scan_id).processed_items  # type: ignore[arg-type]
    while row(database_url, scan_id).processed_items == processed:  # type: ignore[arg-type]
        assert time.monotonic() - after < 120, "the scan never moved after the failover"
        time.sleep(0.02)
    return time.monotonic() - after


def test_a_scan_survives_a_sentinel_failover_exactly(
    celery_env: dict[str, str],
    database_url: str,
    sentinel_group: SentinelRedis,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    commit_log.install(database_url)
    # Given a worker and beat on a Sentinel URL, a scan under way
    start_worker("w1@test")
    start_beat()
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=3000", "--market-opt", "item_latency_ms=2"
    )
    wait_for_progress(database_url, scan_id, 500)
    old_master = sentinel_group.master_port()
    # When the sentinels are told to fail the master over mid-scan
    failed_over_at = time.monotonic()
    sentinel_group.fail_over()
    elected = _wait_for_new_master(sentinel_group, old_master)
    # Then scans go on once the new master is elected, and end exactly
    stall = _next_commit_seconds(database_url, scan_id, failed_over_at)
    print(f"\nnew master elected after {elected:.2f}s; next commit {stall:.2f}s after FAILOVER")
    done = wait_for_status(database_url, scan_id, timeout=180)
    assert done.processed_items == 3000
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 3000)
    # And, once the group has converged, the broker agrees with the database: no page
    # message left in a queue, no marker claiming one is, read through Sentinel the way the
    # ledger reads. An ack sent to the old master in the failover window may be lost with
    # it, leaving a stale copy in the unacked set: it holds an old fence, which the database
    # no longer names, so its redelivery an hour later is dropped.
    _wait_for_replica(old_master)
    client = broker_redis.new_client(sentinel_group.url, MASTER_NAME, decode_responses=True)
    with client:
        assert client.llen("marketscan") == 0 and client.llen("marketscan.recovered") == 0
        marker = client.get(f"{redis_keys.LEDGER_PREFIX}{scan_id}") or ""
    stale = broker_ledger.received_fences(time.time())
    print(f"final marker {marker!r}; {len(stale)} stale unacked copies")
    assert not marker.startswith(("pending", "sent")), marker
    assert f"{done.lease_token}:{done.page_seq}:{done.page_offset}" not in stale
