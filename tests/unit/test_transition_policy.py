"""The one transition policy, as a table: every (state, action) pair and what it requires. Pure."""

from __future__ import annotations

import itertools

import pytest

from models_core.registry.actors import (
    SYSTEM,
    Actor,
    ActorKind,
    Permission,
    PermissionDenied,
    person_permissions,
    service,
)
from models_core.registry.transitions import (
    RULES,
    STATUSES,
    Basis,
    Facts,
    FiguresFailed,
    TransitionRefused,
    decide,
    decide_guard_change,
)

ROLES = ("PRIMARY", "SHADOW", "CHALLENGER")
GOVERNOR = Actor("alice", ActorKind.PERSON, person_permissions(may_edit=True, may_govern=True))
EDITOR = Actor("uma", ActorKind.PERSON, person_permissions(may_edit=True, may_govern=False))
VIEWER = Actor("victor", ActorKind.PERSON, person_permissions(may_edit=False, may_govern=False))


def facts(status: str, role: str, **more) -> Facts:
    return Facts(label="m@1.0.0", status=status, role=role, **more)


def test_only_the_listed_ways_lead_into_primary_and_each_names_its_basis():
    """Over every state, action and fact: a decision into ACTIVE PRIMARY has a basis, and that basis
    is backed by the facts (gated: figures pass and no approval needed; restore: it was PRIMARY
    before / when it errored; forced: a permitted actor forced it; approved: an approval)."""
    seen = set()
    for status, role, action, approval, was_primary, errored_primary, figures_pass, force in itertools.product(
        sorted(STATUSES),
        ROLES,
        sorted(RULES),
        (False, True),
        (False, True),
        (False, True),
        (False, True),
        (False, True),
    ):
        if errored_primary and status != "ERROR":
            continue
        given = facts(
            status,
            role,
            approval_required=approval,
            was_primary=was_primary,
            primary_when_errored=errored_primary,
            figures_pass=figures_pass,
        )
        actor = SYSTEM if action == "error" else GOVERNOR
        try:
            decision = decide(
                action,
                given,
                actor,
                role="PRIMARY" if action == "reactivate" else "SHADOW",
                force=force,
                reason="why" if force else None,
            )
        except (TransitionRefused, PermissionDenied):
            continue
        if (decision.to_status, decision.to_role) != ("ACTIVE", "PRIMARY") or decision.request:
            assert decision.basis is None or decision.request
            continue
        seen.add(decision.basis)
        assert status != "ERROR" or action == "reactivate"
        if decision.basis is Basis.RESTORE:
            assert (action, was_primary) == ("rollback", True) or (action, errored_primary) == ("reactivate", True)
        elif decision.basis is Basis.GATED:
            assert figures_pass and not approval and action in ("promote", "reactivate")
        elif decision.basis is Basis.FORCED:
            assert force and not figures_pass and not approval
        else:
            assert decision.basis is Basis.APPROVED and action == "approve"
    assert seen == set(Basis)


@pytest.mark.parametrize("action", ["promote", "approve", "rollback", "activate"])
def test_a_version_in_error_moves_only_through_reactivate(action):
    with pytest.raises(TransitionRefused, match="m@1.0.0 is in ERROR .* `modelreg reactivate m 1.0.0`"):
        decide(action, facts("ERROR", "SHADOW", was_primary=True), GOVERNOR, role="SHADOW", force=True, reason="r")


def test_reactivating_into_primary_is_a_restore_only_for_the_primary_that_errored():
    restore = decide(
        "reactivate", facts("ERROR", "PRIMARY", primary_when_errored=True, figures_pass=True), EDITOR, role="PRIMARY"
    )
    assert restore.basis is Basis.RESTORE
    with pytest.raises(FiguresFailed):  # an ex-SHADOW into PRIMARY is promoted: its gates must pass
        decide("reactivate", facts("ERROR", "SHADOW", figures_pass=False), EDITOR, role="PRIMARY")
    with pytest.raises(TransitionRefused, match="promotions need approval"):
        decide(
            "reactivate",
            facts("ERROR", "SHADOW", approval_required=True),
            GOVERNOR,
            role="PRIMARY",
            force=True,
            reason="r",
        )
    with pytest.raises(TransitionRefused, match="m@2.0.0 is the ACTIVE PRIMARY now"):
        decide(
            "reactivate",
            facts("ERROR", "PRIMARY", primary_when_errored=True, other_primary="2.0.0"),
            GOVERNOR,
            role="PRIMARY",
        )


def test_under_approval_a_promotion_is_a_request_even_forced():
    decision = decide(
        "promote",
        facts("ACTIVE", "SHADOW", approval_required=True, figures_pass=False),
        GOVERNOR,
        force=True,
        reason="incident",
    )
    assert decision.request and decision.forced


def test_force_needs_the_permission_and_a_reason():
    with pytest.raises(PermissionDenied, match="uma may not force promote of m@1.0.0"):
        decide("promote", facts("ACTIVE", "SHADOW", figures_pass=False), EDITOR, force=True, reason="r")
    with pytest.raises(TransitionRefused, match="--force needs --reason"):
        decide("promote", facts("ACTIVE", "SHADOW", figures_pass=False), GOVERNOR, force=True)
    with pytest.raises(TransitionRefused, match="is the ACTIVE PRIMARY: its downstream models would stop"):
        decide("deactivate", facts("ACTIVE", "PRIMARY"), GOVERNOR)
    assert decide("deactivate", facts("ACTIVE", "PRIMARY"), GOVERNOR, force=True, reason="r").to_status == "INACTIVE"


def test_who_may_do_what():
    with pytest.raises(PermissionDenied, match="victor may not promote"):
        decide("promote", facts("ACTIVE", "SHADOW"), VIEWER)
    with pytest.raises(PermissionDenied, match="may not approve"):
        decide("approve", facts("ACTIVE", "SHADOW"), service("ci"))
    with pytest.raises(PermissionDenied, match="may not error"):
        decide("error", facts("ACTIVE", "SHADOW"), GOVERNOR)
    with pytest.raises(PermissionDenied):  # the review may roll back, never promote
        decide("promote", facts("ACTIVE", "SHADOW"), SYSTEM)
    assert decide("rollback", facts("INACTIVE", "PRIMARY", was_primary=True), SYSTEM).basis is Basis.RESTORE
    assert Permission.APPROVE not in service("ci", frozenset(Permission)).permissions


def test_a_guard_change_of_a_model_under_approval_needs_a_second_person_unless_governed():
    assert decide_guard_change(EDITOR, False, "m") is True
    assert decide_guard_change(EDITOR, True, "m") is False
    assert decide_guard_change(GOVERNOR, True, "m") is True
    assert decide_guard_change(service("ci"), True, "m") is False
    with pytest.raises(PermissionDenied):
        decide_guard_change(VIEWER, False, "m")
