"""Promotions under approval, and `--check` for CI (issue 15, items 3 and 4).

A model with approvals on: `promote` makes a PENDING request holding the figures; a second
actor's `approve` re-checks them and applies the promotion in one transaction; `reject`
says why; requests expire; `--force` never skips the second person. `--check` changes
nothing at all, and exits 0 or 1.
"""
from __future__ import annotations

import json
import time

import pytest

from registry_helpers import modelreg, modelreg_text


def _state(registry) -> list[tuple]:
    return registry.query("SELECT version, status, role FROM detection_model_versions WHERE model_id = 'loner'"
                          " ORDER BY id")


def _requests(registry) -> list[tuple]:
    return registry.query("SELECT version, status, requested_by, decided_by, forced FROM"
                          " detection_model_approval_requests ORDER BY id")


@pytest.fixture
def candidate(registry, capsys) -> dict[str, int]:
    """loner 1.0.0 PRIMARY, 1.1.0 SHADOW with 3 good cycles, gates of 3 cycles, approvals on."""
    ids = {"primary": registry.add_version("loner", "1.0.0"),
           "shadow": registry.add_version("loner", "1.1.0", "SHADOW"),
           "other": registry.add_version("loner", "1.2.0", "SHADOW")}
    registry.seed_cycles("loner", ids["shadow"], ["success"] * 3)
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "3")[0] == 0
    assert modelreg(capsys, "approvals", "set", "loner", "on", actor="alice")[0] == 0
    return ids


def test_a_promotion_waits_for_a_second_actor_and_is_applied_in_one_transaction(registry, capsys, candidate):
    code, requested, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--reason", "better recall", actor="alice")

    assert code == 0 and requested["promoted"] is None
    request = requested["request"]
    assert (request["status"], request["requested_by"], request["reason"]) == ("PENDING", "alice", "better recall")
    assert {g["name"]: (g["actual"], g["passed"]) for g in request["gates"]} == {
        "min_cycles": (3.0, True), "max_failure_rate": (0.0, True)}
    assert _state(registry) == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW"),
                                ("1.2.0", "ACTIVE", "SHADOW")]

    for self_approver in ("alice", "Alice"):
        code, _, err = modelreg(capsys, "approve", "loner", "1.1.0", actor=self_approver)
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert f"{self_approver} cannot approve request #1 for loner@1.1.0: they made it" in err
    assert _requests(registry) == [("1.1.0", "PENDING", "alice", None, False)]

    code, approved, _ = modelreg(capsys, "approve", "loner", "1.1.0", "--reason", "figures look right", actor="bob")

    assert code == 0 and approved["promoted"] == "1.1.0" and approved["previous_now"] == "ARCHIVED"
    assert _state(registry) == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY"),
                                ("1.2.0", "ACTIVE", "SHADOW")]
    assert _requests(registry) == [("1.1.0", "APPROVED", "alice", "bob", False)]
    rows = registry.query("SELECT action, version, actor, reason, xmin::text FROM detection_model_transitions"
                          " WHERE source = 'api' AND action <> 'gates' ORDER BY id")
    assert [r[:4] for r in rows] == [
        ("approvals", None, "alice", None),
        ("request_promotion", "1.1.0", "alice", "better recall"),
        ("promote", "1.0.0", "bob", "request #1 for loner@1.1.0 by alice, approved: better recall"),
        ("promote", "1.1.0", "bob", "request #1 for loner@1.1.0 by alice, approved: better recall"),
        ("approve", "1.1.0", "bob", "figures look right")]
    assert len({r[4] for r in rows[2:]}) == 1  # the promotion and the decision: one transaction
    assert registry.query("SELECT xmin::text FROM detection_model_approval_requests") == [(rows[2][4],)]


