"""Signed webhooks: the registry's events POSTed to receivers, retried with backoff, logged.

A change only queues a delivery row per subscribed webhook (migration 0011's trigger, in the
change's transaction); a separate sender, a task of ``detection_model_registry_events``,
POSTs them. Each receiver is served by its own thread with a bounded timeout, so one that is
down or slow delays only its own deliveries, never a change, a cycle or another receiver.
Delivery is at least once: receivers dedupe by the payload's ``event_id``.

The body is the event's JSON; ``X-Registry-Signature: t=<unix time>,v1=<hex>`` carries
HMAC-SHA256 over ``f"{t}.{body}"`` with the webhook's secret, which only an environment
variable of the sender holds (the registry stores the variable's name, never the secret).

What a governor may point the sender at is bounded too: the secret's variable is one of the
``WEBHOOK_SECRET_*`` namespace (never the sender's database password or cloud keys), a URL
carries no credentials and never names a link-local or cloud-metadata address (checked
again, resolved, before every POST), and a POST ends within the timeout however slowly the
receiver answers, headers included.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from psycopg2.extensions import connection as PgConnection

from models_core.errors import ModelRegistryError
from models_core.settings import webhook_secret
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

_SQL = "events/webhooks.sql"
SIGNATURE_HEADER = "X-Registry-Signature"
EVENT_ID_HEADER = "X-Registry-Event-Id"
#: First retry after 30 s, doubling up to 15 min between attempts, until the retry window ends.
FIRST_BACKOFF_S = 30.0
MAX_BACKOFF_S = 900.0
#: Deliveries one receiver's thread leases at a time.
LEASE_BATCH = 20
#: Receivers served at once by one sender.
MAX_RECEIVERS_AT_ONCE = 8
#: The most of a receiver's answer kept in the log.
ERROR_CHARS = 300


#: The environment variables a webhook may name for its secret: a namespace of their own, so a
#: webhook cannot have the sender sign with any other secret of its environment (and a receiver
#: then test guesses of it against the signature). Migration 0012 holds the same rule.
SECRET_ENV_PATTERN = r"^WEBHOOK_SECRET_[A-Z0-9_]+$"
#: Cloud metadata services outside the link-local range (AWS over IPv6, Alibaba Cloud).
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))


def in_secret_namespace(variable: str) -> bool:
    """Whether a webhook may name ``variable`` for its secret (:data:`SECRET_ENV_PATTERN`)."""
    return re.fullmatch(SECRET_ENV_PATTERN, variable) is not None


class WebhookError(ModelRegistryError):
    """A webhook cannot be added as given; the message says what to change."""


def url_problem(url: str) -> str | None:
    """Why the sender may not POST to ``url``, or None. The rule of every door (``add_webhook``,
    and the sender before each POST, for rows written before the rule or by hand)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not one
    except ValueError as exc:
        return f"the URL does not parse: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"the URL must be http:// or https:// with a host, got {parts.scheme or 'no scheme'}://{parts.netloc}"
    if parts.username is not None or parts.password is not None:
        return "the URL carries credentials (user:password@): the signature is what authenticates the sender"
    if not (url.isascii() and url.isprintable()):
        return "the URL has a non-printable or non-ASCII character (write a host as its xn-- name, a path %-encoded)"
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        return f"the URL does not parse: {exc}"
    literal = _ip_literal(parts.hostname)
    return None if literal is None else _address_problem(literal)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as the address the resolver reads it as (``2852039166`` and ``0xA9FEA9FE`` are
    169.254.169.254 to it), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:  # ::1 falls in IPv6's reserved ::/8; this machine's receivers are fine
        return None
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in _METADATA_ADDRESSES
    ):
        return f"the URL's host is {address}, a link-local, metadata, multicast or reserved address, never a receiver"
    return None


