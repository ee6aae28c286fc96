"""Test environment: a real PostgreSQL and a real Airflow metadata database.

The server is the one named by ``MODEL_REGISTRY_TEST_PG`` (CI sets it to the machine's
service) or, when unset, the embedded PostgreSQL. Each session gets two fresh databases:
one for the registry, one for Airflow's metadata. Everything is configured through
Airflow's own environment conventions, before Airflow is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from psycopg2.extensions import parse_dsn

from models_core.store import embedded_postgres

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
_TMP = Path(tempfile.mkdtemp(prefix="models-core-tests-"))
_SUFFIX = uuid.uuid4().hex[:8]
REGISTRY_DB = f"mc_registry_{_SUFFIX}"
AIRFLOW_DB = f"mc_airflow_{_SUFFIX}"


def _admin_dsn() -> str:
    url = os.environ.get("MODEL_REGISTRY_TEST_PG")
    if url:
        return url
    global _EMBEDDED  # keeps the server attached (and running) for the whole session
    _EMBEDDED = embedded_postgres.start(_TMP / "pgdata", stop_at_exit=True)
    return _EMBEDDED.get_uri("postgres")


ADMIN_DSN = _admin_dsn()
_PARTS = parse_dsn(ADMIN_DSN)


def _sqlalchemy_url(database: str) -> str:
    host = _PARTS.get("host", "127.0.0.1")
    user = _PARTS.get("user", "postgres")
    if host.startswith("/"):
        return f"postgresql+psycopg2://{user}@/{database}?host={host}"
    return f"postgresql+psycopg2://{user}@{host}:{_PARTS.get('port', '5432')}/{database}"


def registry_conn_json(**overrides) -> str:
    """The registry_db connection as Airflow's JSON connection format."""
    conn = {
        "conn_type": "postgres",
        "host": _PARTS.get("host", "127.0.0.1"),
        "login": _PARTS.get("user", "postgres"),
        "schema": REGISTRY_DB,
        "extra": {"connect_timeout": 3},
    }
    if _PARTS.get("port"):
        conn["port"] = int(_PARTS["port"])
    conn.update(overrides)
    return json.dumps(conn)


for _db in (REGISTRY_DB, AIRFLOW_DB):
    embedded_postgres.create_database(ADMIN_DSN, _db)

TEST_ENV = {
    "AIRFLOW_HOME": str(_TMP / "airflow_home"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(AIRFLOW_DB),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(_TMP / "plugins"),  # empty: the plugin comes from the entry point
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW_CONN_REGISTRY_DB": registry_conn_json(),
    "AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE": "models_for_tests",
    "AIRFLOW__MODEL_REGISTRY__PLAN_CACHE_PATH": str(_TMP / "plan_cache.json"),
    "AIRFLOW__MODEL_REGISTRY__EMBEDDED_PGDATA": str(_TMP / "embedded_unused"),
    # Never the login of the person running the tests (`modelreg login` keeps it in ~/.config).
    "AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH": str(_TMP / "modelreg_credentials.json"),
}
os.environ.update(TEST_ENV)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
subprocess.run(
    [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
    check=True,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
)


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    from airflow.settings import dispose_orm

    dispose_orm()
    for db in (REGISTRY_DB, AIRFLOW_DB):
        embedded_postgres.drop_database(ADMIN_DSN, db)


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
