"""Issue 23: every side door to PRIMARY, identity and evidence that was open, tried and shut.

Each test names the door. People are logged in to Airflow's API app in-process (the users
of ``registry_api_helpers``: alice admin, uma/bob users, victor viewer); ``modelreg``
without a login is a service account in direct database mode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from registry_helpers import modelreg, person, run_cycle
from test_registry_events import every_audit_row_has_one_event

from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

API = "/model-registry/api"
CYCLE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _state(registry, model_id: str = "loner") -> list[tuple]:
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = %s ORDER BY id", (model_id,)
    )


@pytest.fixture(autouse=True)
def every_door_writes_its_events(registry):
    """Issue 27: whichever door a test tries, every audit row it left has exactly one event."""
    yield
    every_audit_row_has_one_event(registry)


@pytest.fixture
def as_user(capsys, airflow_api):
    return lambda user, *argv: modelreg(capsys, *argv, api=airflow_api, user=user)


def _error_version(registry, model_id: str, version: str, role: str) -> int:
    """A version the product took out of service as it would (ERROR in its role, audited as system)."""
    version_id = registry.add_version(model_id, version, role)
    from models_core.registry.actors import SYSTEM

    ModelRegistry(registry.conn, SYSTEM).lifecycle.mark_error(model_id, version, "failed 3 cycles in a row")
    return version_id


# --- door 1: reactivate --role PRIMARY ---------------------------------------------------------


def test_a_shadow_in_error_cannot_be_reactivated_into_primary_around_its_gates(registry, capsys, as_user):
    registry.add_version("loner", "1.0.0")
    _error_version(registry, "loner", "1.1.0", "SHADOW")
    assert modelreg(capsys, "deactivate", "loner", "1.0.0", "--force", "--reason", "make room")[0] == 0

    code, _, err = as_user("alice", "reactivate", "loner", "1.1.0", "--role", "PRIMARY")

    assert code == 1 and "promotion of loner@1.1.0 refused by its quality gates" not in err
    assert "reactivation of loner@1.1.0 refused by its quality gates: min_cycles needs >= 12, measured 0" in err
    assert _state(registry)[1] == ("1.1.0", "ERROR", "SHADOW")
    as_user("alice", "approvals", "set", "loner", "on")
    code, _, err = as_user("uma", "reactivate", "loner", "1.1.0", "--role", "PRIMARY")
    assert (
        code == 1
        and "was not the ACTIVE PRIMARY when it went to ERROR, so making it the PRIMARY is a "
        "promotion, and loner's promotions need approval"
        in err
    )
    assert _state(registry)[1] == ("1.1.0", "ERROR", "SHADOW")


def test_reactivating_the_primary_that_errored_is_a_restore_and_the_audit_says_so(registry, capsys):
    _error_version(registry, "loner", "1.0.0", "PRIMARY")

    code, back, _ = modelreg(capsys, "reactivate", "loner", "1.0.0")

    assert code == 0 and (back["status"], back["role"]) == ("ACTIVE", "PRIMARY")
    assert registry.query(
        "SELECT action, basis, actor_kind FROM detection_model_transitions WHERE action = 'reactivate'"
    ) == [("reactivate", "restore", "service")]


# --- door 2: a plain promote of a version in ERROR ----------------------------------------------


def test_a_version_in_error_is_not_promotable_and_the_error_names_reactivate(registry, capsys):
    registry.add_version("loner", "1.0.0")
    error_id = _error_version(registry, "loner", "1.1.0", "SHADOW")
    registry.seed_cycles("loner", error_id, ["success"] * 12, hours_ago=3)  # its window average passes the gates

    for argv in (["promote", "loner", "1.1.0"], ["promote", "loner", "1.1.0", "--force", "--reason", "x"]):
        code, _, err = modelreg(capsys, *argv)
        assert (
            code == 1
            and "loner@1.1.0 is in ERROR and cannot be promoted: `modelreg reactivate loner 1.1.0` brings it back first"
            in err
        )
    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    assert code == 1 and "is in ERROR" in check
    assert _state(registry) == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ERROR", "SHADOW")]


def test_rollback_to_never_restores_a_version_that_was_never_primary(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")

    code, _, err = modelreg(capsys, "rollback", "loner", "--to", "1.1.0")

    assert code == 1 and "loner@1.1.0 has never been the PRIMARY: making it the PRIMARY is a promotion" in err
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


# --- door 4 and 5: identity and permissions ------------------------------------------------------


def test_the_actor_of_a_change_is_who_airflow_authenticated_by_stable_id(registry, airflow_api):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")
    client = airflow_api.client

    answer = client.post(
        f"{API}/models/loner/versions/1.1.0/describe",
        json={"description": "by uma"},
        headers=airflow_api.headers("uma"),
    )
    who = client.get(f"{API}/whoami", headers=airflow_api.headers("uma")).json()

    assert answer.status_code == 200, answer.text
    assert who == {"id": "uma", "name": "uma", "kind": "person", "permissions": ["approve", "request"]}
    assert client.get(f"{API}/whoami", headers=airflow_api.headers("alice")).json()["permissions"] == [
        "approve",
        "force",
        "govern",
        "request",
    ]
    assert registry.query("SELECT actor, actor_kind FROM detection_model_transitions WHERE action = 'describe'") == [
        ("uma", "person")
    ]


def test_a_viewer_may_neither_request_nor_approve(registry, airflow_api, as_user):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW")
    as_user("alice", "approvals", "set", "loner", "on")
    as_user("uma", "promote", "loner", "1.1.0", "--force", "--reason", "x")  # refused: uma may not force
    as_user("alice", "promote", "loner", "1.1.0", "--force", "--reason", "drill")

    code, _, err = as_user("victor", "approve", "loner")

    assert code == 1 and "403" not in err and err.strip()
    assert registry.query("SELECT status FROM detection_model_approval_requests") == [("PENDING",)]


# --- door 6: evidence counted in cycles, not runs --------------------------------------------------


def test_running_one_cycle_again_is_one_piece_of_evidence(registry, capsys):
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "3")[0] == 0
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for attempt in range(3):  # one logical date, run three times (a clear, `airflow dags test` again)
        registry.execute(
            "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at,"
            " model_id, version_id, role, state, recorded_at) VALUES (%s, 'loner.shadow', %s, 'loner',"
            " %s, 'SHADOW', 'success', now() + %s * interval '1 second')",
            (f"manual__{attempt}", now - timedelta(hours=1), shadow, attempt),
        )

    code, report, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")

    assert code == 1 and {g["name"]: g["actual"] for g in json.loads(report)["gates"]}["min_cycles"] == 1.0
    assert modelreg(capsys, "compare", "loner", "1.0.0", "1.1.0")[1]["versions"]["1.1.0"]["cycles"] == 1


def test_the_latest_attempt_of_a_cycle_is_its_evidence(registry, capsys):
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "1", "--max-failure-rate", "0")[0] == 0
    cycle = datetime.now(UTC) - timedelta(hours=1)
    for attempt, state in enumerate(("failed", "success")):
        registry.execute(
            "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at,"
            " model_id, version_id, role, state, recorded_at) VALUES (%s, 'loner.shadow', %s, 'loner',"
            " %s, 'SHADOW', %s, now() + %s * interval '1 second')",
            (f"run_{attempt}", cycle, shadow, state, attempt),
        )

    code, report, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")

    assert code == 0 and {g["name"]: g["actual"] for g in report["gates"]} == {
        "min_cycles": 1.0,
        "max_failure_rate": 0.0,
    }


# --- door 7: primary_at after an approved promotion -----------------------------------------------


def test_primary_at_after_an_approved_promotion_names_the_new_primary(registry, capsys, as_user):
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    registry.seed_cycles("loner", shadow, ["success"] * 12, hours_ago=3)
    as_user("alice", "approvals", "set", "loner", "on")
    as_user("uma", "promote", "loner", "1.1.0")
    as_user("bob", "approve", "loner")
    after = datetime.now(UTC)

    assert modelreg(capsys, "history", "loner", "--at", after.isoformat())[1]["primary"] == "1.1.0"
    with registry_connection(load_settings()) as conn:
        assert ModelRegistry(conn, person("x")).lifecycle.primary_at("loner", after) == "1.1.0"


# --- door 8: settings of models that do not exist, and text PostgreSQL cannot hold --------------


def test_gates_and_policies_of_a_model_that_does_not_exist_are_refused(registry, capsys):
    registry.add_version("loner", "1.0.0")
    for argv in (
        ["gates", "lonr", "--min-cycles", "1"],
        ["policy", "lonr", "--on-primary-error", "rollback"],
        ["checks", "lonr", "--require-description", "on"],
        ["approvals", "set", "lonr", "on"],
    ):
        code, _, err = modelreg(capsys, *argv)
        assert code == 1 and "unknown model 'lonr': it has no versions" in err, argv
    assert registry.query("SELECT count(*) FROM detection_model_quality_gates") == [(0,)]
    assert registry.query("SELECT count(*) FROM detection_model_healing_policies") == [(0,)]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("models/loner/versions/1.0.0/tags/set", {"tags": ["team=a\u0000b"]}, "body.tags.0"),
        ("models/loner/versions/1.0.0/tags/set", {"tags": ["team=\ud800"]}, "body.tags.0"),
        ("models/loner/versions/1.0.0/metadata", {"metadata": {"created_by": "x\u0000"}}, "metadata of loner@1.0.0"),
        ("models/loner/versions/1.0.0/metadata", {"metadata": {"notes": "\udfff"}}, "metadata of loner@1.0.0"),
        ("models/loner/versions", {"version": "2.0.0", "params": {"k": "a\u0000"}}, "params of loner@2.0.0"),
        ("models/loner/versions", {"version": "2.0.0", "params": {"\ud800": 1}}, "params of loner@2.0.0"),
        ("models/loner/versions", {"version": "1." + "0" * 40 + ".0"}, "body.version"),
        (f"models/{'m' * 65}/versions", {"version": "1.0.0"}, "model_id"),
        ("models/loner/versions/1.0.0/describe", {"description": "x\u0000"}, "body.description"),
        ("models/loner/approvals/settings", {"approvers": ["a\u0000"]}, "body.approvers.0"),
    ],
)
def test_text_postgresql_cannot_store_gets_a_4xx_naming_the_field_never_sql(registry, airflow_api, path, body, field):
    registry.add_version("loner", "1.0.0")
    before = registry.snapshot()

    answer = airflow_api.client.post(
        f"{API}/{path}",
        headers={**airflow_api.headers("alice"), "Content-Type": "application/json"},
        content=json.dumps(body).encode(),
    )

    detail = answer.json()["detail"]
    assert 400 <= answer.status_code < 500 and answer.status_code != 409, (answer.status_code, detail)
    assert field in detail, detail
    assert not any(word in detail for word in ("INSERT", "UPDATE", "SELECT", "LINE 1", "psycopg2")), detail
    assert registry.snapshot() == before


# --- door 9: a preview shows no id it cannot keep --------------------------------------------------


def test_a_preview_shows_no_id_and_the_change_gets_its_own(registry, airflow_api):
    registry.add_version("loner", "1.0.0")
    headers = airflow_api.headers("uma")

    preview = airflow_api.client.post(
        f"{API}/models/loner/versions", json={"version": "1.1.0", "preview": True}, headers=headers
    ).json()
    done = airflow_api.client.post(f"{API}/models/loner/versions", json={"version": "1.1.0"}, headers=headers).json()

    assert preview["result"]["id"] is None and preview["result"]["version"] == "1.1.0"
    assert (
        done["result"]["id"] == registry.query("SELECT id FROM detection_model_versions WHERE version = '1.1.0'")[0][0]
    )


def test_a_request_made_in_a_preview_shows_no_id(registry, airflow_api, as_user):
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    registry.seed_cycles("loner", shadow, ["success"] * 12, hours_ago=3)
    as_user("alice", "approvals", "set", "loner", "on")

    preview = airflow_api.client.post(
        f"{API}/models/loner/versions/1.1.0/promote", json={"preview": True}, headers=airflow_api.headers("uma")
    ).json()

    assert preview["result"]["request"]["id"] is None and preview["result"]["request"]["status"] == "PENDING"
    assert registry.query("SELECT count(*) FROM detection_model_approval_requests") == [(0,)]


# --- clearing only a model task leaves a final outcome (the cycle side of door 6) ---------------


def test_the_gates_count_a_cycle_run_for_real_once_however_often_it_runs(registry, capsys):
    registry.add_version("loner", "1.0.0")
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "2")[0] == 0
    for _ in range(3):
        assert run_cycle(CYCLE).state == "success"

    compared = modelreg(capsys, "compare", "loner", "1.0.0", "1.0.0", "--window", "720")[1]

    assert compared["versions"]["1.0.0"]["cycles"] == 1
    assert registry.query("SELECT count(*) FROM detection_model_task_outcomes WHERE task_id = 'loner.primary'") == [
        (3,)
    ]


def test_a_healing_window_or_cool_down_beyond_a_year_is_refused_naming_the_field(registry, capsys):
    registry.add_version("loner", "1.0.0")
    for option, field in (("--window", "window_hours"), ("--cooldown", "cooldown_minutes")):
        code, _, err = modelreg(capsys, "policy", "loner", option, "1e300")
        assert code == 1 and f"loner policy: {field} must be" in err and "a year" in err, err
    assert registry.query("SELECT count(*) FROM detection_model_healing_policies") == [(0,)]


def test_forcing_out_a_backend_that_active_versions_call_needs_the_permission_and_a_reason(registry, airflow_api):
    registry.add_version("source", "1.0.0", params={"backend": "gpu-a"})
    registry.execute("INSERT INTO detection_model_backends (name, base_url) VALUES ('gpu-a', 'http://127.0.0.1:9')")

    def remove(user: str, body: dict) -> tuple[int, str]:
        answer = airflow_api.client.post(f"{API}/backends/gpu-a/remove", json=body, headers=airflow_api.headers(user))
        return answer.status_code, answer.json()["detail"] if answer.status_code != 200 else ""

    assert remove("uma", {"force": True, "reason": "x"})[0] == 403
    status, detail = remove("alice", {"force": True})
    assert status == 409 and "--force needs --reason" in detail
    assert registry.query("SELECT count(*) FROM detection_model_backends") == [(1,)]
    assert remove("alice", {"force": True, "reason": "gpu-a is being retired"}) == (200, "")
