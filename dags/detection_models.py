"""The model cycle DAG: one run of every ACTIVE version in the model registry.

The task graph comes from the registry; see models_core.cycle.dag_factory.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.cycle.dag_factory import build_cycle_dag

dag: DAG = build_cycle_dag()