def test_approval_re_checks_the_gates_and_refuses_when_they_no_longer_pass(registry, capsys, candidate):
    modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")
    registry.seed_cycles("loner", candidate["shadow"], ["failed"], hours_ago=1)  # 1 of 4 failed since

    code, _, err = modelreg(capsys, "approve", "loner", "1.1.0", actor="bob")

    assert code == 1 and "approval of request #1 for loner@1.1.0 refused by its quality gates: " \
                         "max_failure_rate needs <= 0.05, measured 0.25" in err and "stays pending" in err
    assert _requests(registry) == [("1.1.0", "PENDING", "alice", None, False)]
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_reject_needs_a_reason_and_closes_the_request(registry, capsys, candidate):
    modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")
    with pytest.raises(SystemExit):  # --reason is required
        modelreg(capsys, "reject", "loner", "1.1.0", actor="carol")
    code, _, err = modelreg(capsys, "promote", "loner", "1.2.0", actor="dave")
    assert code == 1 and "loner already has request #1 for loner@1.1.0 by alice, pending until" in err

    code, rejected, _ = modelreg(capsys, "reject", "loner", "1.1.0", "--reason", "wait for the storm data",
                                 actor="carol")

    assert code == 0 and (rejected["status"], rejected["decided_by"], rejected["decision_reason"]) == (
        "REJECTED", "carol", "wait for the storm data")
    code, _, err = modelreg(capsys, "approve", "loner", "1.1.0", actor="bob")
    assert code == 1 and "loner@1.1.0 has no pending promotion request to approve" in err
    assert modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")[0] == 0  # a new request may be made
    listed = modelreg(capsys, "approvals", "list", "loner", "--all")[1]
    assert [(r["id"], r["status"]) for r in listed] == [(2, "PENDING"), (1, "REJECTED")]
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_an_expired_request_cannot_be_approved_and_the_next_request_records_it(registry, capsys, candidate,
                                                                             monkeypatch):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", str(1 / 3600))  # one second
    modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")
    time.sleep(1.2)

    code, _, err = modelreg(capsys, "approve", "loner", "1.1.0", actor="bob")

    assert code == 1 and "request #1 for loner@1.1.0 expired at" in err and "run `modelreg promote loner 1.1.0` " \
                                                                             "again" in err
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")
    assert [r["status"] for r in modelreg(capsys, "approvals", "list", "loner")[1]] == ["EXPIRED"]
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", "24")
    assert modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")[0] == 0
    assert _requests(registry) == [("1.1.0", "EXPIRED", "alice", None, False), ("1.1.0", "PENDING", "alice", None,
                                                                                 False)]
    assert registry.query("SELECT action, details->'after'->>'status' FROM detection_model_transitions"
                          " WHERE action IN ('expire', 'request_promotion') ORDER BY id") == [
        ("request_promotion", "PENDING"), ("expire", "EXPIRED"), ("request_promotion", "PENDING")]


def test_force_under_approvals_still_needs_the_second_person(registry, capsys, candidate):
    code, _, err = modelreg(capsys, "promote", "loner", "1.2.0", actor="alice")  # 1.2.0 never ran
    assert code == 1 and "min_cycles needs >= 3, measured 0" in err and _requests(registry) == []

    code, requested, _ = modelreg(capsys, "promote", "loner", "1.2.0", "--force", "--reason", "incident 42",
                                  actor="alice")

    assert code == 0 and requested["request"]["forced"] is True
    assert _state(registry)[0] == ("1.0.0", "ACTIVE", "PRIMARY")
    code, approved, _ = modelreg(capsys, "approve", "loner", "1.2.0", actor="bob")
    assert code == 0 and approved["forced"] is True and _state(registry)[2] == ("1.2.0", "ACTIVE", "PRIMARY")


def test_rollback_to_a_version_that_never_was_primary_is_a_promotion_under_approval(registry, capsys, candidate):
    code, _, err = modelreg(capsys, "rollback", "loner", "--to", "1.2.0", actor="alice")
    assert code == 1 and "loner@1.2.0 has never been the PRIMARY, and loner's promotions need approval" in err

    modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")
    modelreg(capsys, "approve", "loner", "1.1.0", actor="bob")
    assert modelreg(capsys, "rollback", "loner", "--to", "1.0.0", actor="alice")[0] == 0  # it was PRIMARY before


def test_approvals_off_promotes_directly_again_and_every_setting_change_is_audited(registry, capsys, candidate):
    assert modelreg(capsys, "approvals", "set", "loner", "off", "--reason", "team of one", actor="alice")[0] == 0
    assert modelreg(capsys, "promote", "loner", "1.1.0", actor="alice")[1]["promoted"] == "1.1.0"
    assert modelreg(capsys, "approvals", "set", "nobody", "on")[0] == 1
    assert registry.query("SELECT action, actor, reason, details->'after'->>'required' FROM"
                          " detection_model_transitions WHERE action = 'approvals' ORDER BY id") == [
        ("approvals", "alice", None, "true"), ("approvals", "alice", "team of one", "false")]


# --- --check: for CI, evaluates everything and changes nothing ----------------------------

def test_promote_check_exits_0_or_1_with_the_figures_and_changes_nothing(registry, capsys, candidate):
    before = registry.snapshot()

    code, passed, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check", actor="alice")
    code_failed, failed_out, _ = modelreg(capsys, "promote", "loner", "1.2.0", "--check", actor="alice")
    text_code, text, _ = modelreg_text(capsys, "promote", "loner", "1.2.0", "--check")
    primary_code, primary_text, _ = modelreg_text(capsys, "promote", "loner", "1.0.0", "--check")

    assert registry.snapshot() == before
    assert code == 0 and passed["passed"] is True and passed["approval_required"] is True
    assert {g["name"] for g in passed["gates"]} == {"min_cycles", "max_failure_rate"}
    assert code_failed == 1
    failed = json.loads(failed_out)
    assert failed["passed"] is False and {g["name"]: g["passed"] for g in failed["gates"]} == {
        "min_cycles": False, "max_failure_rate": False}
    assert text_code == 1 and "min_cycles" in text and "FAIL" in text and \
        "check FAILED: promote of loner@1.2.0 would be refused; nothing was changed" in text
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
        {"name": "tag:validated", "threshold": "validated=true", "actual": "missing", "passed": False}]
    assert code_primary == 1 and json.loads(primary)["problems"] == [  # tags would pass, the role change not
        "loner@1.0.0 is the ACTIVE PRIMARY: its downstream models would stop. Promote another version first, "
        "or use --force"]
