"""A tiny inference backend for tests: a real HTTP server on a free port the OS picks.

The test sets what it answers: the health endpoint's status code, delay, body (raw bytes,
trickled a byte at a time if asked, or the connection reset instead) and a cookie to set,
and the status endpoint's ``active_jobs`` (or any body). It records each request's path and
Cookie header, and counts requests in flight across every instance, so a test can see that
backends were probed at the same time.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeBackend:
    _lock = threading.Lock()
    in_flight = 0
    max_in_flight = 0

    def __init__(self) -> None:
        self.health_code = 200
        self.delay_s = 0.0
        self.health_body: bytes | None = None  # raw bytes instead of "ok" / "overloaded"
        self.trickle_s = 0.0  # > 0: the health body goes out one byte every trickle_s seconds
        self.reset = False  # the health request is answered with a TCP reset
        self.set_cookie: str | None = None  # a Set-Cookie header of the health answer
        self.active_jobs: int | None = None  # None: /status answers 404
        self.status_body: str | None = None  # a raw body instead of {"active_jobs": ...}
        self.requests: list[str] = []
        self.cookies: list[str | None] = []  # the Cookie header of each request
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                backend.requests.append(self.path)
                backend.cookies.append(self.headers.get("Cookie"))
                if self.path == "/health" and backend.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                elif self.path == "/health":
                    backend._count(+1)
                    try:
                        time.sleep(backend.delay_s)
                        body = (
                            backend.health_body
                            if backend.health_body is not None
                            else (b"ok" if backend.health_code < 400 else b"overloaded")
                        )
                        cookie = {"Set-Cookie": backend.set_cookie} if backend.set_cookie else {}
                        self._answer(backend.health_code, body, trickle_s=backend.trickle_s, headers=cookie)
                    finally:
                        backend._count(-1)
                elif self.path == "/status" and (backend.status_body is not None or backend.active_jobs is not None):
                    body = (
                        backend.status_body
                        if backend.status_body is not None
                        else json.dumps({"active_jobs": backend.active_jobs, "total_requests": len(backend.requests)})
                    )
                    self._answer(200, body.encode(), "application/json")
                else:
                    self._answer(404, b"not found")

            def _answer(
                self,
                code: int,
                body: bytes,
                content_type: str = "text/plain",
                trickle_s: float = 0,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if 300 <= code < 400:
                    self.send_header("Location", self.path)  # a redirect to itself: a loop
                self.end_headers()
                if not trickle_s:
                    self.wfile.write(body)
                    return
                try:
                    for byte in body:
                        time.sleep(trickle_s)
                        self.wfile.write(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the prober gave up on us, as it should

            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @classmethod
    def _count(cls, delta: int) -> None:
        with cls._lock:
            cls.in_flight += delta
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
