"""The alert feed: an example DAG that runs on a model's fresh results, through its Asset.

It is scheduled on the Asset of the demo chain's last model, ``alert_router``: each time
that model's PRIMARY stores a cycle's result, Airflow records an asset event whose extra is
the result's reference (model, version, cycle, row count) and runs this DAG. The task reads
the alert rows of every cycle that triggered it and hands them on; here, to its log (put
your pager, queue or mail there).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, get_current_context, task

from models_core.cycle.assets import primary_asset, result_refs
from models_core.cycle.persistence import load_result
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

log = logging.getLogger(__name__)

#: The last model of the demo chain; the only line to change when the chain's end changes.
ALERTS_MODEL = "alert_router"
DAG_ID = "example_alert_feed"


def deliver_alerts() -> dict[str, Any]:
    """Task body: read the alerts of each triggering cycle and deliver them (to the log)."""
    refs = result_refs(get_current_context(), ALERTS_MODEL)
    delivered = []
    with registry_connection(load_settings(), application_name=f"{DAG_ID}:deliver") as conn:
        for ref in refs:
            result = load_result(conn, ref)
            for input_ref, alert in result.outputs_per_input:
                log.warning(
                    "alert (cycle %s, %s@%s): %s %s",
                    ref.cycle_started_at,
                    ref.model_id,
                    ref.version,
                    json.dumps(input_ref),
                    json.dumps(alert),
                )
            delivered.append(
                {"cycle": ref.cycle_started_at, "version": ref.version, "alerts": len(result.outputs_per_input)}
            )
    return {"delivered": delivered}


def build_alert_feed_dag() -> DAG:
    """A DAG run per new ``alert_router`` result (several cycles at once if they queued up)."""
    with DAG(
        dag_id=DAG_ID,
        schedule=[primary_asset(ALERTS_MODEL)],
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        tags=["model-registry", "example"],
        default_args={"owner": load_settings().dag_owner},
        doc_md=f"Runs on each new PRIMARY result of `{ALERTS_MODEL}` (Asset `{primary_asset(ALERTS_MODEL).name}`) "
        "and delivers its alerts.",
    ) as dag:
        task(task_id="deliver_alerts", multiple_outputs=False)(deliver_alerts)()
    return dag
