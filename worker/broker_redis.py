"""The one way to a client of the broker's Redis: `redis://`, `rediss://` or Sentinel.

Everything that keeps state beside the messages (the broker ledger, the market budgets,
the notifier's message state, under the prefixes of worker.redis_keys) talks to the Redis
that Celery's broker URL names, so it follows that URL the way kombu does. A Sentinel URL
lists the sentinels, `sentinel://[:password@]h1:26379[/db];sentinel://h2:26379`, and the
master's name comes from MARKETSCAN_SENTINEL_MASTER (celeryconfig hands kombu the same
name); the client asks the sentinels for the master and asks again when a failover moves
it. `shared` is this process's client, `new_client` one of the caller's own.

Clients are fork-safe: shared ones are kept per process id, and redis-py's pools drop
sockets a parent opened before forking, so a prefork child always dials its own.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from worker.errors import ConfigError

SCHEMES = ("redis", "rediss", "sentinel")
SENTINEL_PORT = 26379

_lock = threading.Lock()
_shared: dict[tuple[int, str, str], redis.Redis] = {}


def is_sentinel(url: str) -> bool:
    return url.strip().lower().startswith("sentinel://")


def transport_options(url: str, master_name: str) -> dict[str, Any]:
    """What kombu's transport needs beyond the URL: the master's name for Sentinel."""
    return {"master_name": master_name} if is_sentinel(url) else {}


def shared(url: str, master_name: str) -> redis.Redis:
    """This process's shared client of the Redis at `url` (`master_name`: the Sentinel
    master's, for a sentinel:// URL); never close it."""
    key = (os.getpid(), url, master_name)
    with _lock:
        client = _shared.get(key)
        if client is None:
            client = new_client(url, master_name)
            _shared[key] = client
        return client


def new_client(url: str, master_name: str, **options: Any) -> redis.Redis:
    """A client of its own for the Redis at `url` (its caller closes it); `options` are
    redis-py's (decode_responses, socket_timeout, ...)."""
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"CELERY_BROKER_URL: scheme {scheme or '(none)'!r} is not supported; "
            f"use one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    if scheme != "sentinel":
        return redis.Redis.from_url(url, **options)
    sentinels, password, db = _sentinel_parts(url)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(sentinels, sentinel_kwargs=timeouts)
    client: redis.Redis = sentinel.master_for(
        master_name, redis_class=redis.Redis, db=db, password=password, **options
    )
    return client


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str | None, int]:
    """The sentinels' addresses, the master's password and the database of a kombu-style
    Sentinel URL (the first URL that names a password or a database sets it)."""
    sentinels: list[tuple[str, int]] = []
    password: str | None = None
    db = 0
    for part in (piece.strip() for piece in url.split(";")):
        if not part:
            continue
        parsed = urlsplit(part)
        if parsed.scheme.lower() != "sentinel" or not parsed.hostname:
            raise ConfigError(
                f"CELERY_BROKER_URL: {part!r} must be sentinel://[:password@]host:port[/db]"
            )
        sentinels.append((parsed.hostname, parsed.port or SENTINEL_PORT))
        if password is None and parsed.password:
            password = unquote(parsed.password)
        path = parsed.path.strip("/")
        if path and not db:
            if not path.isdigit():
                raise ConfigError(f"CELERY_BROKER_URL: database {path!r} must be a number")
            db = int(path)
    return sentinels, password, db
