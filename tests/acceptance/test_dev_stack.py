"""`marketscan dev`: the whole stack in the foreground, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.fakes.telegram_server import FakeTelegram
from tests.support.metrics import exposition, wait_until_served


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_runs_everything_and_stops_every_process_on_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    dev = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "dev", "--dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert dev.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    try:
        # Given the stack is up: the worker says ready and Flower's URL was printed
        while not any("ready." in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = dev.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert any(line.startswith("Flower: http://127.0.0.1:") and "password" in line
                   for line in lines)  # fmt: skip
        assert any(line.startswith("[beat]") for line in lines)
        # And the metrics exporter's URL was printed, and it serves the fleet's metrics
        (metrics_url,) = [line.split()[1] for line in lines if line.startswith("Metrics: ")]
        assert metrics_url.startswith("http://127.0.0.1:") and metrics_url.endswith("/metrics")
        wait_until_served(metrics_url)
        assert "marketscan_scans{" in exposition(metrics_url)
        # pg_ctl daemonizes PostgreSQL: find it by its pid file instead of the process tree.
        postmaster = (tmp_path / "state" / "postgres" / "postmaster.pid").read_text()
        spawned = [*_descendants(dev.pid), psutil.Process(int(postmaster.splitlines()[0]))]
        names = " ".join(" ".join(p.cmdline()) for p in spawned)
        for part in ("bin/postgres", "redis-server", "worker", "beat", "flower", "cli metrics"):
            assert part in names
        # When it is told to stop
        dev.send_signal(signum)
        dev.communicate(timeout=60)
        # Then every process it started is gone
        _gone, alive = psutil.wait_procs(spawned, timeout=15)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        # Even when an assertion failed: stop the stack the way a user would, then make sure.
        leftovers = _descendants(dev.pid) if dev.poll() is None else []
        if dev.poll() is None:
            dev.terminate()
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                dev.kill()
        for process in leftovers:
            if process.is_running():
                process.kill()


def test_dev_with_a_bot_token_runs_the_bot_too(tmp_path: Path) -> None:
    # Given a Telegram (the loopback Bot API) and a token in the environment
    with FakeTelegram() as telegram:
        env = {
            **os.environ,
            "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
            "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
            "MARKETSCAN_TELEGRAM_ALLOWED_USERS": "4242",
            "MARKETSCAN_TELEGRAM_POLL_TIMEOUT_SECONDS": "2",
        }
        dev = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "dev", "--dir", str(tmp_path / "state")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        assert dev.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        try:
            # When `marketscan dev` is up, the bot among its processes
            while not any(line.startswith("[bot]") and "is polling" in line for line in lines):
                assert time.monotonic() < deadline, "".join(lines)
                line = dev.stdout.readline()
                assert line, "".join(lines)
                lines.append(line)
            assert any(line.startswith("Telegram bot: polling") for line in lines)
            # Then the bot answers an allowed user
            telegram.user_says(4242, "/help")
            while not telegram.sent_to(4242):
                assert time.monotonic() < deadline, "no answer to /help"
                time.sleep(0.05)
            assert "/scan GAME" in telegram.sent_to(4242)[0][1]
        finally:
            if dev.poll() is None:
                dev.send_signal(signal.SIGINT)
            try:
                dev.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                dev.kill()
        # And Ctrl-C stopped it along with the rest
        assert dev.returncode is not None
