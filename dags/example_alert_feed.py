"""Example consumer: runs on each fresh result of the demo chain's last model, through its Asset.

See include/example_consumers/alert_feed.py.
"""

from __future__ import annotations

from airflow.sdk import DAG

from example_consumers.alert_feed import build_alert_feed_dag

dag: DAG = build_alert_feed_dag()
