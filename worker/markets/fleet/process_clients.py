"""What one process keeps for every market call it makes: HTTP clients and request budgets.

A page task builds a new market for every page, but TCP (and TLS) connections and the
Redis connection behind the budget should outlive it. Both are made lazily, on first use
in the process that uses them: a prefork pool child never inherits its parent's sockets
(a pid check drops whatever was made before the fork). HTTP clients are closed at exit.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading

import httpx

from worker import broker_redis
from worker.markets.fleet.budget import RequestBudget
from worker.settings import DEFAULT_SENTINEL_MASTER

_lock = threading.Lock()
_owner_pid: int | None = None
_http_clients: dict[tuple[str, float], httpx.Client] = {}
_budgets: dict[tuple[str, str, float], RequestBudget] = {}


def http_client(base_url: str, timeout_seconds: float) -> httpx.Client:
    """This process's keep-alive client for `base_url`, made on first use."""
    with _lock:
        _forget_inherited()
        key = (base_url, timeout_seconds)
        client = _http_clients.get(key)
        if client is None or client.is_closed:
            client = new_http_client(base_url, timeout_seconds)
            _http_clients[key] = client
            _close_at_exit()
        return client


def new_http_client(base_url: str, timeout_seconds: float) -> httpx.Client:
    """A client for `base_url` that speaks JSON; its owner closes it."""
    return httpx.Client(
        base_url=base_url,
        timeout=timeout_seconds,
        headers={"Accept": "application/json", "User-Agent": "marketscan"},
    )


def request_budget(
    redis_url: str,
    api: str,
    requests_per_second: float,
    sentinel_master: str = DEFAULT_SENTINEL_MASTER,
) -> RequestBudget:
    """This process's handle on the fleet's budget for `api`, kept in the Redis at `redis_url`
    (`sentinel_master`: the master's name when it is a sentinel:// URL)."""
    with _lock:
        _forget_inherited()
        key = (redis_url, api, requests_per_second)
        budget = _budgets.get(key)
        if budget is None:
            client = broker_redis.shared(redis_url, sentinel_master)
            budget = RequestBudget(client, api, requests_per_second)
            _budgets[key] = budget
        return budget


def close_all() -> None:
    """Close this process's HTTP clients (at exit; tests use it to start afresh)."""
    with _lock:
        if _owner_pid == os.getpid():
            for client in _http_clients.values():
                client.close()
        _http_clients.clear()
        _budgets.clear()


def _forget_inherited() -> None:
    """Drop what a parent made before forking: its sockets are not ours to use or close."""
    global _owner_pid
    if _owner_pid != os.getpid():
        _http_clients.clear()
        _budgets.clear()
        _owner_pid = os.getpid()


@functools.cache
def _close_at_exit() -> None:
    """Once per process, with its first client (worker.celery_glue.signals closes them in
    pool children, which leave through os._exit and skip atexit)."""
    atexit.register(close_all)
