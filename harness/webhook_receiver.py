"""A real HTTP webhook receiver on localhost, for the events tests and the ``outbox`` fault."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Answers one POST: its headers and body in, the HTTP status to reply with out.
Handle = Callable[[Message, bytes], int]


@contextmanager
def serving(handle: Handle, path: str = "/hook") -> Iterator[str]:
    """Serve POSTs with ``handle`` on a free port (a thread per request); yields the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            status = handle(self.headers, self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()
