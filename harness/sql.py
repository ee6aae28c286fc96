"""How test, benchmark and fault harnesses read a database, and empty the registry's tables."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from models_core.store.embedded_postgres import autocommit_rows


def fetch_rows(dsn: str, statement: str, params: Any = None, *, search_path: str | None = None) -> list[tuple]:
    """Run ``statement`` in autocommit mode; its rows, or [] when it returns none.

    ``search_path`` set as ``models_core`` sets it lets plain SQL name the registry tables
    without their schema.
    """
    options = f"-c search_path={search_path}" if search_path else None
    return autocommit_rows(dsn, statement, params, options=options, connect_timeout=5)


#: Every table the product writes: what a harness empties to start from an empty registry.
REGISTRY_TABLES = (
    "detection_model_versions",
    "detection_model_version_tags",
    "detection_model_dependencies",
    "detection_model_run_outputs",
    "detection_model_metrics",
    "detection_model_backtest_metrics",
    "detection_model_cycle_summaries",
    "detection_model_maintenance_runs",
    "detection_model_task_outcomes",
    "detection_model_snapshots",
    "detection_model_transitions",
    "detection_model_quality_gates",
    "detection_model_backends",
    "detection_model_backend_samples",
    "detection_model_backend_state",
    "detection_model_backend_events",
    "detection_model_healing_policies",
    "detection_model_healing_events",
    "detection_model_stage_checks",
    "detection_model_approval_settings",
    "detection_model_approval_requests",
    "detection_model_approval_votes",
    "detection_model_events",
    "detection_model_event_heads",
    "detection_model_webhooks",
    "detection_model_webhook_deliveries",
)


def empty_tables(cur: Any, tables: list[str]) -> None:
    """Empty ``tables`` (identities restart) in the caller's transaction, the append-only audit
    tables included: their triggers refuse a TRUNCATE, so this session, a superuser's (as the
    tests', benchmarks' and faults' servers are), switches triggers off for its transaction."""
    cur.execute("SET LOCAL session_replication_role = replica")
    cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
