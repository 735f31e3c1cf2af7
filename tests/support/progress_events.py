"""Who holds the progress events' broker connections: Redis's own list of its clients."""

from __future__ import annotations

import redis

from worker.celery_glue import progress_events


def progress_clients(redis_url: str) -> dict[int, set[int]]:
    """Redis's client ids of the progress dispatchers' connections, by the pid in their name."""
    found: dict[int, set[int]] = {}
    with redis.Redis.from_url(redis_url) as client:
        for connection in client.client_list():
            name = connection.get("name", "")
            if name.startswith(progress_events.CLIENT_NAME_PREFIX):
                pid = int(name.removeprefix(progress_events.CLIENT_NAME_PREFIX))
                found.setdefault(pid, set()).add(int(connection["id"]))
    return found
