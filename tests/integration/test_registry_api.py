"""The registry API inside Airflow's API app: access, every route, previews, and the CLI's errors.

Airflow's own ``create_app`` mounts the plugin from the package's ``airflow.plugins`` entry point
(the session's ``airflow_api``);
requests carry a real login (a Bearer token from ``POST /auth/token``, or the UI's ``_token``
cookie) of SimpleAuthManager users with roles (alice admin, olga op: they may force and govern;
uma, bob, carol users: they may request and approve; victor viewer); the registry is the test
PostgreSQL and cycles run as real DAG runs. ``modelreg`` without a login (direct database mode,
a service account) prints the same line for the same refusal.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from registry_helpers import modelreg, person, run_cycle

from models_core.cycle.dag_factory import build_cycle_dag
from models_core.registry.actors import SYSTEM
from models_core.registry.cli import main as modelreg_main
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.preview import PreviewCommitError, preview_change
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries

API = "/model-registry/api"
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)

#: (method, path) of every route, with a body for the changes.
CHANGES = [
    (f"{API}/models/source/versions", {"version": "3.0.0", "params": {"n": 2}}),
    (f"{API}/models/source/versions/1.1.0/activate", {"role": "CHALLENGER"}),
    (f"{API}/models/source/versions/1.1.0/deactivate", {}),
    (f"{API}/models/source/versions/1.1.0/archive", {}),
    (f"{API}/models/source/versions/1.1.0/promote", {"force": True, "reason": "r"}),
    (f"{API}/models/source/rollback", {}),
    (f"{API}/models/source/gates", {"min_cycles": 1}),
    (f"{API}/models/sink/dependencies/add", {"upstream": "source"}),
    (f"{API}/models/sink/dependencies/remove", {"upstream": "middle"}),
    (f"{API}/models/source/versions/1.1.0/tags/set", {"tags": ["validated=true"]}),
    (f"{API}/models/source/versions/1.1.0/tags/remove", {"keys": ["team"]}),
    (f"{API}/models/source/versions/1.1.0/describe", {"description": "five per input"}),
    (f"{API}/models/source/versions/1.1.0/metadata", {"metadata": {"created_by": "ci"}}),
    (f"{API}/models/source/stage-checks", {"require_description": True}),
    (f"{API}/models/source/approvals/settings", {"required": True, "approvers": ["uma", "bob"], "min_approvals": 1}),
    (f"{API}/models/middle/requests/approve", {"version": "2.0.0"}),
    (f"{API}/models/middle/requests/reject", {"version": "2.0.0", "reason": "not yet"}),
    (f"{API}/models/loner/versions/1.0.0/reactivate", {"reason": "fixed"}),
    (f"{API}/models/source/healing-policy", {"on_primary_error": "rollback"}),
    (f"{API}/backends", {"name": "gpu-new", "url": "http://127.0.0.1:9"}),
    (f"{API}/backends/gpu-old/remove", {"reason": "decommissioned"}),
]
READS = [
    f"{API}/models",
    f"{API}/drift?model=source",
    f"{API}/models/source",
    f"{API}/models/source/metrics",
    f"{API}/models/source/primary-at?at=2026-01-01T00:00:00Z",
    f"{API}/plan",
    f"{API}/outputs?version_id=1&cycle=2026-01-01T00:00:00Z",
    "/model-registry/static/registry-page.js",
    f"{API}/models/source/versions/1.1.0/metadata",
    f"{API}/models/source/versions/1.1.0/check?action=activate",
    f"{API}/models/source/stage-checks",
    f"{API}/models/source/approvals",
    f"{API}/models/source/healing-policy",
    f"{API}/backends",
    f"{API}/whoami",
]


@pytest.fixture
def client(airflow_api):
    """Airflow's API app in-process (the session's), with the registry plugin."""
    return airflow_api.client


@pytest.fixture
def bearer(airflow_api):
    """Authorization headers per user, from a real login."""
    return {user: airflow_api.headers(user) for user in ("alice", "olga", "uma", "bob", "carol", "victor")}


def modelreg_error(capsys, *argv: str) -> str:
    """The one line ``modelreg`` prints on stderr for a failing command (direct database mode)."""
    code, _, err = modelreg(capsys, *argv)
    assert code == 1, err
    return err.strip()


def modelreg_json(capsys, *argv: str) -> object:
    """What ``modelreg --json`` prints for a command that succeeds (direct database mode)."""
    code, answer, err = modelreg(capsys, *argv)
    assert code == 0, err
    return answer


def versions_state(registry, model_id: str) -> list[tuple]:
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = %s ORDER BY id", (model_id,)
    )


def transitions(registry) -> list[tuple]:
    return registry.query(
        "SELECT model_id, version, action, actor, reason FROM detection_model_transitions"
        " WHERE source = 'api' ORDER BY id"
    )


# ------------------------------------------------------------------ access


def test_anonymous_callers_get_401_on_every_route(client, chain):
    for path in READS:
        assert client.get(path).status_code == 401, path
    for path, body in CHANGES:
        assert client.post(path, json=body).status_code == 401, path


def test_a_viewer_reads_but_every_change_is_403_and_changes_nothing(client, bearer, registry, chain):
    before = registry.query("SELECT id, status, role FROM detection_model_versions ORDER BY id")
    for path in READS[:3]:
        assert client.get(path, headers=bearer["victor"]).status_code == 200, path
    for path, body in CHANGES:
        for preview in (True, False):
            answer = client.post(path, json={**body, "preview": preview}, headers=bearer["victor"])
            assert answer.status_code == 403, (path, answer.text)
    assert registry.query("SELECT id, status, role FROM detection_model_versions ORDER BY id") == before
    assert transitions(registry) == []


def test_the_ui_login_cookie_works_like_a_bearer_token(client, airflow_api, chain):
    client.cookies.set("_token", airflow_api.token("uma"))
    try:
        assert client.get(f"{API}/models").status_code == 200
        answer = client.post(f"{API}/models/source/versions/1.1.0/deactivate", json={"reason": "cookie"})
        assert answer.status_code == 200, answer.text
    finally:
        client.cookies.clear()


def test_a_change_is_refused_unless_its_body_is_json(client, bearer, registry, chain):
    path = f"{API}/models/source/versions/1.1.0/deactivate"
    as_form = client.post(path, data={"reason": "csrf"}, headers=bearer["alice"])
    as_text = client.post(
        path, content=json.dumps({"reason": "csrf"}), headers={**bearer["alice"], "Content-Type": "text/plain"}
    )
    untyped = client.post(path, content=json.dumps({"reason": "csrf"}), headers=bearer["alice"])

    assert [a.status_code for a in (as_form, as_text, untyped)] == [415, 415, 415]
    assert untyped.json()["detail"] == "changes are accepted as application/json only, not no Content-Type"
    assert versions_state(registry, "source")[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_the_plugin_is_registered_with_its_api_and_pages(client, bearer):
    plugins = client.get("/api/v2/plugins", headers=bearer["victor"]).json()["plugins"]

    (plugin,) = [p for p in plugins if p["name"] == "model_registry"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/model-registry"
    assert {(app["name"], app["destination"]) for app in plugin["react_apps"]} == {
        ("Model registry", "nav"),
        ("Model outputs", "task_instance"),
    }
    for app in plugin["react_apps"]:
        module = client.get(f"/{app['bundle_url']}", headers=bearer["victor"])
        assert module.status_code == 200 and "globalThis.AirflowPlugin" in module.text
        assert module.headers["content-type"].startswith("text/javascript")


def test_only_the_page_files_are_served(client, bearer):
    for name in ("queries.sql", "..%2Fqueries.sql", "app.py", "nothing.js"):
        assert client.get(f"/model-registry/static/{name}", headers=bearer["victor"]).status_code == 404, name


# ------------------------------------------------------------------ reading


@pytest.fixture
def cycles(chain):
    """Three real cycles of source (PRIMARY, SHADOW, CHALLENGER) -> middle -> sink."""
    runs = [run_cycle(BASE + timedelta(minutes=5 * n)) for n in range(3)]
    assert all(run.state == "success" for run in runs)
    return runs


def metric_mean(registry, version_id: int, key: str) -> float:
    return registry.query(
        "SELECT avg(metric_value) FROM detection_model_metrics WHERE version_id = %s AND metric_key = %s",
        (version_id, key),
    )[0][0]


def test_models_show_primary_challengers_last_cycle_and_evaluation(client, bearer, registry, chain, cycles):
    answer = client.get(f"{API}/models", params={"window_hours": 24}, headers=bearer["victor"])

    assert answer.status_code == 200, answer.text
    models = {m["model_id"]: m for m in answer.json()["models"]}
    assert sorted(models) == ["middle", "sink", "source"]
    source = models["source"]
    assert source["primary"]["version"] == "1.0.0" and source["versions"] == 3
    assert source["primary"]["cycles"] == 3 and source["primary"]["failed"] == 0
    assert source["primary"]["metrics"] == {"made": 3.0}
    assert source["primary"]["last"]["state"] == "success"
    assert source["primary"]["last"]["run_id"] == cycles[-1].run_id
    assert source["primary"]["last"]["task_id"] == "source.primary"
    challengers = {c["version"]: c for c in source["challengers"]}
    assert {v: c["role"] for v, c in challengers.items()} == {"1.1.0": "SHADOW", "2.0.0": "CHALLENGER"}
    shadow = challengers["1.1.0"]["evaluation"]
    assert shadow["coverage"] == pytest.approx(metric_mean(registry, chain["source_shadow"], "eval_coverage"))
    assert shadow["agreement"] == metric_mean(registry, chain["source_shadow"], "eval_agreement")
    assert shadow["score_difference"] == metric_mean(registry, chain["source_shadow"], "eval_score_mean_abs_diff")
    assert shadow["duration_ratio"] == pytest.approx(
        metric_mean(registry, chain["source_shadow"], "eval_duration_ratio")
    )
    assert models["sink"]["upstream"] == ["middle"]


def test_drift_of_a_pages_models_flags_what_left_the_band_for_those_models_only(
    client, bearer, registry, chain, cycles
):
    # source's PRIMARY made 3 per cycle; a day earlier, the same cycles made 30 (a drift), and
    # sink's metrics stay as they were (none flagged)
    registry.execute(
        "INSERT INTO detection_model_metrics (cycle_started_at, model_id, version_id, role, metric_key, metric_value)"
        " SELECT cycle_started_at - interval '1 day', model_id, version_id, role, metric_key, metric_value * 10"
        " FROM detection_model_metrics WHERE version_id = %s AND metric_key = 'made'",
        (chain["source"],),
    )
    window = {"window_hours": 24}

    answer = client.get(f"{API}/drift", params={**window, "model": ["sink", "source"]}, headers=bearer["victor"])

    assert answer.status_code == 200, answer.text
    drift = answer.json()
    assert drift["band"] == load_settings().drift_band and drift["not_computed"] is None
    ((finding),) = drift["findings"]
    assert (finding["label"], finding["metric"], finding["version_id"]) == (
        "source@1.0.0[PRIMARY]",
        "made",
        chain["source"],
    )
    assert (finding["now"], finding["previous_day"], finding["flagged"]) == (
        3.0,
        30.0,
        ["previous_day", "previous_7_days"],
    )
    only_sink = client.get(f"{API}/drift", params={**window, "model": "sink"}, headers=bearer["victor"]).json()
    assert only_sink["findings"] == []
    week = client.get(f"{API}/drift", params={"window_hours": 48, "model": "source"}, headers=bearer["victor"]).json()
    assert week["findings"] == [] and "24 hours" in week["not_computed"]
    assert client.get(f"{API}/drift", headers=bearer["victor"]).status_code == 422
    too_many = client.get(f"{API}/drift", params={"model": [f"m{n}" for n in range(501)]}, headers=bearer["victor"])
    assert too_many.status_code == 422 and "model" in too_many.text
    too_long = client.get(f"{API}/drift", params={"model": ["source", "m" * 65]}, headers=bearer["victor"])
    assert too_long.status_code == 422 and "query.model.1" in too_long.text, too_long.text
    nul = client.get(f"{API}/drift", params={"model": "a\x00b"}, headers=bearer["victor"])
    assert nul.status_code == 422 and "query.model.0" in nul.text, nul.text


def test_model_page_is_modelreg_show_and_history_with_window_figures(client, bearer, registry, chain, cycles, capsys):
    answer = client.get(f"{API}/models/source", params={"window_hours": 24}, headers=bearer["victor"]).json()

    capsys.readouterr()
    assert modelreg_main(["--json", "show", "source"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in answer["versions"]] == ["2.0.0", "1.1.0", "1.0.0"]
    for key in ("versions", "gates", "upstream", "downstream"):
        trimmed = [{k: v[k] for k in shown["versions"][0]} for v in answer[key]] if key == "versions" else answer[key]
        assert trimmed == shown[key], key
    assert modelreg_main(["--json", "history", "source"]) == 0
    at_parsed = [{**event, "at": datetime.fromisoformat(event["at"])} for event in answer["history"]]
    assert at_parsed == [
        {**event, "at": datetime.fromisoformat(event["at"])} for event in json.loads(capsys.readouterr().out)
    ]
    by_version = {v["version"]: v for v in answer["versions"]}
    assert by_version["2.0.0"]["window"]["cycles"] == 3
    assert by_version["2.0.0"]["last"]["task_id"] == "source.challenger_2_0_0"


def test_metric_trends_give_each_versions_values_in_time_order(client, bearer, chain, cycles):
    # 6 hours in 120 buckets: 3 minutes each, so the cycles 5 minutes apart stay apart.
    trends = client.get(f"{API}/models/source/metrics", params={"window_hours": 6}, headers=bearer["victor"]).json()

    made = {line["version"]: line["points"] for line in trends["metrics"]["made"]}
    assert sorted(made) == ["1.0.0", "1.1.0", "2.0.0"]
    assert [value for _, value in made["1.1.0"]] == [5.0, 5.0, 5.0]  # params {"n": 5}
    assert [datetime.fromisoformat(at) for at, _ in made["1.0.0"]] == [BASE + timedelta(minutes=m) for m in (0, 5, 10)]
    assert "eval_coverage" in trends["metrics"] and "eval_coverage" not in {
        line["version"] for line in trends["metrics"]["eval_coverage"]
    }


def test_the_trail_postgresql_writes_has_the_values_modelreg_history_prints(client, bearer, registry, capsys):
    """Both routes pass the audit trail on as PostgreSQL wrote its rows: the values are those
    ``modelreg history`` prints from Python objects, JSON columns and any text included."""
    registry.add_version("trail", "1.0.0")
    registry.add_version("trail", "2.0.0", "SHADOW")
    changes = [
        ("versions/2.0.0/promote", {"force": True, "reason": 'Überprüft ✓ "zitiert" \\ \n zweite Zeile'}),
        ("gates", {"min_cycles": 3, "metric_thresholds": {"score": {"min": 0.25}}, "reason": "tighter"}),
        ("versions/1.0.0/tags/set", {"tags": ["validated=true"]}),
    ]
    for path, body in changes:
        assert client.post(f"{API}/models/trail/{path}", json=body, headers=bearer["alice"]).status_code == 200

    capsys.readouterr()
    assert modelreg_main(["--json", "history", "trail"]) == 0
    printed = [{**event, "at": datetime.fromisoformat(event["at"])} for event in json.loads(capsys.readouterr().out)]
    assert any(event["gates"] for event in printed) and any(event["details"] for event in printed)
    assert any("Überprüft" in (event["reason"] or "") for event in printed)
    page = client.get(f"{API}/models/trail", headers=bearer["victor"]).json()
    history = client.get(f"{API}/models/trail/history", headers=bearer["victor"]).json()
    assert history["model_id"] == "trail"
    for trail in (page["history"], history["history"]):
        assert [{**event, "at": datetime.fromisoformat(event["at"])} for event in trail] == printed


def test_primary_at_a_time_replays_the_history(client, bearer, registry):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "2.0.0", "SHADOW")
    between = datetime.now(UTC)
    assert (
        client.post(
            f"{API}/models/loner/versions/2.0.0/promote",
            json={"force": True, "reason": "upgrade"},
            headers=bearer["alice"],
        ).status_code
        == 200
    )

    def primary_at(at: datetime) -> str | None:
        answer = client.get(f"{API}/models/loner/primary-at", params={"at": at.isoformat()}, headers=bearer["victor"])
        return answer.json()["primary"]

    assert primary_at(between) == "1.0.0"
    assert primary_at(datetime.now(UTC)) == "2.0.0"
    assert primary_at(datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_outputs_of_one_version_in_one_cycle(client, bearer, registry, chain, cycles):
    cycle = BASE + timedelta(minutes=10)
    stored = registry.outputs(chain["source_shadow"], cycle)

    answer = client.get(
        f"{API}/outputs",
        params={"version_id": chain["source_shadow"], "cycle": cycle.isoformat(), "limit": 2},
        headers=bearer["victor"],
    ).json()

    assert (answer["model_id"], answer["version"], answer["role"]) == ("source", "1.1.0", "SHADOW")
    assert answer["now"] == "ACTIVE SHADOW"
    assert answer["output_count"] == len(stored) == 5
    assert [[r["input_ref"], r["outputs"]] for r in answer["rows"]] == [list(row) for row in stored[:2]]
    assert answer["metrics"]["made"] == 5.0 and answer["evaluation"]["agreement"] == 1.0
    primary = client.get(
        f"{API}/outputs", params={"version_id": chain["source"], "cycle": cycle.isoformat()}, headers=bearer["victor"]
    ).json()
    assert primary["evaluation"] is None and primary["output_count"] == 3
    missing = client.get(
        f"{API}/outputs", params={"version_id": 999999, "cycle": cycle.isoformat()}, headers=bearer["victor"]
    )
    assert missing.status_code == 404 and missing.json()["detail"] == "modelreg rows: no version has id 999999"


def test_plan_route_is_modelreg_plan(client, bearer, registry, capsys):
    registry.add_version("source", "1.0.0")
    build_cycle_dag()  # the DAG processor's parse, which caches the plan
    registry.add_version("loner", "1.0.0")

    answer = client.get(f"{API}/plan", headers=bearer["victor"]).json()

    capsys.readouterr()
    assert modelreg_main(["--json", "plan"]) == 0
    assert answer == json.loads(capsys.readouterr().out)
    assert answer["tasks_added"] == ["loner.primary"]


def test_bad_input_is_refused_naming_the_field(client, bearer, chain):
    window = client.get(f"{API}/models", params={"window_hours": -1}, headers=bearer["victor"])
    extra = client.post(f"{API}/models/source/rollback", json={"colour": "red"}, headers=bearer["alice"])
    role = client.post(
        f"{API}/models/source/versions/1.1.0/activate", json={"role": "PRIMARY"}, headers=bearer["alice"]
    )

    assert window.status_code == 422 and window.json()["detail"].startswith("query.window_hours: ")
    assert extra.status_code == 422 and extra.json()["detail"] == "body.colour: Extra inputs are not permitted"
    nothing = client.post(f"{API}/models/source/gates", json={"preview": True}, headers=bearer["alice"])
    assert role.status_code == 422 and role.json()["detail"].startswith("body.role: Input should be 'SHADOW' or")
    assert nothing.status_code == 422 and nothing.json()["detail"] == "body: name at least one gate to change"


# ------------------------------------------------------------------ changing


def test_a_promotion_refused_by_its_gates_answers_the_cli_line_and_every_gate(client, bearer, registry, chain, capsys):
    for preview in (True, False):
        answer = client.post(
            f"{API}/models/source/versions/1.1.0/promote", json={"preview": preview}, headers=bearer["alice"]
        )

        assert answer.status_code == 409
        assert answer.json()["detail"] == modelreg_error(capsys, "promote", "source", "1.1.0")
        assert {g["name"]: (g["threshold"], g["actual"], g["passed"]) for g in answer.json()["gates"]} == {
            "params_schema": ("params valid against Source.params_schema", "valid", True),  # the stage checks too
            "min_cycles": (">= 12", 0.0, False),
            "max_failure_rate": ("<= 0.05", None, False),
        }
    assert versions_state(registry, "source")[:2] == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW")]
    assert transitions(registry) == []


def test_a_forced_promotion_preview_shows_gates_and_plan_then_changes_nothing(client, bearer, registry, chain):
    build_cycle_dag()
    before = versions_state(registry, "source")

    answer = client.post(
        f"{API}/models/source/versions/1.1.0/promote",
        json={"preview": True, "force": True, "reason": "incident 42"},
        headers=bearer["alice"],
    )

    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["preview"] is True and preview["result"]["forced"] is True
    assert preview["result"]["previous"] == "1.0.0" and preview["result"]["previous_now"] == "ARCHIVED"
    assert [g["name"] for g in preview["result"]["gates"]] == ["min_cycles", "max_failure_rate"]
    assert preview["plan"] == {
        "tasks_added": [],
        "tasks_removed": ["source.shadow_1_1_0"],
        "edges_added": [],
        "edges_removed": ["source.primary >> source.shadow_1_1_0"],
    }
    assert versions_state(registry, "source") == before and transitions(registry) == []
    confirmed = client.post(
        f"{API}/models/source/versions/1.1.0/promote",
        json={"force": True, "reason": "incident 42"},
        headers=bearer["alice"],
    )
    assert confirmed.status_code == 200, "the preview released its lock"


def test_a_confirmed_promotion_is_recorded_as_the_airflow_user_with_the_next_parse(client, bearer, registry, chain):
    build_cycle_dag()

    answer = client.post(
        f"{API}/models/source/versions/1.1.0/promote",
        json={"force": True, "reason": "incident 42"},
        headers=bearer["olga"],
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["basis"] == "forced"
    assert answer.json()["next_parse"]["tasks_removed"] == ["source.shadow_1_1_0"]
    assert versions_state(registry, "source")[:2] == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    assert transitions(registry) == [
        ("source", "1.0.0", "promote", "olga", "incident 42"),
        ("source", "1.1.0", "promote", "olga", "incident 42"),
    ]
    gates = registry.query("SELECT gates FROM detection_model_transitions WHERE version = '1.1.0' AND source = 'api'")[
        0
    ][0]
    assert {g["name"]: g["passed"] for g in gates} == {
        "params_schema": True,
        "min_cycles": False,
        "max_failure_rate": False,
    }  # stage checks, then gates


def test_a_user_who_may_not_force_gets_403_naming_the_permission_and_nothing_changes(client, bearer, registry, chain):
    before = registry.snapshot()
    promoted = client.post(
        f"{API}/models/source/versions/1.1.0/promote",
        json={"force": True, "reason": "incident 42"},
        headers=bearer["uma"],
    )
    retired = [
        client.post(
            f"{API}/models/source/versions/1.0.0/{action}",
            json={"force": True, "reason": "make room"},
            headers=bearer["uma"],
        )
        for action in ("deactivate", "archive")
    ]

    assert promoted.status_code == 403, promoted.text
    assert promoted.json()["detail"].startswith(
        "modelreg promote: uma may not force promote of source@1.1.0: it needs the force permission ("
    )
    for action, answer in zip(("deactivate", "archive"), retired):
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"].startswith(
            f"modelreg {action}: uma may not force {action} of source@1.0.0: it needs the force permission"
        )
    assert registry.snapshot()["detection_model_versions"] == before["detection_model_versions"]
    assert transitions(registry) == []


def test_every_change_route_carries_out_its_command_as_the_user(client, bearer, registry, chain):
    def post(path: str, body: dict) -> dict:
        answer = client.post(f"{API}/models/{path}", json=body, headers=bearer["alice"])
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    registered = post("source/versions", {"version": "3.0.0", "params": {"n": 4}, "description": "more"})["result"]
    post("source/versions/3.0.0/activate", {"role": "CHALLENGER", "reason": "try it"})
    post("source/versions/2.0.0/deactivate", {"reason": "stale"})
    post("source/versions/2.0.0/archive", {})
    post("source/versions/3.0.0/promote", {"force": True, "reason": "go", "keep_previous_as_shadow": True})
    rolled = post("source/rollback", {"reason": "3.0.0 misbehaves"})["result"]
    rolled_to = post("source/rollback", {"to": "3.0.0", "reason": "it was the data"})["result"]
    post("source/rollback", {"to": "1.0.0", "reason": "back again"})
    gates = post("source/gates", {"min_cycles": 2, "metric_thresholds": {"made": {"max": 10}}})["result"]
    post("loner/versions", {"version": "1.0.0"})
    post("sink/dependencies/remove", {"upstream": "middle"})
    post("sink/dependencies/add", {"upstream": "source"})

    assert registered == {
        "model_id": "source",
        "version": "3.0.0",
        "status": "DRAFT",
        "id": registry.query("SELECT id FROM detection_model_versions WHERE version = '3.0.0'")[0][0],
    }
    assert rolled["promoted"] == "1.0.0" and rolled["previous"] == "3.0.0"
    assert rolled_to["promoted"] == "3.0.0" and rolled_to["previous"] == "1.0.0"
    assert (gates["model_id"], gates["guard"], gates["applied"]) == ("source", "gates", True)
    assert gates["values"]["min_cycles"] == 2 and gates["values"]["metric_thresholds"] == {"made": {"max": 10.0}}
    assert versions_state(registry, "source") == [
        ("1.0.0", "ACTIVE", "PRIMARY"),
        ("1.1.0", "ACTIVE", "SHADOW"),
        ("2.0.0", "ARCHIVED", "CHALLENGER"),
        ("3.0.0", "INACTIVE", "PRIMARY"),
    ]
    assert registry.query("SELECT description, params FROM detection_model_versions WHERE version = '3.0.0'") == [
        ("more", {"n": 4})
    ]
    assert registry.query("SELECT model_id, depends_on FROM detection_model_dependencies") == [("sink", "source")]
    assert {actor for _, _, _, actor, _ in transitions(registry)} == {"alice"}
    assert [action for _, _, action, _, _ in transitions(registry)] == [
        "register",
        "activate",
        "deactivate",
        "archive",
        "promote",
        "promote",
        "rollback",
        "rollback",
        "rollback",
        "rollback",
        "rollback",
        "rollback",
        "gates",
        "register",
        "deps_remove",
        "deps_add",
    ]


def test_refusals_carry_the_line_the_cli_prints(client, bearer, registry, chain, capsys):
    def refused(path: str, body: dict, *cli: str, status: int = 409) -> None:
        answer = client.post(f"{API}/models/{path}", json=body, headers=bearer["alice"])
        assert answer.status_code == status, answer.text
        assert answer.json()["detail"] == modelreg_error(capsys, *cli)

    refused("source/versions/9.9.9/activate", {"role": "SHADOW"}, "activate", "source", "9.9.9", "--role", "SHADOW")
    refused("source/versions/1.0.0/deactivate", {}, "deactivate", "source", "1.0.0")
    refused("source/versions/1.1.0/promote", {"force": True}, "promote", "source", "1.1.0", "--force")
    refused("source/dependencies/add", {"upstream": "sink"}, "deps", "add", "source", "sink")
    refused("source/versions", {"version": "1.10"}, "register", "source", "1.10")
    refused("loner/rollback", {}, "rollback", "loner")
    missing = client.get(f"{API}/models/nobody", headers=bearer["victor"])
    assert missing.status_code == 404 and missing.json()["detail"] == modelreg_error(capsys, "show", "nobody")
    assert transitions(registry) == []


def test_a_change_while_another_holds_the_model_is_refused_and_leaves_nothing(client, bearer, registry, chain, capsys):
    settings = load_settings()
    with registry_connection(settings) as holder:
        with holder.cursor() as cur:
            cur.execute(queries("registry/session.sql")["try_lock_model"], {"model_id": "source"})
            line = modelreg_error(capsys, "promote", "source", "1.1.0", "--force", "--reason", "race")
            for preview in (True, False):
                answer = client.post(
                    f"{API}/models/source/versions/1.1.0/promote",
                    json={"force": True, "reason": "race", "preview": preview},
                    headers=bearer["alice"],
                )
                assert answer.status_code == 409 and answer.json()["detail"] == line
        holder.rollback()
    assert "another registry change to source is in progress" in line
    assert versions_state(registry, "source")[:2] == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW")]
    assert transitions(registry) == []


def test_a_request_slower_than_its_statement_bound_ends_in_a_503_and_frees_its_connection(
    client, bearer, registry, chain, monkeypatch, capsys
):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__REQUEST_STATEMENT_TIMEOUT_MS", "300")
    settings = load_settings()
    with registry_connection(settings) as holder:
        with holder.cursor() as cur:  # a read that cannot finish: the table it reads is locked
            cur.execute("LOCK TABLE detection_model_versions, detection_model_metrics IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            for path in ("/models/source", "/models?window_hours=8760", "/drift?model=source"):
                answer = client.get(f"{API}{path}", headers=bearer["victor"])
                assert answer.status_code == 503, (path, answer.text)
                assert "statement timeout" in answer.json()["detail"], path
            for argv in (["show", "source"], ["list"]):  # the CLI's reads, on a connection of their own
                code, _, err = modelreg(capsys, *argv)
                assert code == 1 and "statement timeout" in err, (argv, err)
            assert time.monotonic() - started < 8
        holder.rollback()
    assert client.get(f"{API}/models/source", headers=bearer["victor"]).status_code == 200
    with registry_connection(settings) as conn, conn.cursor() as cur:  # nothing left waiting on the server
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name LIKE 'modelreg:%' AND wait_event_type = 'Lock'"
        )
        assert cur.fetchone()[0] == 0


def test_only_who_may_manage_webhooks_reads_their_whole_url(client, bearer, registry):
    hook = {"name": "chat", "url": "https://chat.example.com:8443/hooks/T0/B0/s3cr3tpath?token=t0k3n"}
    answer = client.post(f"{API}/webhooks", json={**hook, "secret_env": "WEBHOOK_SECRET_CHAT"}, headers=bearer["alice"])
    assert answer.status_code == 200, answer.text
    seen = {
        user: client.get(f"{API}/webhooks", headers=bearer[user]).json()["webhooks"][0]["url"]
        for user in ("alice", "olga", "uma", "victor")
    }
    assert seen["alice"] == hook["url"]
    assert {seen[user] for user in ("uma", "victor")} == {"https://chat.example.com:8443/…"}
    assert "s3cr3t" not in json.dumps(client.get(f"{API}/webhooks", headers=bearer["victor"]).json())


def test_a_read_cannot_write_and_leaves_its_pooled_connection_writable_for_a_change(client, bearer, registry, chain):
    from models_core.registry.errors import RegistryRefusal, command_connection, read_connection

    for _ in range(2):  # the second time on the connection the first gave back to the pool
        with pytest.raises(RegistryRefusal, match="read-only transaction") as refused:
            with read_connection("list") as (conn, _settings), conn.cursor() as cur:
                cur.execute("UPDATE detection_model_versions SET description = 'written by a read'")
        assert refused.value.status_code == 503
        with read_connection("list") as (conn, _settings), conn.cursor() as cur:
            cur.execute("SHOW default_transaction_read_only")
            assert cur.fetchone() == ("on",) and conn.autocommit
        with command_connection("describe") as (conn, _settings), conn.cursor() as cur:
            cur.execute("SHOW default_transaction_read_only")
            assert cur.fetchone() == ("off",) and not conn.autocommit
            conn.rollback()
    answer = client.post(
        f"{API}/models/source/versions/1.1.0/describe", json={"description": "after reads"}, headers=bearer["alice"]
    )
    assert answer.status_code == 200, answer.text
    assert registry.query("SELECT count(*) FROM detection_model_versions WHERE description = 'written by a read'") == [
        (0,)
    ]


def test_a_preview_of_every_change_leaves_the_registry_as_it_was(client, bearer, registry, chain):
    assert (
        client.post(
            f"{API}/models/source/versions/2.0.0/promote",
            json={"force": True, "reason": "history"},
            headers=bearer["alice"],
        ).status_code
        == 200
    )  # so that a rollback has somewhere to go
    assert (
        client.post(
            f"{API}/models/source/versions/1.1.0/tags/set", json={"tags": ["team=ais"]}, headers=bearer["alice"]
        ).status_code
        == 200
    )  # a tag to remove
    registry.add_version("middle", "2.0.0", "SHADOW")  # a request for olga's promotion to approve or reject
    assert (
        client.post(
            f"{API}/models/middle/approvals/settings", json={"required": True}, headers=bearer["alice"]
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"{API}/models/middle/versions/2.0.0/promote", json={"force": True, "reason": "try"}, headers=bearer["olga"]
        ).json()["result"]["request"]["status"]
        == "PENDING"
    )
    registry.add_version("loner", "1.0.0")
    with registry_connection(load_settings()) as conn:  # a version in ERROR to reactivate
        assert ModelRegistry(conn, SYSTEM).lifecycle.mark_error("loner", "1.0.0", "failed 3 cycles") is not None
    assert (
        client.post(
            f"{API}/backends", json={"name": "gpu-old", "url": "http://127.0.0.1:9"}, headers=bearer["alice"]
        ).status_code
        == 200
    )  # a backend to remove

    def snapshot() -> list:
        return [
            registry.query(f"SELECT * FROM {table} ORDER BY 1")
            for table in (  # noqa: S608 - fixed names
                "detection_model_versions",
                "detection_model_dependencies",
                "detection_model_transitions",
                "detection_model_quality_gates",
                "detection_model_stage_checks",
                "detection_model_approval_settings",
                "detection_model_approval_requests",
                "detection_model_approval_votes",
                "detection_model_healing_policies",
                "detection_model_backends",
                "detection_model_backend_events",
            )
        ]

    before = snapshot()
    for path, body in CHANGES:
        answer = client.post(path, json={**body, "preview": True}, headers=bearer["alice"])
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["preview"] is True and "plan" in answer.json()
    assert snapshot() == before
    added = client.post(
        f"{API}/models/sink/dependencies/add", json={"upstream": "source", "preview": True}, headers=bearer["alice"]
    ).json()
    assert added["plan"]["edges_added"] == ["source.primary >> sink.primary"]


def test_a_preview_cannot_commit_even_when_the_change_asks_to(registry, chain):
    def deactivate_and_commit(model_registry: ModelRegistry) -> None:
        model_registry.lifecycle.deactivate("source", "1.1.0", "sneaky")
        model_registry.conn.commit()

    with registry_connection(load_settings()) as conn:
        with pytest.raises(PreviewCommitError):
            preview_change(conn, load_settings(), person("tester"), deactivate_and_commit)

    assert versions_state(registry, "source")[1] == ("1.1.0", "ACTIVE", "SHADOW")
    assert transitions(registry) == []


def test_a_preview_with_a_cyclic_registry_reports_the_cycle_instead_of_refusing(client, bearer, registry, chain):
    registry.add_dependency("source", "sink")  # plain SQL: the lifecycle API would refuse it

    answer = client.post(
        f"{API}/models/source/dependencies/remove", json={"upstream": "sink", "preview": True}, headers=bearer["alice"]
    )

    assert answer.status_code == 200, answer.text
    assert "dependency cycle among detection models ['middle', 'sink', 'source']" in answer.json()["plan"]["plan_error"]


def test_model_ids_in_paths_are_values_never_sql(client, bearer, registry, chain):
    hostile = "x'; DROP TABLE detection_model_versions; --"
    answer = client.get(f"{API}/models/{quote(hostile, safe='')}", headers=bearer["victor"])

    assert answer.status_code == 404
    assert registry.query("SELECT count(*) FROM detection_model_versions") == [(5,)]


# ------------------------------------------------------------------ tags, metadata, checks, approvals, ERROR, backends


def post_ok(client, headers, path: str, body: dict) -> dict:
    answer = client.post(f"{API}/models/{path}", json=body, headers=headers)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def test_tags_are_set_and_removed_as_the_user_audited_and_filter_the_models(client, bearer, registry, chain, capsys):
    alice = bearer["alice"]
    preview = post_ok(client, alice, "source/versions/1.1.0/tags/set", {"tags": ["validated=true"], "preview": True})
    assert preview["result"] == {"validated": "true"} and transitions(registry) == []

    assert post_ok(
        client,
        alice,
        "source/versions/1.1.0/tags/set",
        {"tags": ["validated=true", "team=ais"], "reason": "signed off"},
    )["result"] == {"validated": "true", "team": "ais"}
    assert post_ok(client, alice, "source/versions/1.1.0/tags/remove", {"keys": ["team"]})["result"] == {
        "validated": "true"
    }

    assert registry.query("SELECT tags FROM detection_model_versions WHERE id = %s", (chain["source_shadow"],)) == [
        ({"validated": "true"},)
    ]
    assert transitions(registry) == [
        ("source", "1.1.0", "tag", "alice", "signed off"),
        ("source", "1.1.0", "untag", "alice", None),
    ]
    listed = client.get(f"{API}/models", params={"tag": "validated=true"}, headers=bearer["victor"]).json()["models"]
    assert (
        [(m["model_id"], m["tagged"]) for m in listed]
        == [(m["model_id"], m["tagged"]) for m in modelreg_json(capsys, "list", "--tag", "validated=true")]
        == [("source", ["1.1.0"])]
    )
    shown = client.get(f"{API}/models/source", headers=bearer["victor"]).json()
    assert {v["version"]: v["tags"] for v in shown["versions"]}["1.1.0"] == {"validated": "true"}
    for path, body, cli in (
        ("source/versions/1.1.0/tags/remove", {"keys": ["team"]}, ("untag", "team")),
        ("source/versions/1.1.0/tags/set", {"tags": ["no value"]}, ("tag", "no value")),
    ):
        answer = client.post(f"{API}/models/{path}", json=body, headers=alice)
        assert answer.status_code == 422  # a tag the registry cannot take (a MetadataError)
        assert answer.json()["detail"] == modelreg_error(capsys, cli[0], "source", "1.1.0", cli[1])
    bad_filter = client.get(f"{API}/models", params={"tag": "=x"}, headers=bearer["victor"])
    assert bad_filter.json()["detail"] == modelreg_error(capsys, "list", "--tag", "=x")


def test_description_and_metadata_are_replaced_and_read_as_modelreg_meta(
    client, bearer, registry, chain, capsys, tmp_path
):
    alice = bearer["alice"]
    document = {"created_by": "ci", "framework": {"name": "numpy", "version": "2.1"}, "notes": ["free key"]}
    post_ok(client, alice, "source/versions/1.1.0/describe", {"description": "five outputs per input"})
    post_ok(client, alice, "source/versions/1.1.0/metadata", {"metadata": {"created_by": "someone"}})
    post_ok(client, alice, "source/versions/1.1.0/metadata", {"metadata": document, "reason": "rebuilt"})

    read = client.get(f"{API}/models/source/versions/1.1.0/metadata", headers=bearer["victor"]).json()
    assert (
        read
        == modelreg_json(capsys, "meta", "source", "1.1.0")
        == {"model_id": "source", "version": "1.1.0", "metadata": document}
    )
    assert registry.query(
        "SELECT description FROM detection_model_versions WHERE id = %s", (chain["source_shadow"],)
    ) == [("five outputs per input",)]
    assert [(action, reason) for _, _, action, _, reason in transitions(registry)] == [
        ("describe", None),
        ("meta", None),
        ("meta", "rebuilt"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"framework": {"version": "2.1"}}))
    refused = client.post(
        f"{API}/models/source/versions/1.1.0/metadata",
        json={"metadata": {"framework": {"version": "2.1"}}},
        headers=alice,
    )
    assert refused.status_code == 422  # a document without the documented shape (a MetadataError)
    assert refused.json()["detail"] == modelreg_error(capsys, "meta", "source", "1.1.0", "--file", str(bad))
    missing = client.get(f"{API}/models/source/versions/9.9.9/metadata", headers=bearer["victor"])
    assert missing.status_code == 404 and missing.json()["detail"] == modelreg_error(capsys, "meta", "source", "9.9.9")


def test_stage_checks_set_then_an_activation_is_refused_with_the_cli_line_until_they_pass(
    client, bearer, registry, chain, capsys
):
    alice = bearer["alice"]
    policy = post_ok(
        client,
        alice,
        "source/stage-checks",
        {"required_tags": ["validated=true"], "require_description": True, "reason": "owners"},
    )["result"]
    assert policy == {
        "model_id": "source",
        "guard": "checks",
        "applied": True,
        "values": {"required_tags": ["validated=true"], "require_description": True},
    }
    assert client.get(f"{API}/models/source/stage-checks", headers=bearer["victor"]).json() == modelreg_json(
        capsys, "checks", "source"
    )

    check = client.get(
        f"{API}/models/source/versions/2.0.0/check", params={"action": "activate"}, headers=bearer["victor"]
    ).json()
    assert check["passed"] is False
    assert {c["name"]: c["passed"] for c in check["checks"]} == {
        "description": False,
        "tag:validated": False,
        "params_schema": True,
    }
    shown = {v["version"]: v for v in client.get(f"{API}/models/source", headers=bearer["victor"]).json()["versions"]}
    assert shown["2.0.0"]["checks"] == check["checks"]
    refused = client.post(f"{API}/models/source/versions/2.0.0/activate", json={"role": "SHADOW"}, headers=alice)
    assert refused.status_code == 409
    assert refused.json()["detail"] == modelreg_error(capsys, "activate", "source", "2.0.0", "--role", "SHADOW")
    assert refused.json()["detail"].startswith("modelreg activate: activation of source@2.0.0 refused by its checks")
    assert {c["name"] for c in refused.json()["gates"]} == {"description", "tag:validated", "params_schema"}
    assert versions_state(registry, "source")[2] == ("2.0.0", "ACTIVE", "CHALLENGER")

    post_ok(client, alice, "source/versions/2.0.0/tags/set", {"tags": ["validated=true"]})
    post_ok(client, alice, "source/versions/2.0.0/describe", {"description": "seven per input"})
    activated = post_ok(client, alice, "source/versions/2.0.0/activate", {"role": "SHADOW"})["result"]
    assert all(c["passed"] for c in activated) and versions_state(registry, "source")[2] == (
        "2.0.0",
        "ACTIVE",
        "SHADOW",
    )
    nothing = client.post(f"{API}/models/source/stage-checks", json={"reason": "x"}, headers=alice)
    assert nothing.status_code == 422 and nothing.json()["detail"] == "body: name at least one check to change"


def test_a_promotion_needing_approval_makes_a_request_that_other_users_approve(client, bearer, registry, chain, capsys):
    alice, uma, bob = bearer["alice"], bearer["uma"], bearer["bob"]
    settings = post_ok(
        client,
        alice,
        "source/approvals/settings",
        {"required": True, "approvers": ["uma", "bob"], "min_approvals": 2, "reason": "four eyes"},
    )
    assert settings["result"] == {
        "model_id": "source",
        "guard": "approvals",
        "applied": True,
        "values": {"required": True, "approvers": ["bob", "uma"], "min_approvals": 2},
    }

    made = post_ok(client, alice, "source/versions/1.1.0/promote", {"force": True, "reason": "incident 7"})
    request = made["result"]["request"]
    assert made["result"]["promoted"] is None and request["status"] == "PENDING" and request["requested_by"] == "alice"
    assert (request["kind"], request["forced"], request["approvals"]) == ("promote", True, [])
    assert made["next_parse"]["tasks_removed"] == []
    assert versions_state(registry, "source")[:2] == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW")]
    approvals = client.get(f"{API}/models/source/approvals", headers=bearer["victor"]).json()
    assert approvals == {
        "model_id": "source",
        "required": True,
        "approvers": ["bob", "uma"],
        "min_approvals": 2,
        "requests": modelreg_json(capsys, "approvals", "list", "source"),
    }
    assert [r["id"] for r in approvals["requests"]] == [request["id"]]
    overview = {m["model_id"]: m for m in client.get(f"{API}/models", headers=bearer["victor"]).json()["models"]}
    assert overview["source"]["pending_approvals"] == 1 and overview["middle"]["pending_approvals"] == 0

    own = client.post(f"{API}/models/source/requests/approve", json={"version": "1.1.0"}, headers=alice)
    assert own.status_code == 409
    assert own.json()["detail"].startswith(
        f"modelreg approve: alice cannot approve request #{request['id']} for source@1.1.0: they made it"
    )
    outsider = client.post(f"{API}/models/source/requests/approve", json={}, headers=bearer["carol"])
    assert (
        outsider.status_code == 409
        and "carol is not among the approvers of source (bob, uma)" in outsider.json()["detail"]
    )
    other = client.post(f"{API}/models/source/requests/approve", json={"request_id": request["id"] + 1}, headers=uma)
    assert (
        other.status_code == 409
        and f"request #{request['id'] + 1} is not the one waiting for source" in other.json()["detail"]
    )
    no_reason = client.post(f"{API}/models/source/requests/reject", json={}, headers=uma)
    assert no_reason.status_code == 409
    assert no_reason.json()["detail"] == "modelreg reject: reject needs --reason: the requester is told why"

    first = post_ok(client, uma, "source/requests/approve", {"request_id": request["id"], "reason": "looked at it"})
    assert first["result"]["applied"] is False and first["result"]["request"]["approvals"] == ["uma"]
    assert versions_state(registry, "source")[1] == ("1.1.0", "ACTIVE", "SHADOW")
    preview = post_ok(client, bob, "source/requests/approve", {"version": "1.1.0", "preview": True})
    assert preview["result"]["applied"] is True and preview["result"]["promotion"]["promoted"] == "1.1.0"
    assert "source.shadow_1_1_0" in preview["plan"]["tasks_removed"]
    assert versions_state(registry, "source")[1] == ("1.1.0", "ACTIVE", "SHADOW")

    approved = post_ok(client, bob, "source/requests/approve", {"version": "1.1.0", "reason": "me too"})["result"]

    assert approved["applied"] is True
    promotion = approved["promotion"]
    assert (promotion["promoted"], promotion["previous"], promotion["basis"]) == ("1.1.0", "1.0.0", "approved")
    assert versions_state(registry, "source")[:2] == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    decided = client.get(
        f"{API}/models/source/approvals", params={"include_decided": True}, headers=bearer["victor"]
    ).json()["requests"]
    assert [(r["status"], r["decided_by"], r["decision_reason"], r["approvals"]) for r in decided] == [
        ("APPROVED", "bob", "me too", ["uma", "bob"])
    ]
    assert [(version, action, actor) for _, version, action, actor, _ in transitions(registry)] == [
        (None, "approvals", "alice"),
        ("1.1.0", "request_promotion", "alice"),
        (None, "approve", "uma"),
        (None, "approve", "bob"),
        ("1.1.0", "approve", "bob"),
        ("1.0.0", "promote", "bob"),
        ("1.1.0", "promote", "bob"),
    ]

    post_ok(client, alice, "source/versions/2.0.0/promote", {"force": True, "reason": "next"})
    rejected = post_ok(client, uma, "source/requests/reject", {"version": "2.0.0", "reason": "not this week"})["result"]
    assert (rejected["status"], rejected["decided_by"], rejected["decision_reason"]) == (
        "REJECTED",
        "uma",
        "not this week",
    )
    assert versions_state(registry, "source")[2] == ("2.0.0", "ACTIVE", "CHALLENGER")


def test_a_users_guard_change_on_a_model_under_approval_is_a_request_another_user_approves(
    client, bearer, registry, chain
):
    post_ok(client, bearer["alice"], "source/approvals/settings", {"required": True})
    preview = post_ok(client, bearer["uma"], "source/gates", {"min_cycles": 1, "preview": True})["result"]
    assert preview["applied"] is False and preview["request"]["id"] is None

    asked = post_ok(client, bearer["uma"], "source/gates", {"min_cycles": 1, "reason": "pilot"})["result"]

    assert (asked["model_id"], asked["guard"], asked["applied"]) == ("source", "gates", False)
    request = asked["request"]
    assert (request["kind"], request["version"], request["status"], request["requested_by"]) == (
        "guards",
        None,
        "PENDING",
        "uma",
    )
    assert request["change"] == {"guard": "gates", "values": {"min_cycles": 1}}
    assert client.get(f"{API}/models/source", headers=bearer["victor"]).json()["gates"]["min_cycles"] == 12
    again = client.post(f"{API}/models/source/stage-checks", json={"require_description": True}, headers=bearer["uma"])
    assert (
        again.status_code == 409
        and f"source already has request #{request['id']} for source's gates by uma" in again.json()["detail"]
    )
    own = client.post(f"{API}/models/source/requests/approve", json={}, headers=bearer["uma"])
    assert own.status_code == 409 and "they made it" in own.json()["detail"]

    approved = post_ok(
        client, bearer["bob"], "source/requests/approve", {"request_id": request["id"], "reason": "ok for the pilot"}
    )["result"]

    assert approved == {
        "model_id": "source",
        "applied": True,
        "guard": "gates",
        "values": {
            "min_cycles": 1,
            "max_failure_rate": 0.05,
            "min_agreement": None,
            "max_duration_ratio": None,
            "max_score_difference": None,
            "metric_thresholds": {},
            "gate_kind": "interval",
            "min_backtest_cycles": None,
        },
    }
    assert client.get(f"{API}/models/source", headers=bearer["victor"]).json()["gates"]["min_cycles"] == 1
    assert registry.query(
        "SELECT actor, basis, request_id FROM detection_model_transitions WHERE action = 'gates'"
    ) == [("bob", "approved", request["id"])]
    governed = post_ok(client, bearer["olga"], "source/gates", {"min_cycles": 3})["result"]
    assert governed["applied"] is True and governed["values"]["min_cycles"] == 3  # an op may govern alone


def test_an_error_version_shows_why_and_is_reactivated_by_the_user(client, bearer, registry, chain, capsys):
    with registry_connection(load_settings()) as conn:
        ModelRegistry(conn, SYSTEM).lifecycle.mark_error("source", "1.1.0", "3 failed cycles in a row: boom")

    overview = {m["model_id"]: m for m in client.get(f"{API}/models", headers=bearer["victor"]).json()["models"]}
    (error,) = overview["source"]["errors"]
    assert (error["version"], error["role"], error["reason"], error["actor"]) == (
        "1.1.0",
        "SHADOW",
        "3 failed cycles in a row: boom",
        "system",
    )
    shown = {v["version"]: v for v in client.get(f"{API}/models/source", headers=bearer["victor"]).json()["versions"]}
    assert shown["1.1.0"]["status"] == "ERROR" and shown["1.1.0"]["error"]["reason"] == error["reason"]
    assert shown["1.0.0"]["error"] is None
    refused = client.post(f"{API}/models/source/versions/1.0.0/reactivate", json={}, headers=bearer["alice"])
    assert refused.status_code == 409
    assert refused.json()["detail"] == modelreg_error(capsys, "reactivate", "source", "1.0.0")

    preview = post_ok(client, bearer["alice"], "source/versions/1.1.0/reactivate", {"preview": True})
    assert (
        preview["plan"]["tasks_added"] == ["source.shadow_1_1_0"]
        and versions_state(registry, "source")[1][1] == "ERROR"
    )
    post_ok(client, bearer["alice"], "source/versions/1.1.0/reactivate", {"reason": "upstream fixed"})

    assert versions_state(registry, "source")[1] == ("1.1.0", "ACTIVE", "SHADOW")
    assert transitions(registry)[-2:] == [
        ("source", "1.1.0", "error", "system", "3 failed cycles in a row: boom"),
        ("source", "1.1.0", "reactivate", "alice", "upstream fixed"),
    ]
    assert client.get(f"{API}/models", headers=bearer["victor"]).json()["models"][-1]["errors"] == []


def test_the_healing_policy_is_set_and_read_as_modelreg_policy(client, bearer, registry, chain, capsys):
    changed = post_ok(
        client,
        bearer["alice"],
        "source/healing-policy",
        {"on_primary_error": "rollback", "error_after_failures": 2, "reason": "flaky feed"},
    )["result"]

    assert (changed["model_id"], changed["guard"], changed["applied"]) == ("source", "policy", True)
    policy = changed["values"]
    assert policy["on_primary_error"] == "rollback" and policy["error_after_failures"] == 2
    read = client.get(f"{API}/models/source/healing-policy", headers=bearer["victor"]).json()
    assert read == {"model_id": "source", **modelreg_json(capsys, "policy", "source")}
    assert client.get(f"{API}/models/source", headers=bearer["victor"]).json()["healing_policy"] == policy
    refused = client.post(
        f"{API}/models/source/healing-policy", json={"error_after_failures": 0}, headers=bearer["alice"]
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == modelreg_error(capsys, "policy", "source", "--error-after", "0")


def test_backends_show_health_availability_and_the_versions_calling_them(client, bearer, registry, chain, capsys):
    from fake_backend import FakeBackend
    from models_core.backends.health_check import check_backends

    server = FakeBackend()
    try:
        post_backend(client, bearer["alice"], "", {"name": "gpu-a", "url": server.url})
        post_backend(client, bearer["alice"], "", {"name": "gpu-b", "url": "http://127.0.0.1:9"})
        with registry_connection(load_settings()) as conn:
            check_backends(conn, load_settings())
    finally:
        server.close()
    post_backend(client, bearer["uma"], "", {"name": "gpu-c", "url": "http://127.0.0.1:9"})  # never probed
    registry.execute(
        "UPDATE detection_model_versions SET params = params || %s WHERE id IN (%s, %s)",
        (json.dumps({"backend": "gpu-a"}), chain["source"], chain["source_shadow"]),
    )
    registry.execute(
        "UPDATE detection_model_versions SET params = params || %s WHERE id = %s",
        (json.dumps({"backend": "gpu-x"}), chain["middle"]),
    )

    answer = client.get(f"{API}/backends", headers=bearer["victor"]).json()

    backends = {b["name"]: b for b in answer["backends"]}
    listed = {b["name"]: b for b in modelreg_json(capsys, "backends", "list")}
    assert {name: {k: b[k] for k in listed[name]} for name, b in backends.items()} == listed
    assert (backends["gpu-a"]["status"], backends["gpu-a"]["unavailable"]) == ("UP", None)
    assert backends["gpu-a"]["callers"] == [
        {"model_id": "source", "version": "1.0.0", "role": "PRIMARY"},
        {"model_id": "source", "version": "1.1.0", "role": "SHADOW"},
    ]
    assert backends["gpu-b"]["status"] == "DOWN" and backends["gpu-b"]["unavailable"].startswith(
        "backend gpu-b is DOWN"
    )
    assert backends["gpu-c"]["unavailable"] == (
        "backend gpu-c has not been probed yet (DAG detection_model_backend_health probes it)"
    )
    assert backends["gpu-b"]["callers"] == backends["gpu-c"]["callers"] == []
    assert answer["unregistered"] == [
        {"name": "gpu-x", "callers": [{"model_id": "middle", "version": "1.0.0", "role": "PRIMARY"}]}
    ]


def post_backend(client, headers, path: str, body: dict) -> dict:
    answer = client.post(f"{API}/backends{path}", json=body, headers=headers)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def test_backends_are_registered_and_removed_through_the_api_as_the_user(client, bearer, registry, chain, capsys):
    added = post_backend(
        client, bearer["uma"], "", {"name": "gpu-a", "url": "http://127.0.0.1:9", "timeout_s": 2, "reason": "new rack"}
    )
    assert added["result"] == {
        "name": "gpu-a",
        "base_url": "http://127.0.0.1:9",
        "health_path": "/health",
        "status_path": None,
        "timeout_s": 2.0,
    }
    assert [b["name"] for b in modelreg_json(capsys, "backends", "list")] == ["gpu-a"]
    taken = client.post(f"{API}/backends", json={"name": "gpu-a", "url": "http://127.0.0.1:9"}, headers=bearer["uma"])
    assert taken.status_code == 409 and taken.json()["detail"] == modelreg_error(
        capsys, "backends", "add", "gpu-a", "http://127.0.0.1:9"
    )
    bad = client.post(f"{API}/backends", json={"name": "gpu-b", "url": "ftp://x"}, headers=bearer["uma"])
    assert (
        bad.status_code == 409
        and "backend gpu-b: URL 'ftp://x' must be http(s)://host[:port][/path]" in bad.json()["detail"]
    )
    registry.execute(
        "UPDATE detection_model_versions SET params = params || %s WHERE id = %s",
        (json.dumps({"backend": "gpu-a"}), chain["source_shadow"]),
    )

    called = client.post(f"{API}/backends/gpu-a/remove", json={}, headers=bearer["uma"])
    assert (
        called.status_code == 409
        and "backend gpu-a is called by ACTIVE versions source@1.1.0" in called.json()["detail"]
    )
    removed = post_backend(client, bearer["alice"], "/gpu-a/remove", {"force": True, "reason": "rack gone"})

    assert removed["result"] == {"name": "gpu-a", "removed": True}
    assert modelreg_json(capsys, "backends", "list") == []
    assert registry.query("SELECT action, actor, reason FROM detection_model_backend_events ORDER BY id") == [
        ("backend_add", "uma", "new rack"),
        ("backend_remove", "alice", "rack gone"),
    ]
    missing = client.post(f"{API}/backends/gpu-z/remove", json={}, headers=bearer["uma"])
    assert missing.status_code == 409 and "backend 'gpu-z' is not registered" in missing.json()["detail"]
