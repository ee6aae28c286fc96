"""One round of the health DAG: probe every backend, store each probe, log each transition once.

Each backend's probe is stored in a transaction of its own that locks the backend's state,
applies :mod:`health_rules` and writes the sample and the new state, so one backend's
trouble (removed meanwhile, a database error) never loses the others' probes. The state
row's trigger records an UP/DOWN transition exactly once, in that same transaction.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2
from psycopg2.extensions import connection as PgConnection

from models_core.backends.catalog import Backend, registered_backends
from models_core.backends.health_rules import Assessment, HealthState, Probe, assess
from models_core.backends.probe import probe_all
from models_core.settings import Settings
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

#: Who the audit trail names for what the health DAG does.
ACTOR = "system"


def check_backends(conn: PgConnection, settings: Settings) -> dict[str, dict[str, Any]]:
    """Probe and store every registered backend; return what each one is now, by name.

    A backend whose probe could not be stored appears with ``"stored": False`` and the error,
    logged with its name; the round goes on with the others. A lost connection fails the
    round (the task's retry runs it again).
    """
    backends = registered_backends(conn)
    probes = probe_all(backends)
    results: dict[str, dict[str, Any]] = {}
    for backend, probe in zip(backends, probes, strict=True):
        try:
            assessment = store_probe(conn, backend, probe)
        except psycopg2.Error as exc:
            if conn.closed:
                raise  # the connection is gone: the task fails and Airflow runs it again
            # e.g. the backend was removed meanwhile: the other probes are still stored
            log.error("backend %s: probe not stored: %s: %s", backend.name, type(exc).__name__,
                      " ".join(str(exc).split()))
            results[backend.name] = {"stored": False, "error": f"{type(exc).__name__}: {exc}"}
            continue
        _log_probe(backend, probe, assessment)
        results[backend.name] = {"stored": True, "status": assessment.state.status, "latency_ms": probe.latency_ms,
                                 "baseline_ms": assessment.state.baseline_ms, "load_class": assessment.load_class,
                                 "active_jobs": probe.active_jobs, "error": probe.error}
    _forget_old_samples(conn, settings.backend_samples_keep_days)
    return results


def store_probe(conn: PgConnection, backend: Backend, probe: Probe) -> Assessment:
    """Apply one probe to the backend's locked state and store the sample and the new state."""
    q = queries("backends/backends.sql")
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_state"], {"backend": backend.name})
        row = cur.fetchone()
        assessment = assess(HealthState(*row) if row else None, probe)
        state = assessment.state
        reason = (f"healthy in {probe.latency_ms:g} ms" if probe.healthy else probe.error) or "unhealthy"
        cur.execute(queries("registry/lifecycle.sql")["set_change_context"],
                    {"action": "health_probe", "actor": ACTOR, "reason": reason, "gates": None})
        values = {"backend": backend.name, "taken_at": probe.taken_at, "healthy": probe.healthy,
                  "latency_ms": probe.latency_ms, "http_status": probe.http_status, "active_jobs": probe.active_jobs,
                  "total_requests": probe.total_requests, "baseline_ms": state.baseline_ms,
                  "load_class": assessment.load_class, "error": probe.error, "status": state.status,
                  "since": state.since, "healthy_samples": state.healthy_samples}
        cur.execute(q["insert_sample"], values)
        cur.execute(q["upsert_state"], values)
    return assessment


def _log_probe(backend: Backend, probe: Probe, assessment: Assessment) -> None:
    """A warning for each UP/DOWN transition (once: only the probe that changed it), info otherwise."""
    state = assessment.state
    detail = (f"{probe.latency_ms:g} ms, baseline {state.baseline_ms:g} ms, load {assessment.load_class}"
              if probe.healthy else probe.error)
    if assessment.changed:
        log.warning("backend %s: %s -> %s (%s)", backend.name, assessment.previous_status or "never probed",
                    state.status, detail)
    else:
        log.info("backend %s: %s (%s)", backend.name, state.status, detail)
    if probe.healthy and probe.error:
        log.warning("backend %s: %s", backend.name, probe.error)


def _forget_old_samples(conn: PgConnection, keep_days: int) -> None:
    before = datetime.now(timezone.utc) - timedelta(days=keep_days)
    with conn, conn.cursor() as cur:
        cur.execute(queries("backends/backends.sql")["delete_old_samples"], {"before": before})
        if cur.rowcount:
            log.info("deleted %d health samples older than %d days", cur.rowcount, keep_days)
