"""Probing every backend at once over HTTP, with httpx.

httpx (already installed with Airflow, which uses it for its own API clients) gives an async
client with a timeout per request and clear exception types, so all backends are probed
concurrently in one task and a slow or dead backend costs its own timeout, never the
others'. Airflow's HTTP provider would need one Airflow connection per backend, a second
place to keep what the registry's backend rows already hold.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import httpx

from models_core.backends.catalog import Backend
from models_core.backends.health_rules import Probe

#: Error texts are kept this short in samples and logs.
_ERROR_CHARS = 300


def probe_all(backends: Sequence[Backend]) -> list[Probe]:
    """One :class:`Probe` per backend, in the same order, all probed concurrently."""
    if not backends:
        return []
    return asyncio.run(_probe_all(backends))


async def _probe_all(backends: Sequence[Backend]) -> list[Probe]:
    async with httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": "models_core-health"}) as client:
        return list(await asyncio.gather(*(probe_backend(client, backend) for backend in backends)))


async def probe_backend(client: httpx.AsyncClient, backend: Backend) -> Probe:
    """GET the health path (timed); when it answers 2xx and there is a status path, GET that too."""
    taken_at = datetime.now(timezone.utc)
    url = backend.url(backend.health_path)
    started = time.perf_counter()
    try:
        response = await client.get(url, timeout=backend.timeout_s)
    except httpx.TimeoutException:
        return Probe(taken_at, False, _elapsed_ms(started), error=f"no answer from {url} within {backend.timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Probe(taken_at, False, _elapsed_ms(started), error=_short(f"{type(exc).__name__} on {url}: {exc}"))
    latency = _elapsed_ms(started)
    if not response.is_success:
        return Probe(taken_at, False, latency, response.status_code,
                     error=_short(f"HTTP {response.status_code} from {url}: {response.text.strip()}"))
    jobs, total, status_error = await _status(client, backend) if backend.status_path else (None, None, None)
    return Probe(taken_at, True, latency, response.status_code, jobs, total, status_error)


async def _status(client: httpx.AsyncClient, backend: Backend) -> tuple[int | None, int | None, str | None]:
    """(active_jobs, total_requests, error) from the status endpoint; on any trouble, no jobs and why.

    A backend whose status endpoint fails is still UP; its load class then comes from the
    latency instead.
    """
    url = backend.url(backend.status_path or "")
    try:
        response = await client.get(url, timeout=backend.timeout_s)
        response.raise_for_status()
        body: Any = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return None, None, _short(f"status endpoint {url} unusable ({type(exc).__name__}: {exc}); "
                                  "load judged from latency")
    if not isinstance(body, dict):
        return None, None, f"status endpoint {url} did not answer a JSON object; load judged from latency"
    jobs, total = body.get("active_jobs", 0), body.get("total_requests")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        return None, None, _short(f"status endpoint {url}: active_jobs {jobs!r} is not a count; "
                                  "load judged from latency")
    return jobs, total if isinstance(total, int) and not isinstance(total, bool) else None, None


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[:_ERROR_CHARS - 3] + "..."
