"""The registry schema: migrations and the constraints a registry needs."""

from __future__ import annotations

import psycopg2
import pytest

from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.migrate import available_migrations, migrate


def test_migrate_twice_applies_nothing_the_second_time(registry):  # noqa: ARG001
    settings = load_settings()
    with registry_connection(settings) as conn:
        assert migrate(conn, settings.schema) == []
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [v for (v,) in cur.fetchall()] == [v for v, _ in available_migrations()]


def test_migrate_creates_a_fresh_schema_of_any_name(registry):  # noqa: ARG001
    settings = load_settings()
    with registry_connection(settings) as conn:
        try:
            assert migrate(conn, "Other Schema") == [v for v, _ in available_migrations()]
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('\"Other Schema\".detection_model_run_outputs_default')")
                assert cur.fetchone()[0] is not None
        finally:
            with conn, conn.cursor() as cur:
                cur.execute('DROP SCHEMA "Other Schema" CASCADE')


def test_operators_can_insert_rows_with_only_the_documented_columns(registry):
    registry.execute(
        "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
        " VALUES ('m', '1.0.0', 'ACTIVE', 'PRIMARY', '{\"a\": 1}')"
    )
    registry.execute("INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('m', 'up')")
    assert registry.query("SELECT id, model_id, version FROM detection_model_versions") == [(1, "m", "1.0.0")]


@pytest.mark.parametrize(
    "statement, constraint",
    [
        (
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('m', '1.0', 'ACTIVE', 'SHADOW')",
            "version_check",
        ),
        (
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('m', '01.0.0', 'ACTIVE', 'SHADOW')",
            "version_check",
        ),
        (
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('m', '1.0.1', 'LIVE', 'SHADOW')",
            "status_check",
        ),
        (
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('m', '1.0.1', 'ACTIVE', 'BOSS')",
            "role_check",
        ),
        (
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('m', '1.0.0', 'DRAFT', 'SHADOW')",
            "detection_model_versions_model_version_key",
        ),
        (
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('m', '2.0.0', 'ACTIVE', 'PRIMARY')",
            "detection_model_versions_one_active_primary",
        ),
        (
            "INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('m', 'm')",
            "detection_model_dependencies_no_self",
        ),
        (
            "INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('m', 'up')",
            "detection_model_dependencies_edge_key",
        ),
    ],
)
def test_registry_constraints_reject_bad_rows_naming_the_constraint(registry, statement, constraint):
    registry.add_version("m", "1.0.0")
    registry.add_dependency("m", "up")

    with pytest.raises(psycopg2.IntegrityError, match=constraint):
        registry.execute(statement)


def test_a_second_primary_may_exist_when_only_one_is_active(registry):
    registry.add_version("m", "1.0.0", status="ARCHIVED")
    registry.add_version("m", "2.0.0")
    registry.add_version("m", "3.0.0", status="INACTIVE")

    assert registry.query("SELECT count(*) FROM detection_model_versions WHERE role = 'PRIMARY'") == [(3,)]


def test_run_outputs_are_partitioned_by_month_with_a_default_partition(registry):
    rows = registry.query(
        "SELECT pg_get_partkeydef(c.oid), (SELECT count(*) FROM pg_inherits i JOIN pg_class d ON d.oid = i.inhrelid"
        " WHERE i.inhparent = c.oid AND pg_get_expr(d.relpartbound, d.oid) = 'DEFAULT')"
        " FROM pg_class c WHERE c.relname = 'detection_model_run_outputs'"
    )
    assert rows == [("RANGE (cycle_started_at)", 1)]
