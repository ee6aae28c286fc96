"""Registry events out: the outbox as Asset events on detection_model_registry.<model_id>, and webhooks.

See models_core.events.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.events.dag_factory import build_events_dag

dag: DAG = build_events_dag()
