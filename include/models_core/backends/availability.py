"""Whether a model task may call its backend now: what the task checks before it runs the model.

A backend that is DOWN, or whose last health sample is older than ``backend_stale_after``
(the health DAG stopped, so nobody knows), makes the task skip with the reason instead of
failing: the model is fine, its backend is not. A backend that is not registered at all is
a configuration error and fails the task, naming the version and the backend.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg2.extensions import connection as PgConnection

from models_core.backends.catalog import BackendError, BackendStatus, backend_statuses

#: The skip cause recorded in detection_model_task_outcomes for such a skip.
BACKEND_DOWN = "backend_down"
HEALTH_DAG_ID = "detection_model_backend_health"


def unavailable_reason(
    conn: PgConnection, backend: str, label: str, now: datetime, stale_after: timedelta
) -> str | None:
    """Why ``label`` must not call ``backend`` now, or None when the backend is UP and recently probed."""
    found = backend_statuses(conn, backend)
    if not found:
        raise BackendError(
            f"{label} calls backend {backend!r}, which is not registered: add it with "
            f"`modelreg backends add {backend} URL`, or change the version's params key 'backend'"
        )
    return state_unavailable_reason(found[0], now, stale_after)


def state_unavailable_reason(state: BackendStatus, now: datetime, stale_after: timedelta) -> str | None:
    """Why no task may call the backend in ``state`` now, or None: the rule tasks apply, for a
    backend already read (the registry page shows it for every backend at once)."""
    backend = state.backend.name
    if state.status is None or state.since is None or state.last_sample_at is None:  # all None together
        return f"backend {backend} has not been probed yet (DAG {HEALTH_DAG_ID} probes it)"
    if state.status == "DOWN":
        return f"backend {backend} is DOWN since {state.since.isoformat(timespec='seconds')}: {state.error}"
    age = now - state.last_sample_at
    if age > stale_after:
        return (
            f"backend {backend}'s last health sample is {age.total_seconds():.0f} s old (trusted for "
            f"{stale_after.total_seconds():.0f} s): its health is unknown; is DAG {HEALTH_DAG_ID} running?"
        )
    return None
