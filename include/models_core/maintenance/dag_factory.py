"""The two maintenance DAGs: ``detection_model_partitions`` and ``detection_model_snapshots``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from models_core.cycle.dag_factory import START_DATE, TAGS, default_args
from models_core.cycle.model_task import cycle_timestamp
from models_core.maintenance.partition_maintenance import maintain_partitions
from models_core.maintenance.snapshots import Window, render_markdown, store_snapshot, take_snapshot
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection

log = logging.getLogger(__name__)

PARTITIONS_DAG_ID = "detection_model_partitions"


def run_partition_maintenance() -> dict[str, Any]:
    """Task body: one maintenance run with the run's Params, as of the run's date."""
    context = get_current_context()
    params = context["params"]
    settings = load_settings()
    with registry_connection(settings, application_name="models_core:partitions") as conn:
        report = maintain_partitions(
            conn,
            settings.schema,
            now=cycle_timestamp(context),
            months_ahead=int(params["months_ahead"]),
            retention_months=int(params["retention_months"]),
            retention_mode=params["retention_mode"],
        )
    return report.__dict__


def _maintenance_dag(
    settings: Settings, dag_id: str, schedule: str, tag: str, doc_md: str, params: dict[str, Param]
) -> DAG:
    """What both maintenance DAGs share: no catchup, one run at a time, the product's owner."""
    return DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=TAGS + [tag],
        doc_md=doc_md,
        params=params,
        default_args=default_args(settings),
    )


def build_partitions_dag(settings: Settings | None = None) -> DAG:
    """Daily (and on manual trigger) partition maintenance of the run-output table."""
    settings = settings or load_settings()
    with _maintenance_dag(
        settings,
        PARTITIONS_DAG_ID,
        "@daily",
        "maintenance",
        doc_md=(
            "Keeps monthly partitions of `detection_model_run_outputs` from the retention cutoff to "
            f"{settings.partition_months_ahead} months ahead, moves rows out of the DEFAULT partition, and "
            f"{settings.partition_retention_mode}s partitions older than {settings.partition_retention_months} "
            "months. Each run is recorded in `detection_model_maintenance_runs`."
        ),
        params={
            "months_ahead": Param(
                settings.partition_months_ahead,
                type="integer",
                minimum=0,
                maximum=24,
                description="months to premake after the current one",
            ),
            "retention_months": Param(
                settings.partition_retention_months,
                type="integer",
                minimum=1,
                description="months kept before the current one",
            ),
            "retention_mode": Param(
                settings.partition_retention_mode,
                enum=["drop", "detach"],
                description="drop old partitions, or only detach them",
            ),
        },
    ) as dag:
        task(task_id="maintain_partitions", retries=1, multiple_outputs=False)(run_partition_maintenance)()
    return dag


SNAPSHOTS_DAG_ID = "detection_model_snapshots"


def run_snapshot() -> dict[str, Any]:
    """Task body: hourly on schedule; diagnostic (Params: window, models) on manual trigger."""
    context = get_current_context()
    params = context["params"]
    settings = load_settings()
    end = cycle_timestamp(context)
    manual = str(context["dag_run"].run_type).lower().endswith("manual")
    kind = "diagnostic" if manual else "hourly"
    hours = float(params["window_hours"]) if manual else 1.0
    window = Window(end - timedelta(hours=hours), end)
    models = list(params["models"]) if manual and params["models"] else None
    with registry_connection(settings, application_name="models_core:snapshots") as conn:
        report = take_snapshot(
            conn,
            schema=settings.schema,
            models_package=settings.models_package,
            kind=kind,
            window=window,
            models=models,
            now=datetime.now(UTC),
            drift_band=settings.drift_band,
            months_ahead=settings.partition_months_ahead,
            settle_after=2 * settings.task_timeout,
            shadow_pool=settings.shadow_pool,
        )
        snapshot_id, path = store_snapshot(conn, report, settings.reports_dir)
    log.info("snapshot %d (%s) written to %s\n%s", snapshot_id, kind, path, render_markdown(report))
    return {"snapshot_id": snapshot_id, "report_path": str(path)}


def build_snapshots_dag(settings: Settings | None = None) -> DAG:
    """Hourly monitoring snapshots, and diagnostic ones on manual trigger."""
    settings = settings or load_settings()
    with _maintenance_dag(
        settings,
        SNAPSHOTS_DAG_ID,
        "@hourly",
        "monitoring",
        doc_md=(
            "Scheduled runs take an **hourly** snapshot of the hour before the run. Trigger it manually "
            "for a **diagnostic** snapshot over `window_hours`, optionally for some `models` only. Reports "
            f"go to `detection_model_snapshots` and, as Markdown, to `{settings.reports_dir}`."
        ),
        params={
            "window_hours": Param(
                24,
                type="number",
                exclusiveMinimum=0,
                maximum=24 * 90,
                description="diagnostic window, ending at the run's date",
            ),
            "models": Param(
                [], type="array", items={"type": "string"}, description="model ids to include; empty for all"
            ),
        },
    ) as dag:
        task(task_id="take_snapshot", multiple_outputs=False)(run_snapshot)()
    return dag
