"""`marketscan metrics`: one HTTP exporter serving the whole fleet's metrics on /metrics.

It holds no counter of its own: every value is read at scrape time from where the fleet
keeps it (PostgreSQL, the notes hash and the queues in the broker's Redis), so any number
of exporters, restarted at any time, serve the same numbers. A scrape's reads do not grow
with the stored rows (worker.db.row_tallies), and scrapes that arrive together, however
many, share one reading (worker.metrics.single_flight).
"""

from __future__ import annotations

import functools
import logging
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from worker import broker_redis
from worker.db import session_scope
from worker.metrics import events
from worker.metrics.collector import FleetCollector, Sessions
from worker.settings import DEFAULT_SENTINEL_MASTER, get_settings

log = logging.getLogger(__name__)


def fleet_collector(
    sessions: Sessions, broker: redis.Redis, store: events.EventStore
) -> FleetCollector:
    """The fleet's collector, with the configured DMarket's breaker (the simulated market
    has none)."""
    return FleetCollector(sessions, broker, store, {"dmarket": get_settings().dmarket_url})


def registry(fleet: FleetCollector) -> CollectorRegistry:
    """A registry holding only the fleet's collector (no exporter-process metrics)."""
    served = CollectorRegistry(auto_describe=False)
    served.register(fleet)
    return served


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # one line per scrape is noise
        log.debug(format, *args)


class Exporter:
    """The HTTP server; `serve_forever` until `shutdown` (from another thread) or a signal."""

    def __init__(
        self, host: str, port: int, broker_url: str, sentinel_master: str = DEFAULT_SENTINEL_MASTER
    ) -> None:
        self._host = host
        broker = broker_redis.shared(broker_url, sentinel_master)
        self.collector = fleet_collector(session_scope, broker, events.RedisEventStore(broker))
        app = make_wsgi_app(registry(self.collector))
        self._server = make_server(
            host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler
        )

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}/metrics"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@functools.cache
def process_store(broker_url: str, sentinel_master: str) -> events.RedisEventStore:
    """This process's handle on the notes store (the factory's client is per process)."""
    return events.RedisEventStore(broker_redis.shared(broker_url, sentinel_master))
