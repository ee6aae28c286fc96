"""The ``detection_model_registry_events`` DAG: registry events out as Asset events and webhooks.

Every ``events_interval_seconds`` (60 by default), two independent tasks:

- ``publish`` settles earlier tries and emits the unpublished outbox rows as Asset events on
  ``detection_model_registry.<model_id>`` (see :mod:`models_core.events.outbox`). A short-interval
  DAG, not a trigger or the REST API: Airflow records a task's asset events with its success in
  one transaction, which is the commit record exactly-once needs; a trigger cannot emit asset
  events for arbitrary assets, and a REST call has no such record to reconcile against (nor
  credentials in a worker).
- ``deliver_webhooks`` POSTs the due webhook deliveries (see :mod:`models_core.events.webhooks`).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from models_core.cycle.dag_factory import START_DATE, TAGS, default_args
from models_core.events import outbox
from models_core.events.webhooks import SendPolicy, send_due
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection

log = logging.getLogger(__name__)

EVENTS_DAG_ID = "detection_model_registry_events"
PUBLISH_TASK_ID = "publish"


def publish_events() -> dict[str, int]:
    """Task body: settle earlier tries, claim the unpublished events and emit them in order."""
    context = get_current_context()
    ti = context["ti"]
    me = outbox.Claim(ti.dag_id, ti.run_id, ti.try_number)

    def task_state(dag_id: str, run_id: str) -> str | None:
        states = ti.get_task_states(dag_id=dag_id, task_ids=[PUBLISH_TASK_ID], run_ids=[run_id])
        return states.get(run_id, {}).get(PUBLISH_TASK_ID)

    with registry_connection(load_settings(), application_name="models_core:events") as conn:
        settled = outbox.settle(conn, me, task_state)
        events = outbox.claim(conn, me)
    outbox.emit(context["outlet_events"], events)
    log.info("publishing %d registry event(s); settled earlier tries: %s", len(events), settled)
    return {"published": len(events), **settled}


def deliver_webhooks() -> dict[str, int]:
    """Task body: POST the due webhook deliveries within most of the interval."""
    settings = load_settings()
    policy = SendPolicy(
        timeout_s=settings.webhook_timeout_s,
        retry_window=settings.webhook_retry,
        budget_s=max(settings.events_interval.total_seconds() * 0.75, settings.webhook_timeout_s),
    )

    def connect() -> Any:
        return registry_connection(settings, application_name="models_core:webhooks")

    return send_due(connect, policy)


def build_events_dag(settings: Settings | None = None) -> DAG:
    """One run per interval, one at a time (a run settles the tries before it)."""
    settings = settings or load_settings()
    interval = settings.events_interval
    with DAG(
        dag_id=EVENTS_DAG_ID,
        schedule=interval,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, "events"],
        doc_md=__doc__,
        default_args=default_args(settings, retries=2, retry_delay=interval / 4, execution_timeout=interval * 3),
    ) as dag:
        task(task_id=PUBLISH_TASK_ID, outlets=[outbox.REGISTRY_ALIAS])(publish_events)()
        task(task_id="deliver_webhooks")(deliver_webhooks)()
    return dag
