"""Changes under approval, and `--check` for CI (issue 15, items 3-4; issue 23, items 3-5).

A model with approvals on: `promote` makes a PENDING request holding the figures; other
people's `approve` (as many as the model asks, among its approvers when it names some)
re-checks them and applies the promotion in one transaction; `reject` says why; requests
expire and close when their version changes state; `--force` never skips the second person;
a change of what guards the model is itself a request. People are logged in to Airflow's
API app (in-process, SimpleAuthManager users); `modelreg` without a login is a service
account, which never approves. `--check` changes nothing at all, and exits 0 or 1.
"""

from __future__ import annotations

import json
import time

import pytest
from registry_helpers import modelreg, modelreg_text


def _state(registry) -> list[tuple]:
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'loner' ORDER BY id"
    )


def _requests(registry) -> list[tuple]:
    return registry.query(
        "SELECT coalesce(version, kind), status, requested_by, decided_by, forced FROM"
        " detection_model_approval_requests ORDER BY id"
    )


@pytest.fixture
def as_user(capsys, airflow_api):
    """``as_user("bob", *argv)``: modelreg --json, logged in to Airflow as bob."""
    return lambda user, *argv: modelreg(capsys, *argv, api=airflow_api, user=user)


@pytest.fixture
def candidate(registry, capsys, as_user) -> dict[str, int]:
    """loner 1.0.0 PRIMARY, 1.1.0 SHADOW with 3 good cycles, gates of 3 cycles, approvals on."""
    ids = {
        "primary": registry.add_version("loner", "1.0.0"),
        "shadow": registry.add_version("loner", "1.1.0", "SHADOW"),
        "other": registry.add_version("loner", "1.2.0", "SHADOW"),
    }
    registry.seed_cycles("loner", ids["shadow"], ["success"] * 3)
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "3")[0] == 0
    assert as_user("uma", "approvals", "set", "loner", "on")[0] == 0
    return ids


def test_a_promotion_waits_for_a_second_person_and_is_applied_in_one_transaction(registry, as_user, candidate):
    code, requested, _ = as_user("uma", "promote", "loner", "1.1.0", "--reason", "better recall")

    assert code == 0 and requested["promoted"] is None
    request = requested["request"]
    assert (request["status"], request["requested_by"], request["reason"]) == ("PENDING", "uma", "better recall")
    assert {g["name"]: (g["actual"], g["passed"]) for g in request["gates"]} == {
        "min_cycles": (3.0, True),
        "max_failure_rate": (0.0, True),
    }
    assert _state(registry) == [
        ("1.0.0", "ACTIVE", "PRIMARY"),
        ("1.1.0", "ACTIVE", "SHADOW"),
        ("1.2.0", "ACTIVE", "SHADOW"),
    ]

    code, _, err = as_user("uma", "approve", "loner", "1.1.0")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "uma cannot approve request #1 for loner@1.1.0: they made it" in err
    assert _requests(registry) == [("1.1.0", "PENDING", "uma", None, False)]

    code, approved, _ = as_user("bob", "approve", "loner", "1.1.0", "--reason", "figures look right")

    promotion = approved["promotion"]
    assert code == 0 and promotion["promoted"] == "1.1.0" and promotion["previous_now"] == "ARCHIVED"
    assert promotion["basis"] == "approved"
    assert _state(registry) == [
        ("1.0.0", "ARCHIVED", "PRIMARY"),
        ("1.1.0", "ACTIVE", "PRIMARY"),
        ("1.2.0", "ACTIVE", "SHADOW"),
    ]
    assert _requests(registry) == [("1.1.0", "APPROVED", "uma", "bob", False)]
    rows = registry.query(
        "SELECT action, version, actor, actor_kind, basis, request_id, xmin::text FROM"
        " detection_model_transitions WHERE source = 'api' AND action NOT IN ('gates', 'approvals')"
        " ORDER BY id"
    )
    assert [r[:6] for r in rows] == [
        ("request_promotion", "1.1.0", "uma", "person", None, None),
        ("approve", None, "bob", "person", None, 1),
        ("approve", "1.1.0", "bob", "person", None, 1),
        ("promote", "1.0.0", "bob", "person", None, 1),
        ("promote", "1.1.0", "bob", "person", "approved", 1),
    ]
    assert len({r[6] for r in rows[1:]}) == 1  # the approval, the decision and the promotion: one transaction


