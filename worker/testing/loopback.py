"""A fake outside service on loopback: a threading HTTP server on a free port of 127.0.0.1,
served from a daemon thread for as long as the fake is used as a context manager.

The loopback DMarket and the loopback Bot API both stand on it, so starting, stopping and
waking their sleeping handlers is written once.
"""

from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

# shutdown() waits up to one poll for the loop to notice; keep tests quick.
SHUTDOWN_POLL_SECONDS = 0.01


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The server; its handlers reach their fake as `self.server.fake`."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: LoopbackService) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake

    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (the tests do it) resets its connection: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackService(ABC):
    """Base of a fake service: `_closing` is set when it stops, so handlers sleeping in a
    slow reply or a long poll wake at once; `base_url` while it runs."""

    def __init__(self) -> None:
        self._closing = threading.Event()
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            name = type(self).__name__
            raise RuntimeError(f"{name} is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @abstractmethod
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class of the fake's protocol."""

    def __enter__(self) -> Self:
        self._server = LoopbackHTTPServer(self._handler(), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
