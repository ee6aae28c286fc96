"""Model-registry requests in Airflow's Required Actions: the sweep that opens approval rounds, and the rounds.

See models_core.registry.approval_dag.
"""

from __future__ import annotations

from airflow.sdk import DAG

from models_core.registry.approval_dag import build_approval_dag, build_sweep_dag

sweep: DAG = build_sweep_dag()
approvals: DAG = build_approval_dag()
