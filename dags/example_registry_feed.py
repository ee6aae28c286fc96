"""Example consumer: runs on each registry change of the demo chain's last model, through its Asset.

See include/example_consumers/registry_feed.py.
"""

from __future__ import annotations

from airflow.sdk import DAG

from example_consumers.registry_feed import build_registry_feed_dag

dag: DAG = build_registry_feed_dag()