def test_n_of_m_approvals_from_the_named_approvers_only(registry, capsys, as_user, candidate):
    assert (
        as_user("alice", "approvals", "set", "loner", "--approvers", "bob,carol,dave", "--min-approvals", "2")[1][
            "applied"
        ]
        is True
    )  # alice may govern: applied at once
    as_user("uma", "promote", "loner", "1.1.0")

    code, _, err = as_user("alice", "approve", "loner")
    assert code == 1 and "alice is not among the approvers of loner (bob, carol, dave)" in err
    code, first, _ = as_user("bob", "approve", "loner")
    assert code == 0 and first["applied"] is False and first["request"]["approvals"] == ["bob"]
    code, _, err = as_user("bob", "approve", "loner")
    assert code == 1 and "bob already approved request #1 for loner@1.1.0; it needs 1 more" in err
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")

    code, second, _ = as_user("carol", "approve", "loner", "--request", "1")

    assert code == 0 and second["applied"] is True and second["promotion"]["promoted"] == "1.1.0"
    assert registry.query("SELECT approver FROM detection_model_approval_votes ORDER BY at") == [("bob",), ("carol",)]
    assert _requests(registry) == [("1.1.0", "APPROVED", "uma", "carol", False)]


def test_a_service_account_never_approves(registry, capsys, as_user, candidate):
    as_user("uma", "promote", "loner", "1.1.0")

    code, _, err = modelreg(capsys, "approve", "loner", "1.1.0")  # direct database mode: not logged in

    assert code == 1 and f"service {registry.db_user} cannot approve request #1" in err
    assert "only a person logged in to Airflow approves" in err
    assert _requests(registry) == [("1.1.0", "PENDING", "uma", None, False)]


def test_the_requester_cannot_switch_approvals_off_alone(registry, capsys, as_user, candidate):
    """Issue 23, side door 3: approvals off, promote alone, approvals on again."""
    as_user("uma", "promote", "loner", "1.1.0")

    code, _, err = as_user("uma", "approvals", "set", "loner", "off", "--reason", "team of one")
    assert code == 1 and "loner already has request #1" in err  # one request waits per model
    as_user("uma", "reject", "loner", "--reason", "withdrawn")
    code, off, _ = as_user("uma", "approvals", "set", "loner", "off", "--reason", "team of one")

    assert code == 0 and off["applied"] is False and off["request"]["kind"] == "guards"
    assert registry.query("SELECT required FROM detection_model_approval_settings") == [(True,)]
    code, _, err = as_user("uma", "promote", "loner", "1.1.0")
    assert code == 1 and "loner already has request #2" in err
    code, _, err = as_user("uma", "approve", "loner")
    assert code == 1 and "they made it" in err
    code, _, err = modelreg(capsys, "approvals", "set", "loner", "off")  # a service account asks alone
    assert code == 1 and "already has request #2" in err

    code, approved, _ = as_user("bob", "approve", "loner", "--reason", "ok, for the pilot")

    assert code == 0 and approved["values"]["required"] is False
    assert registry.query("SELECT required FROM detection_model_approval_settings") == [(False,)]
    event = registry.query(
        "SELECT actor, basis, request_id FROM detection_model_transitions"
        " WHERE action = 'approvals' ORDER BY id DESC LIMIT 1"
    )
    assert event == [("bob", "approved", 2)]


def test_a_guard_change_of_a_model_under_approval_is_a_request_unless_the_actor_governs(registry, as_user, candidate):
    code, gates, _ = as_user("uma", "gates", "loner", "--min-cycles", "1")
    assert (
        code == 0
        and gates["applied"] is False
        and gates["request"]["change"] == {"guard": "gates", "values": {"min_cycles": 1}}
    )  # only what was asked: applied to the gates as they are then
    as_user("uma", "reject", "loner", "--reason", "withdrawn")

    for args in (
        ("gates", "loner", "--min-cycles", "1"),
        ("checks", "loner", "--require-description", "on"),
        ("policy", "loner", "--on-primary-error", "rollback"),
    ):
        code, applied, _ = as_user("alice", *args)  # alice governs
        assert code == 0 and applied["applied"] is True, args
    assert (
        registry.query(
            "SELECT basis FROM detection_model_transitions WHERE action IN ('gates', 'checks', 'policy')"
            " AND actor = 'alice' ORDER BY id"
        )
        == [("governor",)] * 3
    )


def test_a_request_closes_when_its_version_changes_state(registry, capsys, as_user, candidate):
    as_user("uma", "promote", "loner", "1.1.0")

    assert modelreg(capsys, "deactivate", "loner", "1.1.0", "--reason", "pulled")[0] == 0

    ((status, reason),) = registry.query("SELECT status, decision_reason FROM detection_model_approval_requests")
    assert status == "CANCELLED" and reason == "closed: loner@1.1.0 changed from ACTIVE SHADOW to INACTIVE SHADOW"
    code, _, err = as_user("bob", "approve", "loner", "1.1.0")
    assert code == 1 and "has no pending request to approve" in err


