"""The one transition policy: what every change of a version's status or role requires. Pure.

Every path that moves a version (``modelreg``, the registry API and page, an approval, the
self-healing review) reads the facts in its transaction and asks :func:`decide`, which
answers from :data:`RULES` (the table below) and the PRIMARY rule; nothing else decides.

Entering PRIMARY is the rule that matters most. A version becomes the ACTIVE PRIMARY only:

- **gated**: ``promote`` with its stage checks and quality gates passing, on a model whose
  promotions need no approval;
- **approved**: on a model under approval, an approved request (made by ``promote``, its
  figures re-checked when the last approval comes in);
- **restore**: ``rollback`` to a version that was the model's PRIMARY before, or
  ``reactivate`` of the very version that was the ACTIVE PRIMARY when it went to ERROR;
- **forced**: past failing figures, by an actor permitted to force, with a reason (and on a
  model under approval still only as a request another person approves).

A version in ERROR is never promoted (``reactivate`` brings it back), nor is an ARCHIVED one
without force; reactivating into PRIMARY anything but the PRIMARY that errored is a promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models_core.errors import ModelRegistryError
from models_core.registry.actors import Actor, Permission

PRIMARY = "PRIMARY"
SHADOW_ROLES = ("SHADOW", "CHALLENGER")
STATUSES = frozenset({"DRAFT", "ACTIVE", "INACTIVE", "ARCHIVED", "ERROR"})


class TransitionRefused(ModelRegistryError):
    """The policy refuses the change; the message says why and what to do instead."""


class FiguresFailed(TransitionRefused):
    """The stage checks (or gates) fail and nothing may pass them: the caller reports the figures."""


class Basis(StrEnum):
    """Why a version may become the ACTIVE PRIMARY (recorded on its audit row)."""

    GATED = "gated"
    APPROVED = "approved"
    RESTORE = "restore"
    FORCED = "forced"


class Requirement(StrEnum):
    STAGE_CHECKS = "stage checks"
    GATES = "quality gates"
    APPROVAL = "approval (where the model requires it)"
    RESTORE = "was the model's PRIMARY before"


@dataclass(frozen=True)
class Rule:
    """One row of the policy: an action, the statuses it leaves, where it goes, what it needs.

    ``to_role`` is ``"same"`` (the version keeps its role), ``"given"`` (one of ``roles``, the
    caller's) or a role. ``retires_primary``: the version may be the ACTIVE PRIMARY only with
    FORCE and a reason (its downstream models would stop), or never (None).
    """

    action: str
    leaves: frozenset[str]
    to_status: str
    to_role: str
    requires: frozenset[Requirement]
    permissions: tuple[Permission, ...]  # any one of them will do
    roles: tuple[str, ...] = ()
    retires_primary: bool | None = True


_ALL = STATUSES
RULES: dict[str, Rule] = {
    rule.action: rule
    for rule in (
        Rule(
            "activate",
            _ALL - {"ERROR"},
            "ACTIVE",
            "given",
            frozenset({Requirement.STAGE_CHECKS}),
            (Permission.REQUEST,),
            roles=SHADOW_ROLES,
            retires_primary=None,
        ),
        Rule("deactivate", _ALL, "INACTIVE", "same", frozenset(), (Permission.REQUEST,)),
        Rule("archive", _ALL, "ARCHIVED", "same", frozenset(), (Permission.REQUEST,)),
        Rule(
            "promote",
            _ALL - {"ERROR"},
            "ACTIVE",
            PRIMARY,
            frozenset({Requirement.STAGE_CHECKS, Requirement.GATES, Requirement.APPROVAL}),
            (Permission.REQUEST,),
        ),
        Rule(
            "approve",
            _ALL - {"ERROR"},
            "ACTIVE",
            PRIMARY,
            frozenset({Requirement.STAGE_CHECKS, Requirement.GATES, Requirement.APPROVAL}),
            (Permission.APPROVE,),
        ),
        Rule(
            "rollback",
            _ALL - {"ERROR"},
            "ACTIVE",
            PRIMARY,
            frozenset({Requirement.RESTORE}),
            (Permission.REQUEST, Permission.HEAL),
        ),
        Rule(
            "reactivate",
            frozenset({"ERROR"}),
            "ACTIVE",
            "given",
            frozenset({Requirement.STAGE_CHECKS}),
            (Permission.REQUEST,),
            roles=(PRIMARY, *SHADOW_ROLES),
        ),
        Rule("error", frozenset({"ACTIVE"}), "ERROR", "same", frozenset(), (Permission.HEAL,), retires_primary=False),
    )
}


@dataclass(frozen=True)
class Facts:
    """What the policy decides on, read by the caller inside the change's transaction.

    ``figures_pass``: the stage checks pass and, for a change into PRIMARY, the gates too.
    ``request_forced``: for ``approve``, the request was made forced past failing figures.
    """

    label: str
    status: str
    role: str
    approval_required: bool = False
    other_primary: str | None = None
    was_primary: bool = False
    primary_when_errored: bool = False
    errored_since_primary: bool = False  # went to ERROR, not as the PRIMARY, after it was last the PRIMARY
    figures_pass: bool = True
    request_forced: bool = False

    @property
    def is_active_primary(self) -> bool:
        return self.status == "ACTIVE" and self.role == PRIMARY


@dataclass(frozen=True)
class Decision:
    """What the change does: the version's new state and, into PRIMARY, on what basis.

    ``request``: nothing changes now; a request for a second person is recorded instead.
    ``forced``: failing figures were passed by force (recorded with the reason).
    """

    action: str
    to_status: str
    to_role: str
    basis: Basis | None
    request: bool = False
    forced: bool = False


def problems(action: str, facts: Facts, *, role: str | None = None) -> list[str]:
    """What no figure can fix about ``action`` now: ``--check`` prints them, ``decide`` refuses them."""
    return [text for text, _forceable in _problems(action, facts, role)]


def _problems(action: str, facts: Facts, role: str | None) -> list[tuple[str, bool]]:
    """(problem, whether force passes it): of these, force passes only promoting an ARCHIVED version."""
    rule = RULES[action]
    label, model, version = facts.label, _model(facts.label), _version(facts.label)
    target_role = _target_role(rule, facts, role)
    found: list[tuple[str, bool]] = []
    if rule.roles and target_role not in rule.roles:
        found.append(
            (
                f"{action} takes --role {' or '.join(rule.roles)}, not {target_role!r}"
                + ("; use `modelreg promote` to make a version the PRIMARY" if action == "activate" else ""),
                False,
            )
        )
    if facts.status not in rule.leaves:
        found.append((_cannot_leave(action, facts), False))
    elif rule.to_status == "ACTIVE" and target_role == PRIMARY and facts.is_active_primary:
        found.append((f"{label} is already the ACTIVE PRIMARY", False))
    elif action == "rollback" and not facts.was_primary:
        found.append(
            (
                f"{label} has never been the PRIMARY: making it the PRIMARY is a promotion "
                f"(`modelreg promote {model} {version}`, behind its gates"
                + (" and approval)" if facts.approval_required else ")"),
                False,
            )
        )
    elif action == "rollback" and facts.errored_since_primary:
        found.append(
            (
                f"{label} went to ERROR after it was last the PRIMARY (as a {facts.role}): making it the "
                f"PRIMARY again is a promotion (`modelreg reactivate {model} {version} --role SHADOW`, then "
                f"`modelreg promote`)",
                False,
            )
        )
    elif action == "reactivate" and target_role == PRIMARY and facts.other_primary:
        found.append(
            (
                f"{model}@{facts.other_primary} is the ACTIVE PRIMARY now; reactivate {version} with "
                f"--role SHADOW (then promote it), or deactivate {facts.other_primary} first",
                False,
            )
        )
    elif (
        action == "reactivate" and target_role == PRIMARY and not facts.primary_when_errored and facts.approval_required
    ):
        found.append(
            (
                f"{label} was not the ACTIVE PRIMARY when it went to ERROR, so making it the PRIMARY is a "
                f"promotion, and {model}'s promotions need approval: reactivate it with --role SHADOW, then "
                f"`modelreg promote {model} {version}` makes the request",
                False,
            )
        )
    elif rule.retires_primary is None and facts.is_active_primary:
        found.append((_primary_guard(label), False))
    elif action in ("promote", "approve") and facts.status == "ARCHIVED":
        found.append((f"{label} is ARCHIVED; activate it first or use --force --reason", action == "promote"))
    return found


def decide(
    action: str, facts: Facts, actor: Actor, *, role: str | None = None, force: bool = False, reason: str | None = None
) -> Decision:
    """The change ``actor`` may make, or :class:`TransitionRefused` saying why not.

    :class:`FiguresFailed` means only the figures stand in the way (the caller has them and
    reports them); force passes them for an actor permitted to force, with a reason.
    """
    rule = RULES[action]
    actor.require_any(rule.permissions, f"{action} {facts.label}")
    if force:
        actor.require(Permission.FORCE, f"force {action} of {facts.label}")
        if not (reason or "").strip():
            raise TransitionRefused(f"--force needs --reason: a forced {action} is recorded with why")
    refused = [text for text, forceable in _problems(action, facts, role) if not (force and forceable)]
    if refused:
        raise TransitionRefused(refused[0])
    if rule.retires_primary and facts.is_active_primary and not force:
        raise TransitionRefused(_primary_guard(facts.label))
    to_role = _target_role(rule, facts, role)
    if rule.to_status != "ACTIVE" or to_role != PRIMARY:
        if not facts.figures_pass:
            raise FiguresFailed(action)
        return Decision(action, rule.to_status, to_role, None)
    return _into_primary(rule, facts, force)


def _into_primary(rule: Rule, facts: Facts, force: bool) -> Decision:
    """The PRIMARY rule: restore, approved, gated or forced; a request under approval."""
    action = rule.action
    restore = (action == "rollback" and facts.was_primary) or (action == "reactivate" and facts.primary_when_errored)
    if restore:
        if action == "reactivate" and not facts.figures_pass:  # its stage checks, as any reactivation
            raise FiguresFailed(action)
        return Decision(action, "ACTIVE", PRIMARY, Basis.RESTORE)
    figures_pass = facts.figures_pass or (action == "approve" and facts.request_forced)
    if not figures_pass and not force:
        raise FiguresFailed(action)
    forced = not facts.figures_pass
    if action == "approve":
        return Decision(action, "ACTIVE", PRIMARY, Basis.APPROVED, forced=forced)
    if facts.approval_required:
        return Decision(action, "ACTIVE", PRIMARY, Basis.APPROVED, request=True, forced=forced)
    return Decision(action, "ACTIVE", PRIMARY, Basis.FORCED if forced else Basis.GATED, forced=forced)


def decide_guard_change(actor: Actor, approval_required: bool, model_id: str) -> bool:
    """Whether a change of what guards ``model_id`` applies now (True) or waits as a request.

    On a model under approval it needs a second person, unless ``actor`` may govern.
    """
    actor.require(Permission.REQUEST, f"change what guards {model_id}")
    return not approval_required or actor.may(Permission.GOVERN)


def _target_role(rule: Rule, facts: Facts, role: str | None) -> str:
    if rule.to_role == "same":
        return facts.role
    if rule.to_role == "given":
        return role or facts.role
    return rule.to_role


def _cannot_leave(action: str, facts: Facts) -> str:
    label = facts.label
    if facts.status == "ERROR":
        return (
            f"{label} is in ERROR and cannot be {'promoted' if action in ('promote', 'approve') else action + 'd'}"
            f": `modelreg reactivate {_model(label)} {_version(label)}` brings it back first"
        )
    if action == "reactivate":
        return (
            f"{label} is {facts.status}, not ERROR: reactivate brings back a version the product took out of "
            "service (see `modelreg activate`)"
        )
    return f"{label} is {facts.status}: {action} does not apply"


def _primary_guard(label: str) -> str:
    return (
        f"{label} is the ACTIVE PRIMARY: its downstream models would stop. "
        "Promote another version first, or use --force"
    )


def _model(label: str) -> str:
    return label.rsplit("@", 1)[0]


def _version(label: str) -> str:
    return label.rsplit("@", 1)[1]
