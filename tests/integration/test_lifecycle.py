"""The registry lifecycle through `modelreg`: versions, gates, promotion, rollback, audit."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from registry_helpers import modelreg, person, run_cycle

from models_core.cycle.dag_factory import build_cycle_dag
from models_core.registry import lifecycle as lifecycle_module
from models_core.registry.cli import main
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.session import LifecycleError
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries

MIGRATIONS = resources.files("models_core.store").joinpath("migrations")
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def _state(registry, model_id: str) -> list[tuple]:
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = %s ORDER BY id", (model_id,)
    )


def test_register_validates_the_version_and_orders_versions_semantically(registry, capsys, tmp_path):
    params = tmp_path / "params.json"
    params.write_text('{"n": 4}')
    for version in ("1.9.0", "1.10.0", "1.2.0"):
        assert modelreg(capsys, "register", "loner", version, "--params", str(params))[0] == 0

    code, _, err = modelreg(capsys, "register", "loner", "1.10")
    assert code == 1 and err.strip() == "modelreg register: version '1.10' is not MAJOR.MINOR.PATCH (e.g. 1.4.0)"
    code, _, err = modelreg(capsys, "register", "loner", "1.9.0")
    assert code == 1 and "already registered" in err and len(err.strip().splitlines()) == 1

    code, shown, _ = modelreg(capsys, "show", "loner")
    assert [v["version"] for v in shown["versions"]] == ["1.10.0", "1.9.0", "1.2.0"]
    assert modelreg(capsys, "list")[1] == [{"model_id": "loner", "primary": None, "active_shadows": [], "versions": 3}]
    assert {v["status"] for v in shown["versions"]} == {"DRAFT"}
    assert shown["versions"][0]["params"] == {"n": 4}


def test_activate_deactivate_archive_and_the_primary_guard(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", status="DRAFT")

    assert modelreg(capsys, "activate", "loner", "1.1.0", "--role", "CHALLENGER")[1]["status"] == "ACTIVE"
    code, _, err = modelreg(capsys, "deactivate", "loner", "1.0.0")
    assert code == 1 and "is the ACTIVE PRIMARY" in err
    assert modelreg(capsys, "deactivate", "loner", "1.1.0")[0] == 0
    assert modelreg(capsys, "archive", "loner", "1.1.0", "--reason", "superseded")[0] == 0
    assert _state(registry, "loner") == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ARCHIVED", "CHALLENGER")]
    with pytest.raises(SystemExit):
        main(["activate", "loner", "1.1.0", "--role", "PRIMARY"])


def test_promotion_refused_by_a_gate_shows_the_figures(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")

    code, _, err = modelreg(capsys, "promote", "loner", "1.1.0")

    assert code == 1
    assert "min_cycles needs >= 12, measured 0" in err and "max_failure_rate needs <= 0.05, measured nothing" in err
    assert _state(registry, "loner") == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW")]


def test_forced_promotion_records_its_reason_and_the_gate_figures(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")
    assert modelreg(capsys, "promote", "loner", "1.1.0", "--force")[0] == 1  # --force needs --reason

    code, data, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--force", "--reason", "hotfix for incident 42")

    assert code == 0 and data["forced"] is True and data["previous_now"] == "ARCHIVED"
    assert _state(registry, "loner") == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    rows = registry.query(
        "SELECT version, action, to_status, actor, reason, gates FROM detection_model_transitions"
        " WHERE source = 'api' ORDER BY id"
    )
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("1.0.0", "promote", "ARCHIVED", registry.db_user, "hotfix for incident 42"),
        ("1.1.0", "promote", "ACTIVE", registry.db_user, "hotfix for incident 42"),
    ]
    assert {g["name"]: g["passed"] for g in rows[1][5]} == {"min_cycles": False, "max_failure_rate": False}


def test_rollback_restores_the_exact_previous_primary(registry, capsys):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        registry.add_version("loner", version, "PRIMARY" if version == "1.0.0" else "SHADOW")
    modelreg(capsys, "promote", "loner", "1.1.0", "--force", "--reason", "r1")
    modelreg(capsys, "promote", "loner", "1.2.0", "--force", "--reason", "r2", "--keep-previous-as-shadow")

    code, data, _ = modelreg(capsys, "rollback", "loner", "--reason", "1.2.0 misbehaves")

    assert code == 0 and data == {"model_id": "loner", "restored": "1.1.0", "previous": "1.2.0"}
    assert _state(registry, "loner") == [
        ("1.0.0", "ARCHIVED", "PRIMARY"),
        ("1.1.0", "ACTIVE", "PRIMARY"),
        ("1.2.0", "INACTIVE", "PRIMARY"),
    ]


def test_history_at_answers_which_version_was_primary_at_a_past_time(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "2.0.0", "SHADOW")
    time.sleep(0.05)
    before_promotion = datetime.now(UTC)
    time.sleep(0.05)
    modelreg(capsys, "promote", "loner", "2.0.0", "--force", "--reason", "upgrade")
    after_promotion = datetime.now(UTC)

    assert modelreg(capsys, "history", "loner", "--at", before_promotion.isoformat())[1]["primary"] == "1.0.0"
    assert modelreg(capsys, "history", "loner", "--at", after_promotion.isoformat())[1]["primary"] == "2.0.0"
    assert modelreg(capsys, "history", "loner", "--at", "2000-01-01T00:00:00+00:00")[1]["primary"] is None
    events = modelreg(capsys, "history", "loner")[1]
    assert [(e["action"], e["version"], e["source"]) for e in events] == [
        ("sql_insert", "1.0.0", "sql"),
        ("sql_insert", "2.0.0", "sql"),
        ("promote", "1.0.0", "api"),
        ("promote", "2.0.0", "api"),
    ]


def test_primary_at_agrees_with_the_whole_replay_at_every_time_of_the_trail(registry):
    """primary_at reads the last entry into PRIMARY and its version's later moves only: at every
    time of the trail it answers what replaying the whole trail up to then answers. The trail
    has the entry many moves back, a departure after it, a row that moves no version, rows
    written at one time (by plain SQL into the trail) ordered by id, a row with the largest id
    there is at exactly the time asked, and rows at -infinity written before migration 0016
    (an earlier reading by pages of 32 rows never ended on those, and skipped that id)."""
    registry.add_version("replayed", "1.0.0")
    registry.add_version("replayed", "2.0.0", "SHADOW")
    update = "UPDATE detection_model_versions SET status = %s WHERE model_id = 'replayed' AND version = %s"
    for i in range(40):
        registry.execute(update, ("INACTIVE" if i % 2 == 0 else "ACTIVE", "2.0.0"))
    registry.add_dependency("replayed", "source")  # a row of the model that moves no version
    registry.execute(update, ("INACTIVE", "1.0.0"))
    insert = (
        "INSERT INTO detection_model_transitions (id, at, model_id, version, action, from_status, to_status,"
        " from_role, to_role, source) VALUES (coalesce(%s, nextval(pg_get_serial_sequence("
        "'detection_model_transitions', 'id'))), %s, 'replayed', %s, 'sql_update', %s, %s, %s, %s, 'sql')"
    )
    same_time = datetime.now(UTC) + timedelta(seconds=1)
    shadow_moves = [("2.0.0", "ACTIVE", "INACTIVE", "SHADOW"), ("2.0.0", "INACTIVE", "ACTIVE", "SHADOW")] * 20
    for rows in (shadow_moves, [("1.0.0", "INACTIVE", "ACTIVE", "PRIMARY")], shadow_moves):
        for version, from_status, to_status, role in rows:
            registry.execute(insert, (None, same_time, version, from_status, to_status, role, role))
    largest_id_at = same_time + timedelta(seconds=1)
    registry.execute(insert, (2**63 - 1, largest_id_at, "2.0.0", "INACTIVE", "ACTIVE", "SHADOW", "PRIMARY"))
    registry.execute("ALTER TABLE detection_model_transitions DROP CONSTRAINT detection_model_transitions_at_in_range")
    try:  # the trail of a database upgraded to 0016 with such rows
        registry.execute(insert, (None, "-infinity", "3.0.0", None, "ACTIVE", "PRIMARY", "PRIMARY"))
        for version, from_status, to_status, role in shadow_moves:
            registry.execute(insert, (None, "-infinity", version, from_status, to_status, role, role))
    finally:
        registry.execute(MIGRATIONS.joinpath("0016_transition_times.sql").read_text())  # the constraint, again

    with registry_connection(load_settings()) as conn:
        lifecycle = ModelRegistry(conn, person("x")).lifecycle
        history = lifecycle.status_history("replayed")
        times = sorted({event["at"] for event in history})
        assert len(history) > 150 and largest_id_at in times
        answers = []
        for at in [*times, same_time - timedelta(microseconds=1)]:
            replayed = None
            for event in history:
                if event["at"] <= at:
                    replayed = lifecycle_module.primary_after(replayed, event)
            assert lifecycle.primary_at("replayed", at) == replayed, at
            answers.append(replayed)
    assert answers[0] == "3.0.0" and answers[-1] is None and answers[-2] == "2.0.0" and answers[-3] == "1.0.0"


def test_changes_made_with_plain_sql_are_in_the_history(registry, capsys):
    version_id = registry.add_version("loner", "1.0.0")
    registry.execute("UPDATE detection_model_versions SET status = 'INACTIVE' WHERE id = %s", (version_id,))
    registry.execute("INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('loner', 'source')")

    events = modelreg(capsys, "history", "loner")[1]

    assert [(e["action"], e["from_status"], e["to_status"], e["source"]) for e in events] == [
        ("sql_insert", None, "ACTIVE", "sql"),
        ("sql_update", "ACTIVE", "INACTIVE", "sql"),
        ("sql_deps_add", None, None, "sql"),
    ]


def test_deps_add_refuses_a_cycle_naming_it_and_unknown_models(registry, capsys):
    for model_id in ("source", "middle", "sink"):
        registry.add_version(model_id, "1.0.0")
    assert modelreg(capsys, "deps", "add", "sink", "middle")[0] == 0

    code, _, err = modelreg(capsys, "deps", "add", "source", "sink")  # middle -> source is class-level
    assert code == 1 and "would close a dependency cycle among ['middle', 'sink', 'source']" in err
    code, _, err = modelreg(capsys, "deps", "add", "sink", "nobody")
    assert code == 1 and "unknown model 'nobody'" in err
    assert modelreg(capsys, "deps", "add", "sink", "sink")[0] == 1
    assert registry.query("SELECT model_id, depends_on FROM detection_model_dependencies") == [("sink", "middle")]
    assert modelreg(capsys, "deps", "remove", "sink", "middle")[0] == 0
    assert modelreg(capsys, "deps", "remove", "sink", "middle")[0] == 1


def test_a_promotion_while_another_change_holds_the_model_gets_a_clear_error(registry):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")
    settings = load_settings()
    with registry_connection(settings) as holder, registry_connection(settings) as conn:
        with holder.cursor() as cur:
            cur.execute(queries("registry/session.sql")["try_lock_model"], {"model_id": "loner"})
            with pytest.raises(LifecycleError, match="another registry change to loner is in progress"):
                ModelRegistry(conn, person("b")).lifecycle.promote(
                    "loner", "1.1.0", window=timedelta(days=1), force=True, reason="race"
                )
        holder.rollback()


def test_concurrent_promotions_leave_exactly_one_active_primary(registry):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")
    registry.add_version("loner", "1.2.0", "SHADOW")
    settings = load_settings()
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def promote(version: str) -> None:
        with registry_connection(settings) as conn:
            barrier.wait()
            try:
                ModelRegistry(conn, person(version)).lifecycle.promote(
                    "loner", version, window=timedelta(days=1), force=True, reason="race"
                )
                outcomes[version] = "promoted"
            except LifecycleError as exc:
                outcomes[version] = str(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("1.1.0", "1.2.0")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert "promoted" in outcomes.values()
    assert all(o == "promoted" or "in progress" in o for o in outcomes.values())
    assert registry.query(
        "SELECT count(*) FROM detection_model_versions WHERE status = 'ACTIVE' AND role = 'PRIMARY'"
    ) == [(1,)]


def test_plan_shows_what_changed_since_airflow_last_parsed(registry, capsys):
    registry.add_version("source", "1.0.0")
    build_cycle_dag()  # what the DAG processor would do: parse, caching the plan
    registry.add_version("source", "1.1.0", "SHADOW", status="DRAFT")
    modelreg(capsys, "activate", "source", "1.1.0", "--role", "SHADOW")
    registry.add_version("loner", "1.0.0")

    code, diff, _ = modelreg(capsys, "plan")

    assert code == 0
    assert diff["tasks_added"] == ["loner.primary", "source.shadow_1_1_0"]
    assert diff["edges_added"] == ["source.primary >> source.shadow_1_1_0"]
    assert diff["tasks_removed"] == [] and diff["edges_removed"] == []


def test_shadow_is_evaluated_gated_promoted_and_then_feeds_downstream(registry, chain, capsys):
    assert (
        modelreg(
            capsys,
            "gates",
            "source",
            "--min-cycles",
            "2",
            "--min-agreement",
            "0.9",
            "--max-failure-rate",
            "0",
            "--gate-kind",
            "point",  # six inputs are not evidence for an interval (test_interval_gates)
        )[0]
        == 0
    )
    for minutes in (0, 5):
        assert run_cycle(BASE + timedelta(minutes=minutes)).state == "success"

    compared = modelreg(capsys, "compare", "source", "1.0.0", "1.1.0")[1]["versions"]
    shadow = compared["1.1.0"]["metrics"]
    assert shadow["eval_inputs_both"] == 3.0 and shadow["eval_inputs_shadow_only"] == 2.0
    assert shadow["eval_coverage"] == pytest.approx(0.6) and shadow["eval_agreement"] == 1.0
    assert shadow["eval_score_mean_abs_diff"] == 0.0 and "eval_duration_ratio" in shadow
    assert compared["1.1.0"]["cycles"] == 2 and compared["1.0.0"]["metrics"]["made"] == 3.0

    code, promoted, _ = modelreg(capsys, "promote", "source", "1.1.0")
    assert code == 0 and promoted["forced"] is False
    assert {g["name"]: g["actual"] for g in promoted["gates"]} == {
        "min_cycles": 2.0,
        "max_failure_rate": 0.0,
        "min_agreement": 1.0,
    }

    next_cycle = BASE + timedelta(minutes=10)
    run = run_cycle(next_cycle)

    assert run.state == "success" and "source.shadow_1_1_0" not in run.task_states
    seen = registry.outputs(chain["middle"], next_cycle)[0][1]["seen"]["source"]
    assert seen["version_id"] == chain["source_shadow"] and len(seen["outputs"]) == 5


def test_plain_sql_from_a_session_without_the_schema_on_its_path_is_audited(registry, capsys):
    settings = load_settings()
    with registry_connection(settings) as conn:
        with conn, conn.cursor() as cur:
            cur.execute("SET search_path TO public")
            cur.execute(
                "INSERT INTO kcg.detection_model_versions (model_id, version, status, role)"
                " VALUES ('loner', '1.0.0', 'ACTIVE', 'PRIMARY')"
            )

    events = modelreg(capsys, "history", "loner")[1]

    assert [(e["action"], e["source"]) for e in events] == [("sql_insert", "sql")]


# --- issue 11, defect 4: a version rolled back from is known bad ---------------------------


def test_a_second_rollback_never_returns_to_the_version_just_rolled_back(registry, capsys):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        registry.add_version("loner", version, "PRIMARY" if version == "1.0.0" else "SHADOW")
    modelreg(capsys, "promote", "loner", "1.1.0", "--force", "--reason", "r1")
    modelreg(capsys, "promote", "loner", "1.2.0", "--force", "--reason", "r2")
    assert modelreg(capsys, "rollback", "loner", "--reason", "1.2.0 is bad")[1]["restored"] == "1.1.0"

    code, data, _ = modelreg(capsys, "rollback", "loner", "--reason", "1.1.0 is bad too")

    assert code == 0 and data["restored"] == "1.0.0" and data["previous"] == "1.1.0"
    code, _, err = modelreg(capsys, "rollback", "loner")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "nothing to roll back to" in err and "1.1.0 (rolled back from at" in err and "1.2.0" in err
    assert "--to VERSION" in err
    assert _state(registry, "loner")[0] == ("1.0.0", "ACTIVE", "PRIMARY")


def test_rollback_to_names_any_version_explicitly(registry, capsys):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        registry.add_version("loner", version, "PRIMARY" if version == "1.0.0" else "SHADOW")
    modelreg(capsys, "promote", "loner", "1.1.0", "--force", "--reason", "r1")
    modelreg(capsys, "rollback", "loner", "--reason", "1.1.0 is bad")

    code, data, _ = modelreg(capsys, "rollback", "loner", "--to", "1.1.0", "--reason", "it was the data after all")

    assert code == 0 and data == {"model_id": "loner", "restored": "1.1.0", "previous": "1.0.0"}
    assert _state(registry, "loner") == [
        ("1.0.0", "INACTIVE", "PRIMARY"),
        ("1.1.0", "ACTIVE", "PRIMARY"),
        ("1.2.0", "ACTIVE", "SHADOW"),
    ]
    code, _, err = modelreg(capsys, "rollback", "loner", "--to", "1.1.0")
    assert code == 1 and "already the ACTIVE PRIMARY" in err
    code, _, err = modelreg(capsys, "rollback", "loner", "--to", "9.9.9")
    assert code == 1 and "loner@9.9.9 is not registered" in err


# --- issue 11, defect 5: graph changes serialise; the graph is read under the lock --------


def test_opposite_dependencies_added_at_once_never_both_commit(registry):
    for model_id in ("a_model", "b_model"):
        registry.add_version(model_id, "1.0.0")
    settings = load_settings()

    for _ in range(10):
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def add(model_id: str, upstream: str, barrier=barrier, outcomes=outcomes) -> None:
            with registry_connection(settings) as conn:
                barrier.wait()
                try:
                    ModelRegistry(conn, person(model_id)).dependencies.add(model_id, upstream, {})
                    outcomes.append("added")
                except LifecycleError as exc:
                    outcomes.append(str(exc))

        threads = [threading.Thread(target=add, args=pair) for pair in (("a_model", "b_model"), ("b_model", "a_model"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert outcomes.count("added") == 1, outcomes
        assert any("would close a dependency cycle among ['a_model', 'b_model']" in o for o in outcomes), outcomes
        assert len(registry.query("SELECT 1 FROM detection_model_dependencies")) == 1
        registry.execute("DELETE FROM detection_model_dependencies")


def test_gate_changes_read_the_gates_under_the_lock(registry, capsys):
    registry.add_version("loner", "1.0.0")
    settings = load_settings()
    with registry_connection(settings) as first, registry_connection(settings) as second:
        with first.cursor() as cur:  # another graph change in progress holds the registry-wide lock
            cur.execute(queries("registry/session.sql")["lock_graph"], {"timeout": "10s"})
        done: dict[str, Any] = {}
        waiter = threading.Thread(
            target=lambda: done.update(gates=ModelRegistry(second, person("b")).guards.set_gates("loner", min_cycles=5))
        )
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()  # it waits for the lock instead of reading stale gates
        first.rollback()
        waiter.join()
    assert done["gates"]["min_cycles"] == 5


# --- issue 11, defect 10: --json after the command, as people type it; --actor is gone -----


def test_json_is_taken_after_the_command_and_actor_is_refused_anywhere(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")
    capsys.readouterr()

    assert main(["compare", "loner", "1.0.0", "1.1.0", "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert set(compared["versions"]) == {"1.0.0", "1.1.0"}
    for argv in (
        ["promote", "loner", "1.1.0", "--force", "--reason", "r", "--actor", "carol"],
        ["--actor", "carol", "promote", "loner", "1.1.0", "--force", "--reason", "r"],
    ):
        assert main(argv) == 2
        assert "--actor is gone" in capsys.readouterr().err
    assert main(["promote", "loner", "1.1.0", "--force", "--reason", "r", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["promoted"] == "1.1.0"
    assert registry.query(
        "SELECT DISTINCT actor, actor_kind FROM detection_model_transitions WHERE source = 'api'"
    ) == [(registry.db_user, "service")]


def test_bad_registry_input_gets_one_clear_line(registry, capsys):
    long_id = "m" * 65
    code, _, err = modelreg(capsys, "register", long_id, "1.0.0")
    assert code == 1 and err.strip().splitlines() == [
        f"modelreg register: model_id {long_id!r} is 65 characters, the registry allows at most 64"
    ]
    with pytest.raises(Exception, match="params of m 1.0.0 must be a JSON object, not array"):
        registry.execute(
            "INSERT INTO detection_model_versions (model_id, version, params) VALUES ('m', '1.0.0', '[1]')"
        )


def test_a_version_with_params_from_before_the_check_can_still_be_retired(registry, capsys):
    """0007's CHECK made such a row impossible to update at all; the check is now on writes of params only."""
    registry.execute(
        "ALTER TABLE detection_model_versions DISABLE TRIGGER detection_model_versions_params_object;"
        " INSERT INTO detection_model_versions (model_id, version, status, role, params)"
        " VALUES ('legacy', '1.0.0', 'ACTIVE', 'PRIMARY', '[1, 2]');"
        " ALTER TABLE detection_model_versions ENABLE TRIGGER detection_model_versions_params_object"
    )
    code, _, err = modelreg(capsys, "archive", "legacy", "1.0.0", "--force", "--reason", "params were an array")
    assert (code, err) == (0, "")
    assert registry.query("SELECT status FROM detection_model_versions WHERE model_id = 'legacy'") == [("ARCHIVED",)]
    with pytest.raises(Exception, match="params of legacy 1.0.0 must be a JSON object, not string"):
        registry.execute("UPDATE detection_model_versions SET params = '\"x\"' WHERE model_id = 'legacy'")
