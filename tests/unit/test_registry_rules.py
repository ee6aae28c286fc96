"""The registry's pure rules: tags and metadata, stage checks, who may decide a request, and
the order of `best` (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models_core import BaseDetectionModel
from models_core.registry.actors import Actor, ActorKind, person_permissions, service
from models_core.registry.approvals import (
    ApprovalError,
    ApprovalRequest,
    check_approver,
    check_decidable,
    counted_approvals,
)
from models_core.registry.guards import ApprovalSetting
from models_core.registry.metadata import MetadataError, check_metadata, parse_tag_assignments, parse_tag_filter
from models_core.registry.ranking import Candidate, rank_versions
from models_core.registry.stage_checks import StageCheckPolicy, evaluate_stage_checks
from models_core.store.registry_reader import VersionRecord

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _version(**fields) -> VersionRecord:
    row = {
        "id": 1,
        "model_id": "m",
        "version": "1.0.0",
        "status": "DRAFT",
        "role": "SHADOW",
        "params": {},
        "description": None,
        "created_at": NOW,
        "updated_at": NOW,
        "tags": {},
        "metadata": {},
    }
    return VersionRecord(**{**row, **fields})


def test_tag_assignments_are_parsed_and_checked():
    assert parse_tag_assignments(["validated=true", "url=a=b", "empty="], "m@1") == {
        "validated": "true",
        "url": "a=b",
        "empty": "",
    }
    assert parse_tag_filter("team") == ("team", None) and parse_tag_filter("team=sea") == ("team", "sea")
    for bad, message in (
        (["novalue"], "needs a value"),
        (["-x=1"], "is not allowed"),
        ([f"k={'v' * 257}"], "257 characters"),
        (["k=a\x00b"], "NUL character"),
        ([], "no tags given"),
    ):
        with pytest.raises(MetadataError, match=message):
            parse_tag_assignments(bad, "m@1")


def test_metadata_documented_keys_have_their_shape_and_others_are_free():
    document = {
        "framework": {"name": "torch", "version": "2.4"},
        "dependencies": {"numpy": "2.1"},
        "anything": [1, {"nested": True}],
    }
    assert check_metadata(document, "m@1") is document
    with pytest.raises(MetadataError, match=r"dependencies\.numpy: 2\.1 is not of type 'string'"):
        check_metadata({"dependencies": {"numpy": 2.1}}, "m@1")
    with pytest.raises(MetadataError, match="must be a JSON object, got list"):
        check_metadata([], "m@1")
    with pytest.raises(MetadataError, match="NUL character"):
        check_metadata({"free": {"k\x00": 1}}, "m@1")


def test_stage_checks_report_requirement_and_finding_for_each():
    policy = StageCheckPolicy(required_tags=("validated=true", "owner"), require_description=True)
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}

    checks = evaluate_stage_checks(_version(description="  ", tags={"validated": "yes"}), policy, schema, "M")

    assert [(c.name, c.threshold, c.actual, c.passed) for c in checks] == [
        ("description", "present", "none", False),
        ("tag:validated", "validated=true", "validated=yes", False),
        ("tag:owner", "owner set", "missing", False),
        ("params_schema", "params valid against M.params_schema", "params: 'n' is a required property", False),
    ]
    good = _version(description="why", tags={"validated": "true", "owner": "ops"}, params={"n": 1})
    assert all(c.passed for c in evaluate_stage_checks(good, policy, schema, "M"))
    assert evaluate_stage_checks(good, StageCheckPolicy(), None, "") == []


def test_params_problems_beyond_three_are_counted():
    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcde"}}
    (check,) = evaluate_stage_checks(_version(params={k: "x" for k in "abcde"}), StageCheckPolicy(), schema, "M")
    assert check.actual.endswith("; and 2 more") and check.actual.count("is not of type") == 3


def test_a_model_class_with_a_broken_params_schema_is_refused_when_defined():
    with pytest.raises(ValueError, match=r"Broken: params_schema is not a valid JSON Schema at properties/n/type"):
        type(
            "Broken",
            (BaseDetectionModel,),
            {"model_id": "broken", "params_schema": {"properties": {"n": {"type": "integr"}}}},
        )
    with pytest.raises(ValueError, match="must be a JSON Schema \\(a dict\\), got list"):
        type("Listed", (BaseDetectionModel,), {"model_id": "listed", "params_schema": []})


def _request(status: str = "PENDING", by: str = "alice", approvals: tuple[str, ...] = ()) -> ApprovalRequest:
    return ApprovalRequest(
        7,
        "m",
        "promote",
        1,
        "1.1.0",
        None,
        status,
        by,
        "person",
        NOW,
        NOW,
        None,
        False,
        False,
        168.0,
        [],
        [],
        None,
        None,
        None,
        None,
        list(approvals),
    )


def _person(name: str) -> Actor:
    return Actor(name, ActorKind.PERSON, person_permissions(may_edit=True, may_govern=False))


def test_only_a_person_other_than_the_requester_approves_and_only_once():
    request = check_decidable(_request(), "m", "1.1.0", "approve")
    assert request.id == 7 and check_decidable(_request(), "m", None, "reject").id == 7
    check_approver(_person("bob"), request, ApprovalSetting(True))
    for name in ("alice", "ALICE"):
        with pytest.raises(ApprovalError, match=f"{name} cannot approve request #7 for m@1.1.0: they made it"):
            check_approver(_person(name), request, ApprovalSetting(True))
    with pytest.raises(ApprovalError, match="bob already approved request #7 for m@1.1.0; it needs 1 more"):
        check_approver(_person("bob"), _request(approvals=("bob",)), ApprovalSetting(True, (), 2))
    with pytest.raises(ApprovalError, match=r"carol is not among the approvers of m \(bob, dave\)"):
        check_approver(_person("carol"), request, ApprovalSetting(True, ("bob", "dave"), 1))
    with pytest.raises(ApprovalError, match="service ci cannot approve request #7 for m@1.1.0: only a person"):
        check_approver(service("ci"), request, ApprovalSetting(True))
    with pytest.raises(ApprovalError, match="expired at 2026-11-25T10:00:00\\+00:00"):
        check_decidable(_request("EXPIRED"), "m", "1.1.0", "approve")
    with pytest.raises(
        ApprovalError,
        match=r"m@1.2.0 has no pending request to approve "
        r"\(request #7 for m@1.1.0 is waiting instead\)",
    ):
        check_decidable(_request(), "m", "1.2.0", "approve")
    with pytest.raises(ApprovalError, match="m@1.1.0 has no pending request to reject"):
        check_decidable(None, "m", "1.1.0", "reject")


def test_only_the_named_approvers_approvals_count():
    request = _request(approvals=("bob", "zed"))
    assert counted_approvals(request, ApprovalSetting(True, ("bob", "carol"), 2)) == ["bob"]
    assert counted_approvals(request, ApprovalSetting(True, (), 2)) == ["bob", "zed"]


def _candidate(version: str, mean: float | None, cycles: int = 5, failed: int = 0) -> Candidate:
    return Candidate(version, "ACTIVE", "SHADOW", cycles, failed, mean, cycles, 0)


def test_ranking_breaks_ties_by_failure_rate_then_cycles_then_the_order_given():
    given = [
        _candidate("3.0.0", 0.5),
        _candidate("2.0.0", 0.5, cycles=9),
        _candidate("1.2.0", 0.5, failed=1),
        _candidate("1.1.0", 0.9, cycles=1),
        _candidate("1.0.0", None),
        _candidate("0.9.0", 0.5),
    ]

    ranked, excluded = rank_versions(given, min_cycles=2, lower_is_better=False)

    assert [c.version for c in ranked] == ["2.0.0", "3.0.0", "0.9.0", "1.2.0"]
    assert [(c.version, why) for c, why in excluded] == [
        ("1.1.0", "1 cycle, fewer than 2"),
        ("1.0.0", "no values of the metric"),
    ]
    assert [c.version for c in rank_versions(given, min_cycles=0, lower_is_better=True)[0]] == [
        "2.0.0",
        "3.0.0",
        "0.9.0",
        "1.2.0",
        "1.1.0",
    ]


def test_an_expired_request_is_neither_approved_nor_rejected():
    with pytest.raises(ApprovalError, match="it can no longer be approved, so there is nothing to reject"):
        check_decidable(_request("EXPIRED"), "m", "1.1.0", "reject")
