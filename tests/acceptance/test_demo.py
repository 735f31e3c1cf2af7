"""`marketscan demo`: crash, resume, an exact summary, and nothing left running."""

from __future__ import annotations

import subprocess
import sys

import psutil


def test_demo_kills_the_worker_resumes_and_reports_an_exact_scan() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "SIGKILL worker pid" in out
    assert "resumed from checkpoint at" in out
    assert "3000 of 3000" in out
    assert "no item lost, none counted twice" in out
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if any("marketscan-demo-" in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
