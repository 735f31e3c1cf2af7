"""A real fleet scraped during scans: two prefork workers (one loses a pool child, the
other dies whole), a beat, and `marketscan metrics`. Counters never go backwards, and
at the end they equal what the rows say, also after cleanup deleted the rows."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import metrics as scraped
from tests.support.processes import CeleryProcess
from tests.support.scans import cli, row, start_scan_cli, wait_for_progress, wait_for_status
from worker.devtools.embedded import free_port
from worker.devtools.processes import metrics_exporter
from worker.metrics import catalogue

RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "marketscan-rules.yml"
COUNTERS = [m.name for m in catalogue.METRICS if m.kind is catalogue.Kind.COUNTER]


@pytest.fixture
def exporter_url(celery_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = metrics_exporter(celery_env, tmp_path / "metrics.log", port).start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        process.wait_for_log("serving metrics on")
        scraped.wait_until_served(url)
        yield url
    finally:
        process.stop()


class _Watcher:
    """Scrapes every few hundred ms and remembers any counter that went backwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backwards: list[str] = []
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last: dict[str, float] = {}
        while not self._stop.wait(0.3):
            now = scraped.scrape(self.url)
            self.scrapes += 1
            for name in COUNTERS:
                value = scraped.total(now, name)
                if value < last.get(name, 0):
                    self.backwards.append(f"{name}: {last[name]} -> {value}")
                last[name] = value


def _running_owner(database_url: str, scan_id: uuid.UUID) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = row(database_url, scan_id)
        if current.lease_owner and current.queued_at is None and current.status == "in_progress":
            return current.lease_owner
        time.sleep(0.05)
    raise AssertionError("the scan never ran a page")


def _assert_counters_equal_rows(
    database_url: str, now: dict[tuple[str, scraped.Labels], float]
) -> None:
    truth = scraped.row_totals(database_url)
    assert scraped.total(now, "marketscan_pages_committed_total") == truth.pages
    assert scraped.total(now, "marketscan_items_processed_total") == truth.items
    assert scraped.total(now, "marketscan_items_skipped_total") == truth.skipped
    assert scraped.total(now, "marketscan_opportunities_found_total") == truth.opportunities
    assert scraped.total(now, "marketscan_recoveries_total") == truth.recoveries


def test_a_scraped_fleet_counts_exactly_what_the_rows_hold_through_kills_and_cleanup(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
    exporter_url: str,
    tmp_path: Path,
) -> None:
    # Given two prefork workers, a beat and the exporter, and two scans running
    workers = {name: start_worker(name, concurrency=1) for name in ("a@test", "b@test")}
    start_beat()
    scans = [
        start_scan_cli(celery_env, "--market-opt", "items=2000", "--market-opt",
                       "item_latency_ms=4", "--market-opt", f"seed={seed}")
        for seed in (3, 4)
    ]  # fmt: skip
    with _Watcher(exporter_url) as watcher:
        # When the pool child running scan 0's page is SIGKILLed
        wait_for_progress(database_url, scans[0], 300)
        owner = _running_owner(database_url, scans[0])
        child = psutil.Process(workers[owner].pid).children()[0]
        os.kill(child.pid, signal.SIGKILL)
        # And the worker running scan 1's page dies whole (its lease lapses; beat recovers)
        wait_for_progress(database_url, scans[1], 300)
        victim = _running_owner(database_url, scans[1])
        workers[victim].kill_group()
        for scan_id in scans:
            wait_for_status(database_url, scan_id, timeout=240)
        time.sleep(1)  # one more scrape of the finished fleet
    # Then no counter ever went backwards while the fleet was scraped
    assert watcher.scrapes > 5
    assert watcher.backwards == []
    # And the counters equal what the rows say; a real recovery was counted, by cause
    assert scraped.row_totals(database_url).recoveries >= 1
    final = scraped.scrape(exporter_url)
    _assert_counters_equal_rows(database_url, final)
    assert final[("marketscan_scans", frozenset({("status", "completed")}))] == 2
    assert final[("marketscan_recoveries_total", frozenset({("cause", "lease_expired")}))] >= 1
    # And the workers' notes reached the exporter: page phases, market requests, presence
    for phase in ("fetch", "judge", "commit"):
        assert final[("marketscan_page_seconds_count", frozenset({("phase", phase)}))] > 0
    # (a killed process loses the notes of the task it was running: fewer than 40 pages')
    assert scraped.total(final, "marketscan_market_requests_total") > 0
    assert final[("marketscan_processes", frozenset({("role", "beat")}))] == 1
    assert final[("marketscan_processes", frozenset({("role", "worker")}))] >= 1
    scraped.assert_no_identifying_label(scraped.exposition(exporter_url), database_url)

    # When cleanup deletes the finished scans, Then the counters keep what the rows held
    before = {name: scraped.total(final, name) for name in COUNTERS}
    done = cli(["cleanup", "--days", "0"], celery_env)
    assert done.returncode == 0, done.stderr
    after = scraped.scrape(exporter_url)
    assert scraped.row_totals(database_url).items == 0
    kept = ("marketscan_pages_committed_total", "marketscan_items_processed_total",
            "marketscan_opportunities_found_total", "marketscan_recoveries_total")  # fmt: skip
    for name in kept:
        assert scraped.total(after, name) == before[name], name
    assert scraped.total(after, "marketscan_cleanup_rows_deleted_total") == 2
    assert scraped.total(after, "marketscan_cleanup_last_success_timestamp_seconds") > 0

    _prometheus_answers(exporter_url, tmp_path, before["marketscan_items_processed_total"])


def _prometheus_answers(exporter_url: str, tmp_path: Path, items: float) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        print("\nprometheus is not installed (apt-get install prometheus): server check skipped")
        return
    target = urllib.parse.urlparse(exporter_url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        f"scrape_configs: [{{job_name: marketscan, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query",
                    params={"query": "marketscan_items_processed_total"},
                    timeout=5,
                )
                # A starting Prometheus answers 503 "Service Unavailable" (plain text) until
                # its storage is ready: not an answer yet.
                result = response.json()["data"]["result"] if response.status_code == 200 else []
                if result:
                    assert float(result[0]["value"][1]) == items
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
