"""A tiny inference backend for tests: a real HTTP server on a free port the OS picks.

The test sets what it answers: the health endpoint's status code and delay, and the status
endpoint's ``active_jobs`` (or a body that is not JSON). It counts requests in flight across
every instance, so a test can see that backends were probed at the same time.
"""
from __future__ import annotations

import json
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
        self.active_jobs: int | None = None  # None: /status answers 404
        self.status_body: str | None = None  # a raw body instead of {"active_jobs": ...}
        self.requests: list[str] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                backend.requests.append(self.path)
                if self.path == "/health":
                    backend._count(+1)
                    try:
                        time.sleep(backend.delay_s)
                        self._answer(backend.health_code, "ok" if backend.health_code < 400 else "overloaded")
                    finally:
                        backend._count(-1)
                elif self.path == "/status" and (backend.status_body is not None or backend.active_jobs is not None):
                    body = backend.status_body if backend.status_body is not None else json.dumps(
                        {"active_jobs": backend.active_jobs, "total_requests": len(backend.requests)})
                    self._answer(200, body, "application/json")
                else:
                    self._answer(404, "not found")

            def _answer(self, code: int, body: str, content_type: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
