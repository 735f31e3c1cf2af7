"""Which marketscan processes are alive: each worker and beat refreshes its entry in a
sorted set of the broker's Redis every few seconds; the exporter counts the fresh ones.

Entries are scored by the writer's clock (hosts' clocks agree within the window, as the
broker ledger already requires) and named `role:hostname`; only counts by role leave the
exporter, never a hostname.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from worker import redis_keys

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0
# An entry older than this is a process that stopped (three missed refreshes).
WINDOW_SECONDS = 3 * REFRESH_SECONDS
ROLES = ("worker", "beat")


def announce(client: redis.Redis, role: str, hostname: str, now: float | None = None) -> None:
    """Note that `role` process `hostname` is alive now."""
    client.zadd(
        redis_keys.PRESENCE_KEY, {f"{role}:{hostname}": time.time() if now is None else now}
    )


def alive_by_role(client: redis.Redis, now: float | None = None) -> dict[str, int]:
    """How many processes of each role announced themselves within the window."""
    moment = time.time() if now is None else now
    with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(redis_keys.PRESENCE_KEY, "-inf", moment - WINDOW_SECONDS)
        pipe.zrange(redis_keys.PRESENCE_KEY, 0, -1)
        _, members = pipe.execute()
    counts = dict.fromkeys(ROLES, 0)
    for member in members:
        role = member.decode().partition(":")[0]
        if role in counts:
            counts[role] += 1
    return counts


class Presence:
    """A daemon thread announcing this process until the process ends."""

    def __init__(self, client: redis.Redis, role: str, hostname: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self._client, self._role, self._hostname = client, role, hostname
        self._stopped = threading.Event()

    def start(self) -> Presence:
        threading.Thread(target=self._run, name="metrics-presence", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                announce(self._client, self._role, self._hostname)
            except redis.RedisError as exc:  # the broker is down: the workers alert says so
                log.warning("could not announce %s %s: %s", self._role, self._hostname, exc)
            self._stopped.wait(REFRESH_SECONDS)
