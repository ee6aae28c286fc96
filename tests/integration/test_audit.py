"""The audit trail: every change of a version, a dependency or a gate has exactly one row,
whoever makes it and however (issue 11, defect 6)."""

from __future__ import annotations

from datetime import timedelta

import psycopg2
import pytest
from registry_helpers import person

from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection


def _events(registry, model_id: str) -> list[tuple]:
    return registry.query(
        "SELECT action, source, details FROM detection_model_transitions WHERE model_id = %s ORDER BY id", (model_id,)
    )


def test_a_session_that_claims_to_be_the_api_is_still_audited(registry):
    version_id = registry.add_version("loner", "1.0.0")
    registry.execute("SELECT set_config('models_core.api', 'on', false)")  # the old switch
    registry.execute("UPDATE detection_model_versions SET status = 'INACTIVE' WHERE id = %s", (version_id,))
    registry.execute(
        "SELECT set_config('models_core.action', 'promote', true);"
        " UPDATE detection_model_versions SET status = 'ACTIVE' WHERE id = %s",
        (version_id,),
    )

    rows = registry.query(
        "SELECT action, from_status, to_status, source, db_user FROM detection_model_transitions"
        " WHERE model_id = 'loner' ORDER BY id"
    )

    assert [row[:4] for row in rows] == [
        ("sql_insert", None, "ACTIVE", "sql"),
        ("sql_update", "ACTIVE", "INACTIVE", "sql"),
        ("promote", "INACTIVE", "ACTIVE", "api"),
    ]
    assert all(row[4] for row in rows)  # the database user that made each change


def test_sql_updates_of_dependencies_and_version_fields_are_recorded(registry):
    version_id = registry.add_version("loner", "1.0.0")
    registry.add_dependency("loner", "source")
    registry.execute("UPDATE detection_model_dependencies SET depends_on = 'middle' WHERE model_id = 'loner'")
    registry.execute("UPDATE detection_model_versions SET description = 'patched' WHERE id = %s", (version_id,))

    loner = _events(registry, "loner")
    assert [(a, s) for a, s, _ in loner] == [
        ("sql_insert", "sql"),
        ("sql_deps_add", "sql"),
        ("sql_deps_update", "sql"),
        ("sql_update", "sql"),
    ]
    assert loner[2][2]["before"]["depends_on"] == "source" and loner[2][2]["after"]["depends_on"] == "middle"
    assert loner[3][2] == {"description": [None, "patched"]}


def test_a_version_keeps_its_model_and_number_and_the_audit_trail_is_append_only(registry):
    """Issue 23 attack review: a rename pointed a request at another version, a move put a version into
    another model's PRIMARY, and the audit rows could be deleted."""
    version_id = registry.add_version("loner", "1.0.0")
    registry.execute("INSERT INTO detection_model_backends (name, base_url) VALUES ('gpu-a', 'http://127.0.0.1:9')")
    for change in ("version = '1.0.1'", "model_id = 'lone_wolf'"):
        with pytest.raises(psycopg2.Error, match="loner@1.0.0 keeps its model and version"):
            registry.execute(f"UPDATE detection_model_versions SET {change} WHERE id = %s", (version_id,))
    for tamper in (
        "UPDATE detection_model_transitions SET actor = 'nobody'",
        "DELETE FROM detection_model_transitions",
        "TRUNCATE detection_model_transitions",
        "DELETE FROM detection_model_backend_events",
    ):
        with pytest.raises(psycopg2.Error, match="is append-only"):
            registry.execute(tamper)
    assert registry.query("SELECT count(*) FROM detection_model_transitions") == [(1,)]
    assert registry.query("SELECT count(*) FROM detection_model_backend_events") == [(1,)]