def shown_url(url: str, *, full: bool) -> str:
    """The URL as a reader sees it: whole for who may manage webhooks, else scheme and host only
    (a receiver's path or query often is its token, as a chat service's incoming-webhook URL is)."""
    if full:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def shown_error(error: str | None, *, full: bool) -> str | None:
    """A delivery's last error as a reader sees it: whole for who may manage webhooks, else its
    kind only (``HTTP 404``, ``TimeoutError``): a receiver's answer may quote the URL's token."""
    return error if full or error is None else error.split(":", 1)[0]


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = 300, now: float | None = None) -> bool:
    """The receiver's check (the documented recipe): the HMAC matches and the timestamp is recent.

    The timestamp is signed with the body, so a captured request replayed later fails.
    """
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs((time.time() if now is None else now) - timestamp) <= tolerance_s
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


def body_of(extra: dict[str, Any]) -> bytes:
    """The JSON body of an event (the Asset event's ``extra``), stable key order."""
    return json.dumps(extra, sort_keys=True, separators=(",", ":"), default=str).encode()


def backoff_s(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 30, 60, 120 ... 900, 900 ..."""
    return min(FIRST_BACKOFF_S * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S)


#: What ``--events`` may name: an event kind, or an audit action among the common ones.
KINDS = ("state", "details", "approval", "guards", "dependencies")
ACTIONS = (
    "register",
    "activate",
    "deactivate",
    "archive",
    "promote",
    "rollback",
    "error",
    "reactivate",
    "approve",
    "reject",
    "gates",
    "checks",
    "approvals",
    "policy",
    "deps_add",
    "deps_remove",
)


def add_webhook(conn: PgConnection, name: str, url: str, events: list[str], secret_env: str, created_by: str) -> None:
    """Add (or replace) a webhook; it gets the events committed from now on."""
    unknown = sorted(set(events) - set(KINDS) - set(ACTIONS))
    if unknown:
        raise WebhookError(
            f"unknown event(s) {', '.join(unknown)}: name kinds ({', '.join(KINDS)}) or actions ({', '.join(ACTIONS)})"
        )
    problem = url_problem(url)
    if problem:
        raise WebhookError(f"webhook {name}: {problem}")
    if not in_secret_namespace(secret_env):
        raise WebhookError(
            f"webhook {name}: secret_env {secret_env!r} is not a WEBHOOK_SECRET_* variable (capitals, digits, _):"
            " a webhook may not sign with another secret of the sender's environment"
        )
    with conn, conn.cursor() as cur:
        cur.execute(
            _q("add_webhook"),
            {
                "name": name,
                "url": url,
                "events": sorted(set(events)),
                "secret_env": secret_env,
                "created_by": created_by,
            },
        )


def remove_webhook(conn: PgConnection, name: str) -> bool:
    """Remove a webhook and its delivery log; False if there was none by that name."""
    with conn, conn.cursor() as cur:
        cur.execute(_q("remove_webhook"), {"name": name})
        return cur.rowcount > 0


def list_webhooks(conn: PgConnection) -> list[dict[str, Any]]:
    """Every webhook with its deliveries by status."""
    keys = ("name", "url", "events", "secret_env", "enabled", "delivered", "pending", "gave_up")
    with conn.cursor() as cur:
        cur.execute(_q("webhooks"))
        rows = [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
    conn.rollback()
    return rows


def deliveries(conn: PgConnection, webhook: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The delivery log, newest first: status, attempts, next attempt, last error, latency."""
    keys = (
        "id",
        "webhook",
        "event_id",
        "model_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "last_http_status",
        "latency_ms",
        "created_at",
        "delivered_at",
    )
    with conn.cursor() as cur:
        cur.execute(_q("deliveries"), {"webhook": webhook, "limit": limit})
        rows = [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
    conn.rollback()
    return rows


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str
    secret_env: str


@dataclass(frozen=True)
class SendPolicy:
    """How the sender treats a receiver: the request's timeout and how long it keeps retrying."""

    timeout_s: float
    retry_window: timedelta
    budget_s: float  # a sender run stops leasing after this long (its task ends before the next run)


def send_due(connect: Callable[[], AbstractContextManager[PgConnection]], policy: SendPolicy) -> dict[str, int]:
    """POST every due delivery, one thread per receiver, until the run's budget is spent;
    returns deliveries by outcome."""
    deadline = time.monotonic() + policy.budget_s  # the run's, whichever receiver's thread starts when
    with connect() as conn, conn.cursor() as cur:
        cur.execute(_q("due_webhooks"))
        receivers = [Receiver(*row) for row in cur.fetchall()]
        conn.rollback()
    totals = {"delivered": 0, "failed": 0, "gave_up": 0}
    if not receivers:
        return totals
    with ThreadPoolExecutor(max_workers=min(len(receivers), MAX_RECEIVERS_AT_ONCE)) as pool:
        for counts in pool.map(lambda r: _serve(connect, r, policy, deadline), receivers):
            for key, value in counts.items():
                totals[key] += value
    return totals


def _serve(
    connect: Callable[[], AbstractContextManager[PgConnection]],
    receiver: Receiver,
    policy: SendPolicy,
    deadline: float,
) -> dict[str, int]:
    """One receiver's due deliveries, in event order, until none is due or the run's budget is spent.

    The POSTs run on an event loop of the thread's own: only a cancellation bounds a request's
    whole time (httpx's timeouts bound each read, and a receiver can send a byte per read). A
    delivery leased and not tried (the budget ran out, or the sender failed) is released."""
    counts = {"delivered": 0, "failed": 0, "gave_up": 0}
    if time.monotonic() >= deadline:
        return counts
    secret = webhook_secret(receiver.secret_env) if in_secret_namespace(receiver.secret_env) else None
    with connect() as conn, asyncio.Runner() as loop:
        http = httpx.AsyncClient(timeout=policy.timeout_s, follow_redirects=False, trust_env=False)
        try:
            while time.monotonic() < deadline:
                with conn, conn.cursor() as cur:
                    cur.execute(
                        _q("lease_due"),
                        {"webhook": receiver.name, "limit": LEASE_BATCH, "lease_s": policy.timeout_s + 30},
                    )
                    leased = cur.fetchall()
                if not leased:
                    break
                untried = [row[0] for row in leased]
                try:
                    for delivery_id, event_id, attempts, created_at, *_, payload in leased:
                        if time.monotonic() >= deadline:  # the rest wait for the next run, as not tried
                            break
                        extra = {"event_id": event_id, **payload}
                        outcome = loop.run(_post(http, receiver, secret, extra, policy.timeout_s))
                        counts[_record(conn, delivery_id, attempts, created_at, outcome, policy)] += 1
                        untried.remove(delivery_id)
                        if outcome[0] is not None:
                            log.info(
                                "webhook %s: event %s not delivered (attempt %d): %s",
                                receiver.name,
                                event_id,
                                attempts,
                                outcome[0],
                            )
                finally:
                    if untried:
                        with conn, conn.cursor() as cur:
                            cur.execute(_q("release"), {"ids": untried})
        finally:
            loop.run(http.aclose())
    return counts


def _record(
    conn: PgConnection,
    delivery_id: int,
    attempts: int,
    created_at: datetime,
    outcome: tuple[str | None, int | None, float | None],
    policy: SendPolicy,
) -> str:
    """Write one POST's outcome to the delivery log; returns it as counted (delivered, failed, gave_up)."""
    error, http_status, latency_ms = outcome
    with conn, conn.cursor() as cur:
        if error is None:
            cur.execute(_q("delivered"), {"id": delivery_id, "http_status": http_status, "latency_ms": latency_ms})
            return "delivered"
        give_up = datetime.now(UTC) - created_at >= policy.retry_window
        cur.execute(
            _q("failed"),
            {
                "id": delivery_id,
                "give_up": give_up,
                "backoff_s": backoff_s(attempts),
                "error": error,
                "http_status": http_status,
                "latency_ms": latency_ms,
            },
        )
    return "gave_up" if give_up else "failed"


async def _post(
    http: httpx.AsyncClient, receiver: Receiver, secret: str | None, extra: dict[str, Any], timeout_s: float
) -> tuple[str | None, int | None, float | None]:
    """(error or None, HTTP status, latency ms) of one POST, resolving included, all within
    ``timeout_s``; any failure is a value, never raised.

    The request goes to an address the sender has checked, not to the name: resolved again
    by the HTTP client, a name can answer a metadata address the second time (DNS rebinding).
    The name stays the ``Host`` header and, over TLS, the name the certificate must carry."""
    if not in_secret_namespace(receiver.secret_env):
        return f"the secret's variable {receiver.secret_env} is not a WEBHOOK_SECRET_* one: not sent", None, None
    if secret is None:
        return f"the secret's environment variable {receiver.secret_env} is not set on the sender", None, None
    problem = url_problem(receiver.url)
    if problem:
        return f"not sent: {problem}", None, None
    body = body_of(extra)
    parts = urlsplit(receiver.url)
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        EVENT_ID_HEADER: str(extra["event_id"]),
    }
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            addresses, problem = await _checked_addresses(parts.hostname or "", parts.port, parts.scheme)
            if problem:
                return f"not sent: {problem}", None, None
            for position, address in enumerate(addresses):
                url = httpx.URL(receiver.url).copy_with(host=address)
                try:
                    async with http.stream(
                        "POST", url, content=body, headers=headers, extensions=extensions
                    ) as response:
                        answer = await _bounded_body(response)
                    break
                except httpx.ConnectError:
                    if position == len(addresses) - 1:
                        raise
    except TimeoutError:
        elapsed = time.monotonic() - started
        return f"TimeoutError: no whole answer within {timeout_s:g} s of the POST", None, elapsed * 1000
    except Exception as exc:  # noqa: BLE001 - whatever a receiver makes fail is this delivery's error, not the run's
        return f"{type(exc).__name__}: {str(exc)[:ERROR_CHARS]}", None, (time.monotonic() - started) * 1000
    latency_ms = (time.monotonic() - started) * 1000
    if 200 <= response.status_code < 300:
        return None, response.status_code, latency_ms
    return f"HTTP {response.status_code}: {answer}", response.status_code, latency_ms


async def _checked_addresses(host: str, port: int | None, scheme: str) -> tuple[list[str], str | None]:
    """The addresses ``host`` resolves to now, in the resolver's order, or why none may be POSTed
    to (any one a refused address: a name that may answer it is no receiver's)."""
    port = port or (443 if scheme == "https" else 80)
    infos = await _resolve(host, port)
    addresses = list(dict.fromkeys(str(sockaddr[0]).split("%")[0] for *_, sockaddr in infos))
    for address in addresses:
        problem = _address_problem(ipaddress.ip_address(address))
        if problem:
            return [], problem.replace("the URL's host is", f"{host} resolves to")
    return addresses, None


async def _resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` on a daemon thread of its own: a resolver that hangs past the POST's timeout
    is left behind (the event loop's executor would be waited for when the loop closes)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()

    def settle(result: list[tuple[Any, ...]] | None, error: BaseException | None) -> None:
        if answer.done():  # cancelled by the POST's timeout
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result or [])

    def look_up() -> None:
        try:
            found, error = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), None
        except OSError as exc:
            found, error = None, exc
        with suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for the answer
            loop.call_soon_threadsafe(settle, found, error)

    threading.Thread(target=look_up, name=f"webhook-resolve-{host}", daemon=True).start()
    return await answer


async def _bounded_body(response: httpx.Response) -> str:
    """At most ERROR_CHARS bytes of the answer: a receiver that answers gigabytes costs the sender
    no memory (the caller's timeout bounds one that drips it)."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk[: ERROR_CHARS - len(kept)]
        if len(kept) >= ERROR_CHARS:
            break
    return kept.decode("utf-8", "replace")


def _q(name: str) -> str:
    return queries(_SQL)[name]
