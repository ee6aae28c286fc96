"""Backend health DAG: probes every registered inference backend on a short schedule.

See models_core.backends.health_dag.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.backends.health_dag import build_health_dag

dag: DAG = build_health_dag()