def test_gate_changes_made_with_sql_are_recorded(registry):
    registry.execute("INSERT INTO detection_model_quality_gates (model_id, min_cycles) VALUES ('loner', 3)")
    registry.execute("UPDATE detection_model_quality_gates SET min_agreement = 0.9 WHERE model_id = 'loner'")
    registry.execute("UPDATE detection_model_quality_gates SET updated_at = now() WHERE model_id = 'loner'")
    registry.execute("DELETE FROM detection_model_quality_gates WHERE model_id = 'loner'")

    events = _events(registry, "loner")

    assert [(a, s) for a, s, _ in events] == [("sql_gates", "sql")] * 3  # touching updated_at is no change
    assert events[0][2]["before"] is None and events[0][2]["after"]["min_cycles"] == 3
    assert events[1][2]["after"]["min_agreement"] == 0.9
    assert events[2][2]["after"] is None


def test_every_api_change_has_exactly_one_audit_row_with_its_actor(registry):
    registry.add_version("loner", "1.0.0")
    with registry_connection(load_settings()) as conn:
        api = ModelRegistry(conn, person("alice"))
        api.lifecycle.register("loner", "1.1.0", {"k": 1}, "candidate")
        api.lifecycle.activate("loner", "1.1.0", "SHADOW")
        api.guards.set_gates("loner", reason="stricter", min_cycles=1)
        api.lifecycle.promote("loner", "1.1.0", window=timedelta(hours=1), force=True, reason="drill")
        api.dependencies.add("loner", "source", {"source": ()})

    rows = registry.query(
        "SELECT action, version, actor, actor_kind, reason, source, basis FROM"
        " detection_model_transitions WHERE source = 'api' ORDER BY id"
    )

    assert rows == [
        ("register", "1.1.0", "alice", "person", None, "api", None),
        ("activate", "1.1.0", "alice", "person", None, "api", None),
        ("gates", None, "alice", "person", "stricter", "api", None),
        ("promote", "1.0.0", "alice", "person", "drill", "api", None),
        ("promote", "1.1.0", "alice", "person", "drill", "api", "forced"),
        ("deps_add", None, "alice", "person", "depends on source", "api", None),
    ]


def test_stage_check_and_approval_settings_changed_with_sql_are_recorded(registry):
    registry.execute(
        "INSERT INTO detection_model_stage_checks (model_id, required_tags) VALUES ('loner', '{validated}')"
    )
    registry.execute("UPDATE detection_model_stage_checks SET updated_at = now()")
    registry.execute("INSERT INTO detection_model_approval_settings (model_id, required) VALUES ('loner', true)")
    registry.execute("DELETE FROM detection_model_approval_settings")

    events = _events(registry, "loner")

    assert [(a, s) for a, s, _ in events] == [("sql_checks", "sql"), ("sql_approvals", "sql"), ("sql_approvals", "sql")]
    assert events[0][2]["after"]["required_tags"] == ["validated"]
    assert events[2][2] == {
        "before": {"model_id": "loner", "required": True, "approvers": [], "min_approvals": 1},
        "after": None,
    }


def test_the_trail_refuses_times_iso_8601_and_python_cannot_hold(registry):
    """Issue 28 attack review: a row written by plain SQL at 'infinity', in year 10000 or before
    year 1 was served as PostgreSQL writes it (not ISO 8601) and `modelreg history` failed on it."""
    insert = (
        "INSERT INTO detection_model_transitions (at, model_id, version, action, source)"
        " VALUES (%s, 'loner', '1.0.0', 'sql_update', 'sql')"
    )
    for at in (
        "infinity",
        "-infinity",
        "10000-01-01 00:00:00+00",
        "9999-12-31 12:00:00+00",
        "0001-01-01 00:00:00+00",
        "0100-01-01 BC",
    ):
        with pytest.raises(psycopg2.errors.CheckViolation, match="detection_model_transitions_at_in_range"):
            registry.execute(insert, (at,))
    registry.execute(insert, ("9999-12-30 12:00:00+00",))
    assert registry.query("SELECT count(*) FROM detection_model_transitions") == [(1,)]
