"""Airflow settings for a throw-away environment, as environment variables.

Everything is configured the way a deployment would be (``AIRFLOW__*`` and
``AIRFLOW_CONN_*`` variables), so the processes started from it run the product exactly
as ``make run`` does, on databases of their own.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from psycopg2.extensions import parse_dsn


def sqlalchemy_url(admin_dsn: str, database: str) -> str:
    """SQLAlchemy URL of ``database`` on the server ``admin_dsn`` names (TCP or unix socket)."""
    parts = parse_dsn(admin_dsn)
    host, user = parts.get("host") or "127.0.0.1", parts.get("user") or "postgres"
    auth = f"{user}:{parts['password']}" if parts.get("password") else user
    if host.startswith("/"):
        return f"postgresql+psycopg2://{auth}@/{database}?host={host}"
    return f"postgresql+psycopg2://{auth}@{host}:{parts.get('port') or '5432'}/{database}"


def registry_connection_json(admin_dsn: str, database: str, **overrides: Any) -> str:
    """The ``registry_db`` connection in Airflow's JSON format, for ``AIRFLOW_CONN_REGISTRY_DB``.

    ``overrides`` replace fields, e.g. ``host``/``port`` to go through a proxy.
    """
    parts = parse_dsn(admin_dsn)
    conn: dict[str, Any] = {
        "conn_type": "postgres",
        "host": parts.get("host") or "127.0.0.1",
        "login": parts.get("user") or "postgres",
        "schema": database,
        "extra": {"connect_timeout": 3},
    }
    if parts.get("password"):
        conn["password"] = parts["password"]
    if parts.get("port"):
        conn["port"] = int(parts["port"])
    conn.update(overrides)
    return json.dumps(conn)


def airflow_settings(
    *,
    home: Path,
    metadata_url: str,
    dags_folder: Path,
    registry_connection: str,
    plan_cache_path: Path,
    pythonpath: list[str],
) -> dict[str, str]:
    """The variables every process of one environment shares; the caller adds its own."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW_CONN_REGISTRY_DB": registry_connection,
        "AIRFLOW__MODEL_REGISTRY__PLAN_CACHE_PATH": str(plan_cache_path),
        # Never the embedded server of `make run`: a missing connection must fail, not fall back.
        "AIRFLOW__MODEL_REGISTRY__EMBEDDED_PGDATA": str(plan_cache_path.parent / "embedded_unused"),
        # Never the login of the person running it: `modelreg` here is a service account.
        "AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH": str(home / "modelreg_credentials.json"),
        "PYTHONPATH": ":".join(pythonpath),
    }
