"""Probing every backend at once over HTTP, with httpx, each probe isolated and bounded.

httpx (already installed with Airflow, which uses it for its own API clients) gives an async
client, so all backends are probed concurrently in one task and a slow or dead backend costs
its own time, never the others'. Airflow's HTTP provider would need one Airflow connection
per backend, a second place to keep what the registry's backend rows already hold.

What one backend can do to a round is bounded on every side:

- **exceptions**: any exception of one probe, of any type (an ``OverflowError`` for a port
  no socket takes, an ``ExceptionGroup`` from the connection attempts), is that backend's
  DOWN probe naming it;
- **time**: each request, reading its body included, is bounded as a whole by the
  backend's timeout (httpx's own timeouts are per read: a backend trickling a byte a second
  never trips them); the round by a deadline, after which the probes still running are
  DOWN, saying so, and the finished ones are kept;
- **size**: at most :data:`HEALTH_BODY_BYTES` of a health answer and
  :data:`STATUS_BODY_BYTES` of a status answer are read; error texts are cleaned and cut
  (:func:`clean_text`);
- **load**: at most :data:`CONCURRENCY` probes are in flight; a probe's clock starts when it
  gets its slot, so waiting for one is never counted against a backend;
- **shared state**: none between backends but the client's connection pool (one connection
  per host and port); no cookie is kept, as cookies ignore ports: one backend's
  ``Set-Cookie`` would otherwise go to every other backend on its host.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from models_core.backends.catalog import Backend
from models_core.backends.health_rules import Probe

#: Error texts are kept this short in samples and logs.
ERROR_CHARS = 300
#: Probes in flight at once (and sockets open): 200 backends fit one round even if every one
#: of them hangs at the longest timeout; beyond, a probe waits for a slot, and the round's
#: deadline may come first.
CONCURRENCY = 200
#: Of a health answer only the first words go into an error.
HEALTH_BODY_BYTES = 4096
#: A status answer is a few figures; a longer one is not read.
STATUS_BODY_BYTES = 64 * 1024
#: How long probes cancelled at the round's deadline get to close their connections.
CANCEL_GRACE_S = 2.0
#: No compressed bodies: the byte limits then bound what is decoded too.
_HEADERS = {"User-Agent": "models_core-health", "Accept-Encoding": "identity"}
_FALLBACK = "load judged from latency"


def probe_all(backends: Sequence[Backend], deadline_s: float) -> list[Probe]:
    """One :class:`Probe` per backend, in the same order, all probed concurrently.

    A probe still running ``deadline_s`` seconds after the round began is cancelled and
    returned DOWN, saying the round's deadline passed; the others keep what they measured.
    """
    if not backends:
        return []
    return asyncio.run(_probe_all(backends, deadline_s))


async def _probe_all(backends: Sequence[Backend], deadline_s: float) -> list[Probe]:
    began_at, began = datetime.now(UTC), time.perf_counter()
    slots = asyncio.Semaphore(CONCURRENCY)
    # No pool limit of httpx's own: its pool timeout would count a wait for a connection
    # against the backend; the slots bound the connections instead.
    async with httpx.AsyncClient(
        follow_redirects=False,
        headers=_HEADERS,
        cookies=_jar_keeping_no_cookie(),
        limits=httpx.Limits(max_connections=None),
    ) as client:
        tasks = [asyncio.create_task(_in_slot(slots, client, backend)) for backend in backends]
        done, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CANCEL_GRACE_S)
    return [
        task.result()
        if task in done
        else Probe(
            began_at,
            False,
            _elapsed_ms(began),
            error=clean_text(
                f"no answer from {backend.url(backend.health_path)} within the round's deadline of {deadline_s:g} s"
            ),
        )
        for task, backend in zip(tasks, backends, strict=True)
    ]


async def _in_slot(slots: asyncio.Semaphore, client: httpx.AsyncClient, backend: Backend) -> Probe:
    async with slots:
        return await probe_backend(client, backend)


async def probe_backend(client: httpx.AsyncClient, backend: Backend) -> Probe:
    """GET the health path (timed); when it answers 2xx and there is a status path, GET that too.

    Never raises (but for cancellation): whatever goes wrong is this backend's DOWN probe,
    with the exception's type and message.
    """
    taken_at, started = datetime.now(UTC), time.perf_counter()
    url = backend.url(backend.health_path)
    try:
        code, body, _ = await _get(client, url, HEALTH_BODY_BYTES, backend.timeout_s)
        latency = _elapsed_ms(started)
        if not 200 <= code < 300:
            said = body.decode("utf-8", "replace").strip()
            return Probe(
                taken_at,
                False,
                latency,
                code,
                error=clean_text(f"HTTP {code} from {url}" + (f": {said}" if said else "")),
            )
        jobs, total, status_error = await _status(client, backend) if backend.status_path else (None, None, None)
    except Exception as exc:  # noqa: BLE001 - one backend's trouble of any kind is its own DOWN sample
        return Probe(taken_at, False, _elapsed_ms(started), error=clean_text(_failure(exc, backend.timeout_s, url)))
    return Probe(taken_at, True, latency, code, jobs, total, status_error)


async def _status(client: httpx.AsyncClient, backend: Backend) -> tuple[int | None, int | None, str | None]:
    """(active_jobs, total_requests, error) from the status endpoint; on any trouble, no jobs and why.

    A backend whose status endpoint fails is still UP; its load class then comes from the
    latency instead.
    """
    url = backend.url(backend.status_path or "")
    try:
        code, body, more = await _get(client, url, STATUS_BODY_BYTES, backend.timeout_s)
        if more:
            return None, None, f"status endpoint {url} answered more than {STATUS_BODY_BYTES} bytes; {_FALLBACK}"
        if not 200 <= code < 300:
            return None, None, f"status endpoint {url} answered HTTP {code}; {_FALLBACK}"
        answer: Any = json.loads(body)
        if not isinstance(answer, dict):
            return None, None, f"status endpoint {url} did not answer a JSON object; {_FALLBACK}"
        jobs, total = answer.get("active_jobs", 0), answer.get("total_requests")
        if not _is_count(jobs):
            return None, None, clean_text(f"status endpoint {url}: active_jobs {jobs!r} is not a count; {_FALLBACK}")
    except Exception as exc:  # noqa: BLE001 - a bad status answer of any kind only costs the load figures
        return (
            None,
            None,
            clean_text(f"status endpoint {url} unusable ({_failure(exc, backend.timeout_s)}); {_FALLBACK}"),
        )
    return jobs, total if _is_count(total) else None, None


async def _get(client: httpx.AsyncClient, url: str, limit: int, timeout_s: float) -> tuple[int, bytes, bool]:
    """The status code and the first ``limit`` bytes of the body (and whether there was more),
    all within ``timeout_s`` seconds, else :class:`TimeoutError`."""
    async with asyncio.timeout(timeout_s), client.stream("GET", url, timeout=timeout_s) as response:
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > limit:
                return response.status_code, bytes(body[:limit]), True
        return response.status_code, bytes(body), False


def _failure(exc: BaseException, timeout_s: float, url: str | None = None) -> str:
    """What went wrong (``on url``): the timeout, or each exception (each one a group holds) by its type."""
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return f"no answer from {url} within {timeout_s:g} s" if url else f"no answer within {timeout_s:g} s"
    where = f" on {url}" if url else ""
    return "; ".join(f"{type(inner).__name__}{where}" + (f": {inner}" if str(inner) else "") for inner in _leaves(exc))


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _jar_keeping_no_cookie() -> CookieJar:
    """A cookie jar that refuses every cookie (a cookie set by one backend would reach all on its host)."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=()))


def clean_text(text: str, limit: int = ERROR_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters, with every character PostgreSQL's
    text cannot hold (NUL, lone surrogates) or a reader cannot see escaped (``\\x00``)."""
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in " ".join(text[: limit * 8].split())
    )
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
