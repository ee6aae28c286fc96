"""Issue 23/24 attack review: doors an attacker found open after the first governance work, each shut.

Each test was written by the attacker against the code of commit dc5ae84 and failed there on its
own assertion (B1-B9 in the closing note); here they assert what the product does now.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from registry_helpers import modelreg, person

from models_core.registry.actors import SYSTEM
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings

API = "/model-registry/api"


@pytest.fixture
def as_user(capsys, airflow_api):
    return lambda user, *argv: modelreg(capsys, *argv, api=airflow_api, user=user)


def _state(registry, model_id="loner"):
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = %s ORDER BY id", (model_id,)
    )


def test_b1_plain_sql_cannot_move_a_primary_into_a_model_under_approval(registry):
    registry.add_version("guarded", "1.0.0", "SHADOW")
    registry.execute("INSERT INTO detection_model_approval_settings (model_id, required) VALUES ('guarded', true)")
    registry.add_version("free", "9.9.9")  # the ACTIVE PRIMARY of a model without approvals
    with pytest.raises(psycopg2.Error):
        registry.execute("UPDATE detection_model_versions SET model_id = 'guarded' WHERE model_id = 'free'")
    assert ("9.9.9", "ACTIVE", "PRIMARY") not in _state(registry, "guarded")


def test_b1_a_version_never_moves_to_another_model_so_primary_at_stays_true(registry):
    registry.add_version("free", "9.9.9")
    registry.add_version("other", "1.0.0", "SHADOW")
    with pytest.raises(psycopg2.Error, match="free@9.9.9 keeps its model and version"):
        registry.execute("UPDATE detection_model_versions SET model_id = 'other' WHERE model_id = 'free'")
    lifecycle = ModelRegistry(registry.conn, person("x")).lifecycle
    assert lifecycle.primary_at("free", datetime.now(UTC)) == "9.9.9"


def test_b2_an_approval_promotes_the_version_requested_not_whatever_now_has_its_name(registry, as_user, capsys):
    registry.add_version("loner", "1.0.0")
    requested = registry.add_version("loner", "1.1.0", "SHADOW")
    registry.add_version("loner", "6.6.6", "SHADOW")
    assert as_user("alice", "approvals", "set", "loner", "on")[0] == 0
    assert modelreg(capsys, "promote", "loner", "1.1.0", "--force", "--reason", "hotfix")[0] == 0  # a forced request
    with pytest.raises(psycopg2.Error, match="loner@1.1.0 keeps its model and version"):
        registry.execute(
            "UPDATE detection_model_versions SET version = '9.9.9' WHERE model_id = 'loner' AND version = '1.1.0'"
        )

    as_user("bob", "approve", "loner", "1.1.0")

    promoted = registry.query("SELECT id FROM detection_model_versions WHERE status = 'ACTIVE' AND role = 'PRIMARY'")
    assert promoted == [(requested,)]


def test_b3_a_vote_written_with_plain_sql_is_not_an_approval(registry, as_user, capsys):
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    registry.seed_cycles("loner", shadow, ["success"] * 3)
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "3")[0] == 0
    assert as_user("alice", "approvals", "set", "loner", "on", "--min-approvals", "2")[0] == 0
    request_id = as_user("uma", "promote", "loner", "1.1.0")[1]["request"]["id"]
    with pytest.raises(psycopg2.Error, match="can only be made by that person through the product"):
        registry.execute(
            "INSERT INTO detection_model_approval_votes (request_id, model_id, approver) VALUES (%s, 'loner', 'carol')",
            (request_id,),
        )

    as_user("bob", "approve", "loner", "1.1.0")  # one person

    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_b4_the_audit_trail_cannot_be_deleted(registry):
    registry.add_version("m", "1.0.0")
    for statement in ("DELETE FROM detection_model_transitions", "TRUNCATE detection_model_transitions"):
        with pytest.raises(psycopg2.Error):
            registry.execute(statement)


def test_b5_a_version_in_error_does_not_reach_primary_by_archive_and_rollback_to(registry, as_user):
    registry.add_version("loner", "1.0.0", "SHADOW")
    registry.add_version("loner", "2.0.0", "SHADOW")
    assert as_user("olga", "promote", "loner", "1.0.0", "--force", "--reason", "boot")[0] == 0
    assert as_user("olga", "promote", "loner", "2.0.0", "--force", "--reason", "v2")[0] == 0  # 1.0.0 ARCHIVED
    assert as_user("uma", "activate", "loner", "1.0.0", "--role", "SHADOW")[0] == 0
    ModelRegistry(registry.conn, SYSTEM).lifecycle.mark_error("loner", "1.0.0", "failed 3 cycles in a row")
    assert as_user("olga", "approvals", "set", "loner", "on")[0] == 0
    assert as_user("uma", "reactivate", "loner", "1.0.0", "--role", "PRIMARY")[0] == 1  # refused: a promotion

    as_user("uma", "archive", "loner", "1.0.0", "--reason", "tidy")
    code, _, err = as_user("uma", "rollback", "loner", "--to", "1.0.0", "--reason", "go")

    assert code == 1 and "loner@1.0.0 went to ERROR after it was last the PRIMARY" in err
    assert ("1.0.0", "ACTIVE", "PRIMARY") not in _state(registry)


def test_b6_approving_a_guard_request_changes_only_what_it_asked(registry, as_user, capsys):
    registry.add_version("loner", "1.0.0")
    assert as_user("alice", "approvals", "set", "loner", "on")[0] == 0
    assert as_user("uma", "gates", "loner", "--min-cycles", "2")[1]["applied"] is False
    assert as_user("olga", "gates", "loner", "--max-failure-rate", "0.01", "--reason", "tighten")[0] == 0

    assert as_user("bob", "approve", "loner")[0] == 0

    assert registry.query("SELECT min_cycles, max_failure_rate FROM detection_model_quality_gates") == [(2, 0.01)]


def test_b7_the_review_does_not_undo_a_fresh_activation_made_after_it_judged(registry, monkeypatch):
    from models_core.healing import review

    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    cycle = datetime.now(UTC) - timedelta(minutes=1)
    for i in range(3):
        registry.execute(
            "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at, model_id,"
            " version_id, role, state, reason) VALUES (%s, 'loner.s', %s, 'loner', %s, 'SHADOW', 'failed', 'x')",
            ("run" if i == 2 else f"r{i}", cycle - timedelta(minutes=5 * (2 - i)), shadow),
        )
    judge = review._Review._failing

    def judged_then_a_person_restarts_it(self, version, k):
        found = judge(self, version, k)
        lifecycle = ModelRegistry(registry.conn, person("uma", govern=False)).lifecycle
        lifecycle.deactivate("loner", "1.1.0", "fix deployed")
        lifecycle.activate("loner", "1.1.0", "SHADOW", "fresh start")
        return found

    monkeypatch.setattr(review._Review, "_failing", judged_then_a_person_restarts_it)

    review.review_cycle(load_settings(), "run", cycle, {})

    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/models/loner/versions", '{"version": "2.0.0", "params": {"a": NaN}}', "params"),
        ("/models/loner/healing-policy", '{"metric_thresholds": {"m": {"min": 2, "max": 1}}}', "metric_thresholds"),
        ("/models/loner/stage-checks", '{"required_tags": ["k=' + "v" * 300 + '"]}', "required_tags"),
        ("/backends", '{"name": "b", "url": "http://127.0.0.1:9", "timeout_s": 1e-320}', "timeout"),
    ],
)
def test_b8_a_bad_field_is_a_4xx_naming_it(registry, airflow_api, path, body, field):
    registry.add_version("loner", "1.0.0")
    answer = airflow_api.client.post(
        API + path, content=body, headers={**airflow_api.headers("alice"), "Content-Type": "application/json"}
    )
    assert answer.status_code in (409, 422) and field in answer.json()["detail"] and "database error" not in answer.text


def test_b8_a_nul_in_a_read_path_is_a_422_naming_the_field(registry, airflow_api):
    answer = airflow_api.client.get(API + "/models/%00", headers=airflow_api.headers("victor"))
    assert answer.status_code == 422 and "model_id" in answer.json()["detail"]


def test_b8_a_viewer_never_reads_a_backends_password(registry, airflow_api):
    refused = airflow_api.client.post(
        API + "/backends",
        content=json.dumps({"name": "b", "url": "http://svc:s3cret@127.0.0.1:9"}),
        headers={**airflow_api.headers("uma"), "Content-Type": "application/json"},
    )
    assert refused.status_code == 409 and "s3cret" not in refused.text and "user name or password" in refused.text
    assert "s3cret" not in airflow_api.client.get(API + "/backends", headers=airflow_api.headers("victor")).text


def test_b9_whoami_names_the_user_the_token_is_for(registry, airflow_api, tmp_path, capsys, monkeypatch):
    from models_core.registry.cli import main

    saved = tmp_path / "credentials.json"
    saved.write_text(json.dumps({"url": "http://testserver", "token": airflow_api.token("uma"), "user": "alice"}))
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH", str(saved))
    monkeypatch.delenv("AIRFLOW__MODEL_REGISTRY__API_TOKEN", raising=False)
    capsys.readouterr()
    assert main(["whoami"], http=airflow_api.client) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("uma (person), logged in to http://testserver")
