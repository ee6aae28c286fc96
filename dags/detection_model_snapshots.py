"""Monitoring snapshot DAG: hourly, or diagnostic on manual trigger (Airflow Params).

See models_core.maintenance.snapshots.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.maintenance.dag_factory import build_snapshots_dag

dag: DAG = build_snapshots_dag()
