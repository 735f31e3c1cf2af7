"""The bare Celery hop: a task that does nothing but publish the next link of its chain.

Shared by the project's worker (bench.kit.tasks registers it on worker.app) and by the bare
apps of bench.kit.hop_apps, so every floor runs the same task body. Timings go to Redis under
`bench:hop:`, written outside the timed stretch; nothing here imports worker.app, so a bare
app's worker runs none of marketscan's signal handlers.
"""

from __future__ import annotations

import time
import uuid
from functools import lru_cache
from typing import Any

import redis

from worker import broker_redis
from worker.settings import DEFAULT_SENTINEL_MASTER, get_settings

HOP_TASK = "bench.hop"
# Hops before the clock starts: the first ones open connections and warm caches.
WARMUP_HOPS = 10
POLL_SECONDS = 0.05


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    settings = get_settings()
    return broker_redis.new_client(settings.broker_url, settings.sentinel_master)


def hop_key(run_id: str) -> str:
    return f"bench:hop:{run_id}"


def hop_step(app: Any, run_id: str, hops_left: int, hops_total: int) -> None:
    """One link: mark the clock at the edges, else publish the next link through `app`."""
    if hops_left == hops_total - WARMUP_HOPS:
        _redis().hset(hop_key(run_id), "start", repr(time.time()))
    if hops_left == 0:
        _redis().hset(hop_key(run_id), "end", repr(time.time()))
        return
    app.send_task(HOP_TASK, args=(run_id, hops_left - 1, hops_total))


def hop_seconds(app: Any, broker_url: str, hops: int, timeout_s: float = 300.0) -> float:
    """Seconds per link of a chain of `hops` hops, started through `app` (its default queue)."""
    run_id = uuid.uuid4().hex
    client = broker_redis.new_client(broker_url, DEFAULT_SENTINEL_MASTER, decode_responses=True)
    try:
        app.send_task(HOP_TASK, args=(run_id, hops, hops))
        deadline = time.monotonic() + timeout_s
        while "end" not in (marks := client.hgetall(hop_key(run_id))):
            if time.monotonic() > deadline:
                raise RuntimeError(f"hop chain {run_id} did not finish in {timeout_s}s")
            time.sleep(POLL_SECONDS)
    finally:
        client.close()
    return (float(marks["end"]) - float(marks["start"])) / (hops - WARMUP_HOPS)