def test_plain_sql_cannot_make_a_primary_of_a_model_under_approval(registry, candidate):
    with pytest.raises(Exception, match="loner@1.1.0 cannot become the ACTIVE PRIMARY by plain SQL"):
        registry.execute(
            "UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE version = '1.0.0';"
            " UPDATE detection_model_versions SET role = 'PRIMARY' WHERE version = '1.1.0'"
        )
    with pytest.raises(Exception, match="cannot become the ACTIVE PRIMARY by plain SQL"):
        registry.execute(
            "UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE version = '1.0.0';"
            " INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('loner', '9.0.0', 'ACTIVE', 'PRIMARY')"
        )
    assert _state(registry)[0] == ("1.0.0", "ACTIVE", "PRIMARY")
    registry.add_version("free", "1.0.0")  # a model without approvals: plain SQL works as before


def test_approval_re_checks_the_gates_and_refuses_when_they_no_longer_pass(registry, as_user, candidate):
    as_user("uma", "promote", "loner", "1.1.0")
    registry.seed_cycles("loner", candidate["shadow"], ["failed"], hours_ago=1)  # 1 of 4 failed since

    code, _, err = as_user("bob", "approve", "loner", "1.1.0")

    assert (
        code == 1
        and "approval of request #1 for loner@1.1.0 refused by its quality gates: "
        "max_failure_rate needs <= 0.05, measured 0.25"
        in err
        and "stays pending" in err
    )
    assert _requests(registry) == [("1.1.0", "PENDING", "uma", None, False)]
    assert registry.query("SELECT count(*) FROM detection_model_approval_votes") == [(0,)]
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_reject_needs_a_reason_and_closes_the_request(registry, as_user, candidate):
    as_user("uma", "promote", "loner", "1.1.0")
    with pytest.raises(SystemExit):  # --reason is required
        as_user("carol", "reject", "loner", "1.1.0")
    code, _, err = as_user("dave", "promote", "loner", "1.2.0")
    assert code == 1 and "loner already has request #1 for loner@1.1.0 by uma, pending until" in err

    code, rejected, _ = as_user("carol", "reject", "loner", "1.1.0", "--reason", "wait for the storm data")

    assert code == 0 and (rejected["status"], rejected["decided_by"], rejected["decision_reason"]) == (
        "REJECTED",
        "carol",
        "wait for the storm data",
    )
    code, _, err = as_user("bob", "approve", "loner", "1.1.0")
    assert code == 1 and "loner@1.1.0 has no pending request to approve" in err
    assert as_user("uma", "promote", "loner", "1.1.0")[0] == 0  # a new request may be made
    listed = as_user("uma", "approvals", "list", "loner", "--all")[1]
    assert [(r["id"], r["status"]) for r in listed] == [(2, "PENDING"), (1, "REJECTED")]
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_an_expired_request_cannot_be_approved_and_the_next_request_records_it(
    registry, as_user, candidate, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", str(1 / 3600))  # one second
    as_user("uma", "promote", "loner", "1.1.0")
    time.sleep(1.2)

    code, _, err = as_user("bob", "approve", "loner", "1.1.0")

    assert code == 1 and "request #1 for loner@1.1.0 expired at" in err and "`modelreg promote loner 1.1.0`" in err
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")
    assert [r["status"] for r in as_user("uma", "approvals", "list", "loner")[1]] == ["EXPIRED"]
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", "24")
    assert as_user("uma", "promote", "loner", "1.1.0")[0] == 0
    assert _requests(registry) == [("1.1.0", "EXPIRED", "uma", None, False), ("1.1.0", "PENDING", "uma", None, False)]
    assert registry.query(
        "SELECT action, details->'after'->>'status' FROM detection_model_transitions"
        " WHERE action IN ('expire', 'request_promotion') ORDER BY id"
    ) == [("request_promotion", "PENDING"), ("expire", "EXPIRED"), ("request_promotion", "PENDING")]


def test_force_under_approvals_still_needs_the_second_person(registry, as_user, candidate):
    code, _, err = as_user("alice", "promote", "loner", "1.2.0")  # 1.2.0 never ran
    assert code == 1 and "min_cycles needs >= 3, measured 0" in err and _requests(registry) == []
    code, _, err = as_user("uma", "promote", "loner", "1.2.0", "--force", "--reason", "incident 42")
    assert code == 1 and "uma may not force promote of loner@1.2.0: it needs the force permission" in err

    code, requested, _ = as_user("alice", "promote", "loner", "1.2.0", "--force", "--reason", "incident 42")

    assert code == 0 and requested["request"]["forced"] is True
    assert _state(registry)[0] == ("1.0.0", "ACTIVE", "PRIMARY")
    code, approved, _ = as_user("bob", "approve", "loner", "1.2.0")
    assert (
        code == 0 and approved["promotion"]["forced"] is True and _state(registry)[2] == ("1.2.0", "ACTIVE", "PRIMARY")
    )


def test_rollback_to_a_version_that_never_was_primary_is_a_promotion(registry, as_user, candidate):
    code, _, err = as_user("uma", "rollback", "loner", "--to", "1.2.0")
    assert code == 1 and "loner@1.2.0 has never been the PRIMARY: making it the PRIMARY is a promotion" in err

    as_user("uma", "promote", "loner", "1.1.0")
    as_user("bob", "approve", "loner", "1.1.0")
    assert as_user("uma", "rollback", "loner", "--to", "1.0.0")[0] == 0  # it was PRIMARY before
    assert registry.query(
        "SELECT basis FROM detection_model_transitions WHERE action = 'rollback'"
        " AND to_role = 'PRIMARY' AND to_status = 'ACTIVE'"
    ) == [("restore",)]


def test_approvals_off_by_a_governor_promotes_directly_again_and_every_setting_change_is_audited(
    registry, as_user, candidate
):
    assert as_user("alice", "approvals", "set", "loner", "off", "--reason", "team of one")[1]["applied"] is True
    assert as_user("uma", "promote", "loner", "1.1.0")[1]["promoted"] == "1.1.0"
    code, _, err = as_user("uma", "approvals", "set", "nobody", "on")
    assert code == 1 and "unknown model 'nobody'" in err
    assert registry.query(
        "SELECT actor, reason, basis, details->'after'->>'required' FROM"
        " detection_model_transitions WHERE action = 'approvals' ORDER BY id"
    ) == [("uma", None, None, "true"), ("alice", "team of one", "governor", "false")]


# --- --check: for CI, evaluates everything and changes nothing ----------------------------


def test_promote_check_exits_0_or_1_with_the_figures_and_changes_nothing(registry, capsys, candidate):
    before = registry.snapshot()

    code, passed, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    code_failed, failed_out, _ = modelreg(capsys, "promote", "loner", "1.2.0", "--check")
    text_code, text, _ = modelreg_text(capsys, "promote", "loner", "1.2.0", "--check")
    primary_code, primary_text, _ = modelreg_text(capsys, "promote", "loner", "1.0.0", "--check")

    assert registry.snapshot() == before
    assert code == 0 and passed["passed"] is True and passed["approval_required"] is True
    assert {g["name"] for g in passed["gates"]} == {"min_cycles", "max_failure_rate"}
    assert code_failed == 1
    failed = json.loads(failed_out)
    assert failed["passed"] is False and {g["name"]: g["passed"] for g in failed["gates"]} == {
        "min_cycles": False,
        "max_failure_rate": False,
    }
    assert (
        text_code == 1
        and "min_cycles" in text
        and "FAIL" in text
        and "check FAILED: promote of loner@1.2.0 would be refused; nothing was changed" in text
    )
    assert primary_code == 1 and "loner@1.0.0 is already the ACTIVE PRIMARY" in primary_text
    assert modelreg(capsys, "promote", "loner", "1.1.0", "--check", "--force", "--reason", "x")[0] == 1


def test_activate_check_changes_nothing_either(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW", status="DRAFT")
    modelreg(capsys, "checks", "loner", "--require-tags", "validated=true")
    before = registry.snapshot()

    code, report, _ = modelreg(capsys, "activate", "loner", "1.1.0", "--role", "SHADOW", "--check")
    code_primary, primary, _ = modelreg(capsys, "activate", "loner", "1.0.0", "--role", "SHADOW", "--check")

    assert registry.snapshot() == before
    assert code == 1 and json.loads(report)["checks"] == [
        {"name": "tag:validated", "threshold": "validated=true", "actual": "missing", "passed": False}
    ]
    assert code_primary == 1 and json.loads(primary)["problems"] == [  # tags would pass, the role change not
        "loner@1.0.0 is the ACTIVE PRIMARY: its downstream models would stop. Promote another version first, "
        "or use --force"
    ]


def test_only_the_named_approvers_or_the_requester_may_reject(registry, as_user, candidate):
    as_user("alice", "approvals", "set", "loner", "--approvers", "bob")
    as_user("uma", "promote", "loner", "1.1.0")

    code, _, err = as_user("carol", "reject", "loner", "--reason", "not mine to say")

    assert code == 1 and "carol is not among the approvers of loner (bob): only they, or uma who made it" in err
    assert as_user("uma", "reject", "loner", "--reason", "withdrawn")[0] == 0
