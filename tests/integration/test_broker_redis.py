"""One client factory for the broker's Redis: plain, TLS-less rediss-style URLs, and Sentinel
(against a real master, replica and sentinels on loopback), fork-safe."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from worker import broker_redis
from worker.devtools.embedded_sentinel import MASTER_NAME, SentinelRedis, sentinel_redis
from worker.errors import ConfigError


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelRedis]:
    # Started like the suite's other servers; a group that cannot start fails the test.
    with sentinel_redis(tmp_path / "sentinel") as group:
        yield group


def test_a_redis_url_gives_a_client_of_that_redis(redis_url: str) -> None:
    client = broker_redis.new_client(redis_url, MASTER_NAME, decode_responses=True)
    with client:
        client.set("marketscan:test", "plain")
        assert redis.Redis.from_url(redis_url).get("marketscan:test") == b"plain"


def test_a_sentinel_url_reaches_the_master_and_follows_a_failover(
    sentinel_group: SentinelRedis,
) -> None:
    # Given a client made from a kombu-style Sentinel URL
    client = broker_redis.new_client(sentinel_group.url, MASTER_NAME, socket_timeout=2)
    client.set("marketscan:test", "before")
    first = sentinel_group.master_port()
    assert redis.Redis(port=first).get("marketscan:test") == b"before"
    # When the sentinels promote the replica
    sentinel_group.fail_over()
    deadline = time.monotonic() + 30
    while sentinel_group.master_port() == first or _role(first) != "slave":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Then the same client writes to the new master (after at most a few refused calls)
    while True:
        try:
            client.set("marketscan:test", "after")
            break
        except redis.RedisError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert redis.Redis(port=sentinel_group.master_port()).get("marketscan:test") == b"after"


def _role(port: int) -> str:
    with redis.Redis(port=port, decode_responses=True) as client:
        return str(client.info("replication")["role"])


def test_a_forked_child_dials_its_own_connection(redis_url: str) -> None:
    # Given the parent's shared client, connected
    client = broker_redis.shared(redis_url, MASTER_NAME)
    parent_id = client.client_id()
    # When a forked child uses the shared client
    pid = os.fork()
    if pid == 0:
        try:
            child = broker_redis.shared(redis_url, MASTER_NAME)
            child.set("marketscan:child-id", child.client_id())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    # Then it spoke on a connection of its own, and the parent's still works
    assert int(client.get("marketscan:child-id") or 0) not in (0, parent_id)
    assert client.client_id() == parent_id


def test_an_unknown_scheme_is_refused_naming_the_setting_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as refused:
        broker_redis.new_client("amqp://localhost//", MASTER_NAME)
    assert "CELERY_BROKER_URL" in str(refused.value)
    assert "redis://, rediss://, sentinel://" in str(refused.value)


def test_a_bad_sentinel_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="sentinel://"):
        broker_redis.new_client("sentinel://h1:26379;redis://h2:6379", MASTER_NAME)


def test_kombu_is_given_the_master_name_for_sentinel_only() -> None:
    assert broker_redis.transport_options("sentinel://h:26379", "prod") == {"master_name": "prod"}
    assert broker_redis.transport_options("redis://h:6379/0", "prod") == {}
