"""Partition maintenance DAG for the run-output table (Airflow builds it daily).

See models_core.maintenance.partition_maintenance.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.maintenance.dag_factory import build_partitions_dag

dag: DAG = build_partitions_dag()
