"""The loopback DMarket's HTTP plumbing: the handler that hands each GET and POST to the
fake."""

from __future__ import annotations

from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol, cast

from worker.testing.dmarket_replies import Answer
from worker.testing.loopback import LoopbackHTTPServer


class Answering(Protocol):
    """The fake behind the server: one answer per request."""

    def _answer(
        self,
        raw_path: str,
        headers: Mapping[str, str],
        connection: tuple[str, int],
        method: str = "GET",
        body: bytes = b"",
    ) -> Answer: ...


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the real API: a client that pools connections reuses one.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._reply("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._reply("POST", self.rfile.read(length) if length > 0 else b"")

    def _reply(self, method: str, body: bytes) -> None:
        host, port = self.client_address[:2]
        answer = cast(Answering, cast(LoopbackHTTPServer, self.server).fake)._answer(
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            (str(host), int(port)),
            method,
            body,
        )
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a timeout test); nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output to the test's own story
