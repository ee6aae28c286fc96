"""A hostile network in a namespace of its own, for the webhook sender (run by test_webhook_network).

Run as root inside ``unshare --mount --net``: it brings up loopback, gives it the cloud
metadata address 169.254.169.254 too, points the resolver at a DNS server of its own on
127.0.0.1:53 and serves HTTP on port 80 of every address. The DNS server answers
``rebind.test`` with 127.0.0.1 and 169.254.169.254 in turn (time to live 0, as a rebinding
attacker does), ``metadata.test`` with 169.254.169.254 and ``slow.test`` after 20 s. Then it
POSTs through the sender's own ``_post`` and prints, as JSON, what each POST returned and which
local address each request the HTTP server got arrived on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from models_core.events.webhooks import Receiver, _post

METADATA = "169.254.169.254"
hits: list[str] = []
asked: dict[str, int] = {}


def _answer(query: bytes) -> bytes:
    """A DNS answer (A records only) to ``query``, as the hostile server gives it."""
    labels, i = [], 12
    while query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode())
        i += query[i] + 1
    name, qtype = ".".join(labels), struct.unpack(">H", query[i + 1 : i + 3])[0]
    if qtype == 1:
        asked[name] = asked.get(name, 0) + 1
    addresses: list[str] = []
    if name.startswith("slow."):
        time.sleep(20)
    if qtype == 1:  # A; AAAA gets no address
        addresses = {
            "rebind.test": ["127.0.0.1" if asked[name] % 2 else METADATA],
            "metadata.test": [METADATA],
            "slow.test": ["127.0.0.1"],
        }.get(name, [])
    header = query[:2] + struct.pack(">HHHHH", 0x8180, 1, len(addresses), 0, 0)
    records = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + socket.inet_aton(a) for a in addresses)
    return header + query[12 : i + 5] + records


def _serve_dns() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    while True:
        query, client = server.recvfrom(512)
        threading.Thread(target=lambda q=query, c=client: server.sendto(_answer(q), c), daemon=True).start()


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the handler's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        local = self.connection.getsockname()[0]
        hits.append(local)
        body = f"answered on {local}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{METADATA}/32", "dev", "lo"], check=True)
    resolv = Path(sys.argv[1])
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    threading.Thread(target=_serve_dns, daemon=True).start()
    threading.Thread(target=ThreadingHTTPServer(("0.0.0.0", 80), _Receiver).serve_forever, daemon=True).start()
    time.sleep(0.5)

    results: dict[str, object] = {}
    started = time.monotonic()
    with asyncio.Runner() as loop:
        http = httpx.AsyncClient(timeout=2.0, follow_redirects=False, trust_env=False)
        for name in ("rebind.test", "rebind.test", "rebind.test", "metadata.test"):
            receiver = Receiver(name, f"http://{name}/hook", "WEBHOOK_SECRET_NET")
            outcome = loop.run(_post(http, receiver, "s3cr3t", {"event_id": 1}, 2.0))
            results.setdefault(name, []).append(outcome[0] or f"delivered {outcome[1]}")  # type: ignore[union-attr]
        slow_started = time.monotonic()
        slow = loop.run(
            _post(http, Receiver("slow", "http://slow.test/hook", "WEBHOOK_SECRET_NET"), "s", {"event_id": 1}, 1.0)
        )
        results["slow"] = {"error": slow[0], "seconds": time.monotonic() - slow_started}
        loop.run(http.aclose())
    results["loop_closed_after_s"] = time.monotonic() - slow_started
    results["hits"] = hits
    results["total_s"] = time.monotonic() - started
    print(json.dumps(results))


if __name__ == "__main__":
    main()
