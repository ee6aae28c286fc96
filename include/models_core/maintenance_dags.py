"""The two maintenance DAGs: ``detection_model_partitions`` and ``detection_model_snapshots``."""
from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from models_core.connections import registry_connection
from models_core.dag_factory import START_DATE, TAGS
from models_core.model_task import cycle_timestamp
from models_core.partition_maintenance import maintain_partitions
from models_core.settings import Settings, load_settings

log = logging.getLogger(__name__)

PARTITIONS_DAG_ID = "detection_model_partitions"


def run_partition_maintenance() -> dict[str, Any]:
    """Task body: one maintenance run with the run's Params, as of the run's date."""
    context = get_current_context()
    params = context["params"]
    settings = load_settings()
    with registry_connection(settings, application_name="models_core:partitions") as conn:
        report = maintain_partitions(
            conn, settings.schema, now=cycle_timestamp(context), months_ahead=int(params["months_ahead"]),
            retention_months=int(params["retention_months"]), retention_mode=params["retention_mode"])
    return report.__dict__


def build_partitions_dag(settings: Settings | None = None) -> DAG:
    """Daily (and on manual trigger) partition maintenance of the run-output table."""
    settings = settings or load_settings()
    with DAG(
        dag_id=PARTITIONS_DAG_ID,
        schedule="@daily",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=TAGS + ["maintenance"],
        doc_md=(
            "Keeps monthly partitions of `detection_model_run_outputs` from the retention cutoff to "
            f"{settings.partition_months_ahead} months ahead, moves rows out of the DEFAULT partition, and "
            f"{settings.partition_retention_mode}s partitions older than {settings.partition_retention_months} "
            "months. Each run is recorded in `detection_model_maintenance_runs`."
        ),
        params={
            "months_ahead": Param(settings.partition_months_ahead, type="integer", minimum=0, maximum=24,
                                  description="months to premake after the current one"),
            "retention_months": Param(settings.partition_retention_months, type="integer", minimum=1,
                                      description="months kept before the current one"),
            "retention_mode": Param(settings.partition_retention_mode, enum=["drop", "detach"],
                                    description="drop old partitions, or only detach them"),
        },
    ) as dag:
        task(run_partition_maintenance, task_id="maintain_partitions", retries=1, multiple_outputs=False)()
    return dag
