"""One round of the health DAG: probe every backend, store each probe, log each transition once.

Each backend's probe is stored in a transaction of its own that locks the backend's state,
applies :mod:`health_rules` and writes the sample and the new state, so one backend's
trouble (removed meanwhile, a database error, a value its column cannot hold) never loses
the others' probes. Before it is stored, a probe is made fit for its columns
(:func:`storable`): whatever a backend answered, its sample can be written. The state row's
trigger records an UP/DOWN transition exactly once, in that same transaction.

The probes of a round must end before the round's task is timed out, leaving time to store
them: they get :data:`PROBING_SHARE` of it (:func:`probing_deadline_s`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.backends.catalog import Backend, registered_backends
from models_core.backends.health_rules import Assessment, HealthState, Probe, assess
from models_core.backends.probe import ERROR_CHARS, clean_text, probe_all
from models_core.settings import Settings, schedule_interval
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

#: Who the audit trail names for what the health DAG does.
ACTOR = "system"
#: A round's task runs at most this long (less when the health schedule is shorter): twice
#: the longest backend timeout (health, then status: 40 s) plus the time to store.
ROUND_TIMEOUT = timedelta(seconds=90)
#: The share of the round's timeout the probes may take; the rest is for storing them. Both
#: count from the task body's start, as Airflow's execution timeout does (its clock starts
#: after the worker has parsed the DAG file).
PROBING_SHARE = 0.75
#: The largest figure each integer column of a sample holds (integer, integer, bigint).
COLUMN_MAX = {"http_status": 2**31 - 1, "active_jobs": 2**31 - 1, "total_requests": 2**63 - 1}


def round_timeout(settings: Settings) -> timedelta:
    """How long a round's task may run: :data:`ROUND_TIMEOUT`, or the health interval when shorter."""
    interval = schedule_interval(settings.backend_health_schedule)
    return min(ROUND_TIMEOUT, interval) if interval else ROUND_TIMEOUT


def probing_deadline_s(settings: Settings) -> float:
    """Seconds a round's probes may take, so the round is stored before its task's timeout."""
    return round_timeout(settings).total_seconds() * PROBING_SHARE


def check_backends(
    conn: PgConnection, settings: Settings, deadline_s: float | None = None
) -> dict[str, dict[str, Any]]:
    """Probe and store every registered backend; return what each one is now, by name.

    Probes still running after ``deadline_s`` (default :func:`probing_deadline_s`) are DOWN,
    saying so. A backend whose probe could not be stored appears with ``"stored": False`` and
    the error, logged with its name; the round goes on with the others. A lost connection
    fails the round (the task's retry runs it again).
    """
    backends = registered_backends(conn)
    probes = probe_all(backends, probing_deadline_s(settings) if deadline_s is None else deadline_s)
    results: dict[str, dict[str, Any]] = {}
    for backend, measured in zip(backends, probes, strict=True):
        probe = storable(measured)
        try:
            assessment = store_probe(conn, backend, probe)
        except Exception as exc:  # noqa: BLE001 - one backend's sample never costs the others theirs
            if conn.closed:
                raise  # the connection is gone: the task fails and Airflow runs it again
            # e.g. the backend was removed meanwhile: the other probes are still stored
            error = clean_text(f"{type(exc).__name__}: {exc}")
            log.error("backend %s: probe not stored: %s", backend.name, error)
            results[backend.name] = {"stored": False, "error": error}
            continue
        _log_probe(backend, probe, assessment)
        results[backend.name] = {
            "stored": True,
            "status": assessment.state.status,
            "latency_ms": probe.latency_ms,
            "baseline_ms": assessment.state.baseline_ms,
            "load_class": assessment.load_class,
            "active_jobs": probe.active_jobs,
            "error": probe.error,
        }
    _forget_old_samples(conn, settings.backend_samples_keep_days)
    return results


def storable(probe: Probe) -> Probe:
    """``probe`` as its columns hold it: a figure out of its column's range dropped, with a note
    in the error saying so; the error cleaned of what text cannot hold, on one line, bounded."""
    dropped: dict[str, Any] = {}  # Probe fields, each set to None
    notes = []
    for column, maximum in COLUMN_MAX.items():
        value = getattr(probe, column)
        if value is not None and not 0 <= value <= maximum:
            dropped[column] = None
            notes.append(
                f"{column} {_figure(value)} is out of range (0 to {maximum}), not stored"
                + ("; load judged from latency" if column == "active_jobs" else "")
            )
    error = "; ".join(text for text in (probe.error, *notes) if text)
    return replace(probe, **dropped, error=clean_text(error, 2 * ERROR_CHARS) if error else None)


def _figure(value: int) -> str:
    """The figure, or its size when it is too long to read (or, past 4,300 digits, to print)."""
    return str(value) if value.bit_length() <= 100 else f"of {value.bit_length()} bits"


def store_probe(conn: PgConnection, backend: Backend, probe: Probe) -> Assessment:
    """Apply one probe (as :func:`storable` makes it) to the backend's locked state and store
    the sample and the new state."""
    q = queries("backends/backends.sql")
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_state"], {"backend": backend.name})
        row = cur.fetchone()
        assessment = assess(HealthState(*row) if row else None, probe)
        state = assessment.state
        reason = (f"healthy in {probe.latency_ms:g} ms" if probe.healthy else probe.error) or "unhealthy"
        cur.execute(
            queries("registry/session.sql")["set_change_context"],
            {
                "action": "health_probe",
                "actor": ACTOR,
                "actor_kind": "system",
                "reason": reason,
                "gates": None,
                "basis": None,
                "request_id": None,
            },
        )
        values = {
            "backend": backend.name,
            "taken_at": probe.taken_at,
            "healthy": probe.healthy,
            "latency_ms": probe.latency_ms,
            "http_status": probe.http_status,
            "active_jobs": probe.active_jobs,
            "total_requests": probe.total_requests,
            "baseline_ms": state.baseline_ms,
            "load_class": assessment.load_class,
            "error": probe.error,
            "status": state.status,
            "since": state.since,
            "healthy_samples": state.healthy_samples,
        }
        cur.execute(q["insert_sample"], values)
        cur.execute(q["upsert_state"], values)
    return assessment


def _log_probe(backend: Backend, probe: Probe, assessment: Assessment) -> None:
    """A warning for each UP/DOWN transition (once: only the probe that changed it), info otherwise."""
    state = assessment.state
    detail = (
        f"{probe.latency_ms:g} ms, baseline {state.baseline_ms:g} ms, load {assessment.load_class}"
        if probe.healthy
        else probe.error
    )
    if assessment.changed:
        log.warning(
            "backend %s: %s -> %s (%s)",
            backend.name,
            assessment.previous_status or "never probed",
            state.status,
            detail,
        )
    else:
        log.info("backend %s: %s (%s)", backend.name, state.status, detail)
    if probe.healthy and probe.error:
        log.warning("backend %s: %s", backend.name, probe.error)


def _forget_old_samples(conn: PgConnection, keep_days: int) -> None:
    before = datetime.now(UTC) - timedelta(days=keep_days)
    with conn, conn.cursor() as cur:
        cur.execute(queries("backends/backends.sql")["delete_old_samples"], {"before": before})
        if cur.rowcount:
            log.info("deleted %d health samples older than %d days", cur.rowcount, keep_days)
