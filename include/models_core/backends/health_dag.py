"""The ``detection_model_backend_health`` DAG: probe every backend, then size the shadow pool.

Why a short schedule rather than a deferrable loop in the triggerer: a health round is a
second of work once a minute, and as one ordinary run it is visible, logged and retried like
any task, needs no triggerer, and keeps no state in a process: the baseline and the UP/DOWN
state live in the registry, so any worker continues where the last round stopped. What the
model tasks need is a recent verdict, and ``backend_stale_after`` (three rounds by default)
says how recent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowSkipException

from models_core.backends.availability import HEALTH_DAG_ID
from models_core.backends.health_check import check_backends, probing_deadline_s, round_timeout
from models_core.backends.shadow_concurrency import AirflowPoolsApi, apply_pool_size, decide_shadow_slots
from models_core.cycle.dag_factory import START_DATE, TAGS, default_args
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection


def probe_backends() -> dict[str, dict[str, Any]]:
    """Task body: one health round over every registered backend, stored before the task's timeout
    (the probes get :func:`~models_core.backends.health_check.probing_deadline_s` of it)."""
    settings = load_settings()
    with registry_connection(settings, application_name="models_core:backend_health") as conn:
        return check_backends(conn, settings)


def size_shadow_pool() -> dict[str, Any]:
    """Task body: set the shadow pool's slots for the load just measured (skips without API access)."""
    settings = load_settings()
    api = AirflowPoolsApi.from_connection(settings.airflow_api_conn_id)
    if api is None:
        raise AirflowSkipException(
            f"the Airflow connection {settings.airflow_api_conn_id!r} is not defined, so the shadow pool keeps its "
            "size; define it (the API server's URL, and a user allowed to edit pools) to size it by backend load"
        )
    try:
        with registry_connection(settings, application_name="models_core:shadow_pool") as conn:
            decision = decide_shadow_slots(conn, settings)
        return apply_pool_size(api, settings.shadow_pool, decision)
    finally:
        api.close()


def build_health_dag(settings: Settings | None = None) -> DAG:
    """Probe every backend on ``backend_health_schedule``, one round at a time."""
    settings = settings or load_settings()
    with DAG(
        dag_id=HEALTH_DAG_ID,
        schedule=settings.backend_health_schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=TAGS + ["backends"],
        doc_md=(
            "Probes every backend of `modelreg backends list` at once: UP/DOWN (each transition recorded once in "
            "`detection_model_backend_events`), latency against its EMA baseline, load class. Each request is "
            "bounded as a whole by its backend's timeout; a probe still running "
            f"{probing_deadline_s(settings):.0f} s into the round is recorded DOWN; whatever one backend "
            "answers or raises goes into its own sample only, never failing the round. Model tasks whose "
            "backend is DOWN, or whose last sample is older than "
            f"{settings.backend_stale_after.total_seconds():.0f} s, skip with that reason. Then sizes the "
            f"`{settings.shadow_pool}` pool by the load of the backends shadows call (through the Airflow "
            f"connection `{settings.airflow_api_conn_id}`)."
        ),
        default_args=default_args(
            settings, retries=1, retry_delay=timedelta(seconds=5), execution_timeout=round_timeout(settings)
        ),
    ) as dag:
        probed = task(task_id="probe_backends", multiple_outputs=False)(probe_backends)()
        probed >> task(task_id="size_shadow_pool", multiple_outputs=False)(size_shadow_pool)()
    return dag
