"""A TCP port in front of a PostgreSQL server, that a fault turns into an unreachable or hung one.

The registry connection of the Airflow processes points here instead of at the server.
Modes:

- ``pass``: bytes go through both ways, a normal registry;
- ``refuse``: nothing listens, connecting is refused (a server that is down);
- ``reset``: a connection is accepted, then reset at once (a broken network path);
- ``hang``: a connection is accepted and never answered (a server or firewall that swallows
  packets): only a client's own timeouts end the wait.

Leaving ``pass`` cuts the connections that are open, as an outage would. The server behind
it is never touched, so it may be a server others use too.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress
from enum import Enum

from psycopg2.extensions import parse_dsn

ACCEPT_POLL_S = 0.1
CHUNK = 1 << 16


class Mode(str, Enum):
    PASS = "pass"
    REFUSE = "refuse"
    RESET = "reset"
    HANG = "hang"


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN, as a broken path does."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()


class RegistryProxy:
    """Listens on 127.0.0.1:``port`` and forwards to the server ``target_dsn`` names (TCP or unix socket)."""

    def __init__(self, target_dsn: str) -> None:
        parts = parse_dsn(target_dsn)
        host, port = parts.get("host") or "127.0.0.1", int(parts.get("port") or 5432)
        self._target: tuple[int, object] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self._lock = threading.Lock()
        self._mode = Mode.PASS
        self._applied = threading.Event()
        self._stopped = threading.Event()
        self._open: list[socket.socket] = []  # every socket a cut must close
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="registry-proxy", daemon=True)
        self._thread.start()

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Switch behaviour; returns once new connections get it. Leaving ``pass`` cuts open ones."""
        with self._lock:
            leaving_pass = self._mode is Mode.PASS and mode is not Mode.PASS
            self._mode = mode
            self._applied.clear()
            if leaving_pass or mode is Mode.PASS:
                for sock in self._open:
                    _reset(sock)
                self._open.clear()
        self._applied.wait(timeout=5)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        with self._lock:
            for sock in self._open:
                _reset(sock)
            self._open.clear()

    # ---- the accept loop --------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listener.settimeout(ACCEPT_POLL_S)
        return listener

    def _serve(self) -> None:
        while not self._stopped.is_set():
            mode = self._mode
            if mode is Mode.REFUSE and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif mode is not Mode.REFUSE and self._listener is None:
                self._listener = self._listen(self.port)
            self._applied.set()
            if self._listener is None:
                self._stopped.wait(ACCEPT_POLL_S)
                continue
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._handle(client, mode)
        if self._listener is not None:
            self._listener.close()

    def _handle(self, client: socket.socket, mode: Mode) -> None:
        if mode is Mode.RESET:
            _reset(client)
            return
        with self._lock:
            self._open = [sock for sock in self._open if sock.fileno() != -1]  # forget closed ones
            self._open.append(client)
        if mode is Mode.HANG:
            return  # held open, never answered, until the mode changes
        try:
            upstream = socket.socket(self._target[0], socket.SOCK_STREAM)
            upstream.connect(self._target[1])
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._open.append(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until either side closes; then close both."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()
