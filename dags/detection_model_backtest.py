"""A version over a range of past cycles, on the results stored for them (triggered with Params).

See models_core.backtest.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.backtest.dag_factory import build_backtest_dag

dag: DAG = build_backtest_dag()
