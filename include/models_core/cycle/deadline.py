"""A cycle that is late raises Airflow's own Deadline Alert, told through the product's notifier.

With ``cycle_deadline_minutes`` set, ``detection_models`` carries a ``DeadlineAlert``: a run
not finished that long after it was queued is a missed deadline, which Airflow's
scheduler records and answers by running :func:`cycle_deadline_missed` on the executor (a
``SyncCallback``: no triggerer needed). The callback sends a ``late_cycle`` event through the
configured ``BaseNotifier`` (Slack, mail... or the log), as ERRORs and rollbacks are sent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from models_core.healing.notifier import notify
from models_core.settings import load_settings

if TYPE_CHECKING:
    from airflow.sdk.definitions.deadline import DeadlineAlert

#: The callback's import path, as Airflow stores it in the serialized DAG.
CALLBACK_PATH = "models_core.cycle.deadline.cycle_deadline_missed"


def cycle_deadline(interval: timedelta | None, dag_id: str) -> DeadlineAlert | None:
    """The cycle DAG's Deadline Alert: ``interval`` after a run is queued; None without an interval.

    The Deadline Alert API (the youngest part of the SDK used here, and not in ``airflow.sdk``'s
    own stub in 3.3) is imported only when a deadline is set, so a deployment without one never
    depends on it.
    """
    if interval is None:
        return None
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=SyncCallback(CALLBACK_PATH, kwargs={"dag_id": dag_id, "minutes": interval.total_seconds() / 60}),
        name="cycle not finished within its interval",
    )


def cycle_deadline_missed(dag_id: str, minutes: float, context: dict[str, Any] | None = None, **_: Any) -> bool:
    """Airflow's callback for a missed cycle deadline: one ``late_cycle`` event through the notifier.

    ``context`` is what Airflow passes: the run (``dag_run``) and the ``deadline``. Returns
    whether the notifier took it (a failing notifier is logged, never raised).
    """
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    run_id = run.get("dag_run_id") or run.get("run_id") or "?"
    message = (
        f"cycle {run_id} of {dag_id} is not finished {minutes:g} minutes after it was queued"
        f" (deadline {deadline}, state {run.get('state', '?')}): see its tasks in Airflow"
    )
    event = {
        "kind": "late_cycle",
        "model_id": dag_id,
        "version": None,
        "message": message,
        "figures": None,
        "cycle": run_id,
    }
    return notify(load_settings(), context, event)
