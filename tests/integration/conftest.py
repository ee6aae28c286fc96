"""Fixtures for tests that use the registry database and run the real DAG."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2 import sql
from registry_api_helpers import AirflowApi, airflow_api_app
from registry_helpers import Registry

from harness.sql import REGISTRY_TABLES, empty_tables
from models_core.registry.demo_registry import seed_demo_if_empty
from models_core.settings import load_settings
from models_core.store.connections import close_kept_connection, registry_connection
from models_core.store.migrate import migrate


@pytest.fixture(scope="session")
def migrated() -> None:
    settings = load_settings()
    with registry_connection(settings) as conn:
        migrate(conn, settings.schema)


@pytest.fixture
def registry(migrated) -> Iterator[Registry]:  # noqa: ARG001 - ordering fixture
    """An empty, migrated registry; month partitions and the plan cache are removed too."""
    settings = load_settings()
    with registry_connection(settings) as conn:
        with conn, conn.cursor() as cur:
            empty_tables(cur, list(REGISTRY_TABLES))
            cur.execute(
                "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
                " AND relnamespace = %s::regnamespace AND relname LIKE 'detection\\_model\\_run\\_outputs\\_p%%'",
                (settings.schema,),
            )
            for (name,) in cur.fetchall():
                cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(settings.schema, name)))
        Path(settings.plan_cache_path).unlink(missing_ok=True)
        yield Registry(conn)
    close_kept_connection()  # a worker-style parse in the test may have left one


@pytest.fixture
def chain(registry) -> dict[str, int]:
    """source -> middle -> sink, with a SHADOW and a CHALLENGER of source; returns version ids."""
    ids = {
        "source": registry.add_version("source", "1.0.0", params={"n": 3}),
        "source_shadow": registry.add_version("source", "1.1.0", "SHADOW", params={"n": 5}),
        "source_challenger": registry.add_version("source", "2.0.0", "CHALLENGER", params={"n": 7}),
        "middle": registry.add_version("middle", "1.0.0"),
        "sink": registry.add_version("sink", "1.0.0"),
    }
    registry.add_dependency("sink", "middle")  # DB edge; middle -> source comes from depends_on
    return ids


@pytest.fixture(scope="session")
def airflow_api(tmp_path_factory) -> Iterator[AirflowApi]:
    """Airflow's whole API app in-process, with the registry plugin and users of every role."""
    with airflow_api_app(tmp_path_factory.mktemp("auth")) as client:
        yield AirflowApi(client)


@pytest.fixture
def demo(registry, monkeypatch) -> dict[str, int]:
    """The demo registry over example_models; returns version ids by 'model@version'."""
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE", "example_models")
    assert seed_demo_if_empty(registry.conn)
    return {f"{m}@{v}": i for i, m, v in registry.query("SELECT id, model_id, version FROM detection_model_versions")}
