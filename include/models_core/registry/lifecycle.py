"""Versions and their transitions: register, activate, promote, rollback, ERROR and back.

Versions move DRAFT -> ACTIVE (SHADOW/CHALLENGER, behind the model's stage checks) ->
PRIMARY (by ``promote``, behind the stage checks and quality gates, and a second person's
approval where the model asks for one) -> ARCHIVED/INACTIVE; the product moves a version
that keeps failing to ERROR and ``reactivate`` brings it back. Every change of a version's
status or role reads its facts in the model's change transaction and asks the one
transition policy (:func:`~models_core.registry.transitions.decide`); this module carries
out what it decides, audited with the basis on which a version became the PRIMARY.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg2.extensions import cursor as PgCursor

from models_core.model import Role, check_model_id
from models_core.registry.actors import Permission
from models_core.registry.approvals import ApprovalRequest
from models_core.registry.evidence import ChecksFailed, GateCheck, GatesFailed, Readiness
from models_core.registry.metadata import MetadataError, check_json_text, check_text
from models_core.registry.session import LifecycleError, find_version, semver_key
from models_core.registry.stage_checks import StageCheck
from models_core.registry.transitions import Basis, Decision, Facts, FiguresFailed, decide, problems
from models_core.store.registry_reader import VersionRecord, VersionState
from models_core.store.sql_files import fetch_value, queries

if TYPE_CHECKING:
    from models_core.registry.model_registry import ModelRegistry

_SQL = "registry/lifecycle.sql"
#: The longest version string the table holds.
VERSION_MAX_LEN = 32
_HISTORY_KEYS = (
    "id",
    "at",
    "model_id",
    "version_id",
    "version",
    "action",
    "from_status",
    "to_status",
    "from_role",
    "to_role",
    "actor",
    "actor_kind",
    "reason",
    "gates",
    "source",
    "db_user",
    "details",
    "basis",
    "request_id",
)
#: The columns of :meth:`Lifecycle.status_history`: those of a transition that move a version.
_STATUS_KEYS = ("id", "at", "version_id", "version", "action", "from_status", "to_status", "from_role", "to_role")
#: The columns of the ``primary_at`` rows :meth:`Lifecycle.primary_at` replays.
_PRIMARY_AT_KEYS = ("version", "from_status", "to_status", "to_role")


@dataclass(frozen=True)
class Judgment:
    """What the self-healing review read of a version when it judged it: its state and its last
    audit row. The review acts only while both are still so (compare-and-set)."""

    version_id: int
    status: str
    role: str
    last_transition: int | None


@dataclass
class Promotion:
    """What a change into PRIMARY did: the new PRIMARY, what became of the previous one, and why it was allowed."""

    model_id: str
    promoted: str
    previous: str | None
    previous_now: str | None
    forced: bool
    basis: str = Basis.GATED.value
    gates: list[GateCheck] = field(default_factory=list)
    checks: list[StageCheck] = field(default_factory=list)


class Lifecycle:
    """Reads of versions and their history, and every change of a version's status or role."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.session = registry.session

    # ---- reading ----------------------------------------------------------------------

    def versions(self, model_id: str | None = None, tags: Iterable[tuple[str, str | None]] = ()) -> list[VersionRecord]:
        """Versions of one model (or all), newest version first within a model (see :class:`RegistrySession`)."""
        return self.session.versions(model_id, tags)

    def history(self, model_id: str) -> list[dict[str, Any]]:
        """Every recorded transition of the model, oldest first."""
        return [
            dict(zip(_HISTORY_KEYS, row)) for row in self.session.fetch("transitions", {"model_id": model_id}, _SQL)
        ]

    def history_json(self, model_id: str) -> list[str]:
        """:meth:`history`'s rows, each as JSON text PostgreSQL writes (for the API, which passes
        them on: a model's trail is hundreds of rows, most of its page). The values are
        :meth:`history`'s; ``at`` is PostgreSQL's ISO 8601, whose fraction of a second drops
        its trailing zeros (``07:12:00.5+00:00``, where Python writes ``.500000``)."""
        return self.session.fetch_json("transitions", {"model_id": model_id}, _SQL, order_by=("at", "id"))

    def error_reasons(self, model_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Why each version of ``model_ids`` in ERROR went there: the reason, time and actor of the
        latest transition that moved it into ERROR (the review's failures, or whoever marked
        it), by model and version."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        if not model_ids:
            return found
        for model_id, version, reason, at, actor in self.session.fetch("error_reasons", {"models": model_ids}, _SQL):
            found.setdefault(model_id, {})[version] = {"reason": reason, "at": at, "actor": actor}
        return found

    def primary_at(self, model_id: str, at: datetime) -> str | None:
        """Which version was the ACTIVE PRIMARY at ``at``: the transitions up to ``at`` replayed
        with :func:`primary_after`, from the last one into PRIMARY on, and of those only its
        version's (nothing else can change the answer). A model's trail is hundreds of rows;
        reading them all was most of the request. One statement reads them, so the answer is
        that of one state of the trail, whatever is written meanwhile."""
        primary = None
        for row in self.session.fetch("primary_at", {"model_id": model_id, "at": at}, _SQL):
            primary = primary_after(primary, dict(zip(_PRIMARY_AT_KEYS, row)))
        return primary

    def status_history(self, model_id: str) -> list[dict[str, Any]]:
        """The model's transitions, oldest first, with only the columns that say which version
        moved and how (:data:`_STATUS_KEYS`): what the transition policy replays, a few hundred
        rows without their JSON."""
        rows = self.session.fetch("status_history", {"model_id": model_id}, _SQL)
        return [dict(zip(_STATUS_KEYS, row)) for row in rows]

    # ---- changing ---------------------------------------------------------------------

    def register(self, model_id: str, version: str, params: dict[str, Any], description: str | None = None) -> int:
        """Add a DRAFT version; it runs once activated."""
        try:
            check_model_id(model_id, "register")
        except ValueError as exc:
            raise LifecycleError(str(exc)) from None
        semver_key(version)
        if len(version) > VERSION_MAX_LEN:
            raise LifecycleError(f"version {version!r} is {len(version)} characters, at most {VERSION_MAX_LEN}")
        if not isinstance(params, dict):
            raise LifecycleError(f"params of {model_id}@{version} must be a JSON object, got {type(params).__name__}")
        check_json_text(params, f"params of {model_id}@{version}")
        try:
            params_json = json.dumps(params, allow_nan=False)
        except ValueError as exc:  # NaN and Infinity are not JSON, and jsonb refuses them
            raise MetadataError(f"params of {model_id}@{version} hold a value JSON cannot: {exc}") from None
        if description is not None:
            check_text(description, f"the description of {model_id}@{version}")
        self.session.actor.require(Permission.REQUEST, f"register {model_id}@{version}")
        with self.session.change(model_id) as cur:
            if any(v.version == version for v in self.session.locked_versions(cur, model_id)):
                raise LifecycleError(f"{model_id}@{version} is already registered")
            self.session.context(cur, "register")
            cur.execute(
                queries(_SQL)["insert_version"],
                {"model_id": model_id, "version": version, "params": params_json, "description": description},
            )
            version_id = fetch_value(cur)
        return version_id

    def activate(self, model_id: str, version: str, role: str, reason: str | None = None) -> list[StageCheck]:
        """Run a version as SHADOW or CHALLENGER (a PRIMARY comes only through ``promote``).

        The model's stage checks must pass; they are returned, and recorded with the change.
        A failing check raises :class:`ChecksFailed` with every check's figures;
        :meth:`check_activation` reports them without changing anything.
        """
        with self.session.change(model_id) as cur:
            versions = self.session.locked_versions(cur, model_id)
            target = find_version(versions, model_id, version)
            checks = self.registry.evidence.evaluate_stage_checks(target)
            facts = self._facts(target, versions, figures_pass=all(c.passed for c in checks))
            try:
                decision = decide("activate", facts, self.session.actor, role=role, reason=reason)
            except FiguresFailed:
                raise ChecksFailed(
                    f"activation of {target.label()}",
                    checks,
                    "Fix what fails (`modelreg tag`, `modelreg describe`, a version with valid "
                    "params) or change the model's checks (`modelreg checks`)",
                ) from None
            self._apply(cur, target, decision, reason, [asdict(c) for c in checks])
        return checks

    def check_activation(self, model_id: str, version: str, role: str) -> Readiness:
        """Everything ``activate`` would check, changing nothing (``activate --check``)."""
        states = self.session.version_states(model_id)
        target = self.session.version(model_id, version)
        facts = self._facts(target, states)
        found = problems("activate", facts, role=role)
        return self.registry.evidence.readiness(
            target, "activate", found, window=None, approval_required=facts.approval_required
        )

    def deactivate(self, model_id: str, version: str, reason: str | None = None, force: bool = False) -> None:
        self._retire("deactivate", model_id, version, reason, force)

    def archive(self, model_id: str, version: str, reason: str | None = None, force: bool = False) -> None:
        self._retire("archive", model_id, version, reason, force)

    def _retire(self, action: str, model_id: str, version: str, reason: str | None, force: bool) -> None:
        with self.session.change(model_id) as cur:
            versions = self.session.locked_versions(cur, model_id)
            target = find_version(versions, model_id, version)
            decision = decide(action, self._facts(target, versions), self.session.actor, force=force, reason=reason)
            self._apply(cur, target, decision, reason, None)

    def promote(
        self,
        model_id: str,
        version: str,
        *,
        window: timedelta,
        force: bool = False,
        reason: str | None = None,
        keep_previous_as_shadow: bool = False,
    ) -> Promotion | ApprovalRequest:
        """Make ``version`` the ACTIVE PRIMARY in one transaction, behind its checks and gates.

        The previous PRIMARY becomes ARCHIVED (or an ACTIVE SHADOW). A failing stage check or
        quality gate refuses the promotion unless ``force`` is given with a ``reason`` by an
        actor permitted to force; it is recorded. When the model's promotions need approval,
        no version changes: the promotion becomes a PENDING :class:`ApprovalRequest`
        (returned) holding the figures, which other people apply by approving it. ``force``
        then only lets the request be made past failing figures: it never skips them.
        """
        with self.session.change(model_id) as cur:
            versions = self.session.locked_versions(cur, model_id)
            target = find_version(versions, model_id, version)
            readiness = self._readiness(target, versions, window, "promote")
            facts = self._facts(target, versions, figures_pass=readiness.figures_pass)
            if facts.approval_required:
                self.registry.approvals.check_none_pending(cur, model_id)
            try:
                decision = decide("promote", facts, self.session.actor, force=force, reason=reason)
            except FiguresFailed:
                raise GatesFailed(target.label(), readiness) from None
            if decision.request:
                return self.registry.approvals.request_promotion(
                    cur, target, readiness, window, decision.forced, reason, keep_previous_as_shadow
                )
            return self._into_primary(cur, versions, target, decision, readiness, reason, keep_previous_as_shadow)

    def check_promotion(self, model_id: str, version: str, *, window: timedelta) -> Readiness:
        """Everything ``promote`` would check, changing nothing (``promote --check``): of the
        model's other versions, it reads where they stand only."""
        states = self.session.version_states(model_id)
        return self._readiness(self.session.version(model_id, version), states, window, "promote")

    def apply_approved(self, cur: PgCursor, request: ApprovalRequest, reason: str | None) -> Promotion:
        """Apply an approved promotion request in the approving transaction, its figures checked again now."""
        versions = self.session.locked_versions(cur, request.model_id)
        window = timedelta(hours=request.window_hours or 0)
        target = find_version(versions, request.model_id, request.version or "")
        readiness = self._readiness(target, versions, window, "approve")
        if target.id != request.version_id:  # never: a version keeps its number (0009); checked all the same
            raise LifecycleError(
                f"{request.label()} was made for version id {request.version_id}, and "
                f"{target.label()} is id {target.id}: reject it and make a new request"
            )
        facts = replace(
            self._facts(target, versions, figures_pass=readiness.figures_pass), request_forced=request.forced
        )
        try:
            decision = decide("approve", facts, self.session.actor)
        except FiguresFailed:
            raise ChecksFailed(
                f"approval of {request.label()}",
                [*readiness.checks, *readiness.gates],
                "The request stays pending: let the version run longer, or reject it",
            ) from None
        self.registry.approvals.decide_approved(cur, request, reason, readiness.figures_json())
        why = f"{request.label()} by {request.requested_by}, approved" + (
            f": {request.reason}" if request.reason else ""
        )
        return self._into_primary(
            cur, versions, target, decision, readiness, why, request.keep_previous_as_shadow, request_id=request.id
        )

    def rollback(
        self,
        model_id: str,
        reason: str | None = None,
        to: str | None = None,
        figures: dict[str, Any] | None = None,
        *,
        judged: Judgment | None = None,
    ) -> Promotion:
        """Restore an earlier PRIMARY; the current one becomes INACTIVE.

        Without ``to``: the most recent earlier PRIMARY that was never rolled back from
        (a version a rollback moved away from is known bad) and is not in ERROR. With
        ``to``: that version, if it was the model's PRIMARY before (anything else is a
        promotion) and is not in ERROR. Refuses, saying why, when there is nothing to go
        back to. ``figures`` (what triggered an automatic rollback) are recorded with the
        change; ``judged`` (the review's compare-and-set) is the PRIMARY as the caller judged
        it: if another is the PRIMARY now, or it changed since, nothing changes.
        """
        with self.session.change(model_id) as cur:
            return self._rollback_in(cur, model_id, reason, to, figures, judged)

    def _rollback_in(
        self,
        cur: PgCursor,
        model_id: str,
        reason: str | None,
        to: str | None,
        figures: dict[str, Any] | None,
        judged: Judgment | None,
    ) -> Promotion:
        versions = self.session.locked_versions(cur, model_id)
        current = next((v for v in versions if v.is_active_primary), None)
        if judged is not None and (current is None or not self._still_as_judged(current, judged)):
            raise StaleJudgment(
                f"{model_id}'s PRIMARY changed since it was judged "
                f"(now {current.version if current else 'none'}); nothing was rolled back"
            )
        history = self.history(model_id)
        if to is None:
            to = _rollback_target(model_id, current, versions, history)
        target = find_version(versions, model_id, to)
        decision = decide("rollback", self._facts(target, versions, history=history), self.session.actor, reason=reason)
        if current is not None:
            self._apply(cur, current, Decision("rollback", "INACTIVE", current.role, None), reason, figures)
        self._apply(cur, target, decision, reason, figures)
        return Promotion(
            model_id,
            target.version,
            current.version if current else None,
            "INACTIVE" if current else None,
            forced=False,
            basis=Basis.RESTORE.value,
        )

    def mark_error(
        self,
        model_id: str,
        version: str,
        reason: str,
        figures: dict[str, Any] | None = None,
        *,
        judged: Judgment | None = None,
    ) -> VersionRecord | None:
        """Move an ACTIVE version to ERROR, in its role: it stops running until reactivated.

        Returns the version as it was, or None (nothing changed) when it is not ACTIVE any
        more, or changed since ``judged`` when one is given, e.g. because an operator or an
        earlier review changed it after the judgment.
        """
        with self.session.change(model_id) as cur:
            return self._error_in(cur, model_id, version, reason, figures, judged)

    def _error_in(
        self,
        cur: PgCursor,
        model_id: str,
        version: str,
        reason: str,
        figures: dict[str, Any] | None,
        judged: Judgment | None,
    ) -> VersionRecord | None:
        versions = self.session.locked_versions(cur, model_id)
        target = find_version(versions, model_id, version)
        if target.status != "ACTIVE" or (judged is not None and not self._still_as_judged(target, judged)):
            return None
        decision = decide("error", self._facts(target, versions), self.session.actor)
        self._apply(cur, target, decision, reason, figures)
        return target

    def error_and_rollback(
        self, model_id: str, version: str, judged: Judgment, reason: str, figures: dict[str, Any], rollback_reason: str
    ) -> tuple[VersionRecord | None, Promotion | LifecycleError | None]:
        """The review's ERROR of a failing PRIMARY and the rollback it triggers, in one transaction.

        Acts only on what was judged: the version must still be as ``judged`` (its state and
        its last audit row: compare-and-set), else nothing changes and (None, None) is returned. When there is
        nothing to roll back to, the ERROR stands and the refusal is returned in place of
        the promotion, so the caller can say so.
        """
        with self.session.change(model_id) as cur:
            before = self._error_in(cur, model_id, version, reason, figures, judged)
            if before is None:
                return None, None
            try:  # a refused rollback refuses before it writes anything: the ERROR stands
                return before, self._rollback_in(cur, model_id, rollback_reason, None, figures, None)
            except LifecycleError as exc:
                return before, exc

    def reactivate(
        self,
        model_id: str,
        version: str,
        reason: str | None = None,
        role: str | None = None,
        *,
        window: timedelta = timedelta(hours=168),
        force: bool = False,
    ) -> VersionRecord:
        """Bring a version out of ERROR: ACTIVE again, in the role it had (or ``role``).

        Its failure count starts again from zero. Behind the model's stage checks, as an
        activation is. Into PRIMARY it is a restore only for the very version that was the
        ACTIVE PRIMARY when it went to ERROR (and only while the model has no other
        PRIMARY); any other version is promoted, gates over ``window`` and all, and on a
        model under approval is refused (reactivate it as SHADOW, then promote it).
        """
        with self.session.change(model_id) as cur:
            versions = self.session.locked_versions(cur, model_id)
            target = find_version(versions, model_id, version)
            into = role or target.role
            promotion_window = window if into == Role.PRIMARY.value else None
            readiness = self.registry.evidence.readiness(target, "reactivate", [], window=promotion_window)
            facts = self._facts(target, versions, figures_pass=readiness.figures_pass)
            if into == Role.PRIMARY.value and facts.primary_when_errored:
                facts = replace(facts, figures_pass=all(c.passed for c in readiness.checks))
            try:
                decision = decide("reactivate", facts, self.session.actor, role=into, force=force, reason=reason)
            except FiguresFailed:
                raise ChecksFailed(
                    f"reactivation of {target.label()}",
                    [*readiness.checks, *readiness.gates],
                    "Fix what fails or change the model's checks (`modelreg checks`)",
                ) from None
            self._apply(cur, target, decision, reason, readiness.figures_json())
        return replace(target, status=decision.to_status, role=decision.to_role)

    # ---- internals --------------------------------------------------------------------

    def _still_as_judged(self, version: VersionRecord, judged: Judgment) -> bool:
        """Whether ``version`` (locked) is what was judged: same version, state and last audit row."""
        ((last,),) = self.session.fetch("last_transition_of_version", {"version_id": version.id}, _SQL)
        return (version.id, version.status, version.role, last) == (
            judged.version_id,
            judged.status,
            judged.role,
            judged.last_transition,
        )

    def _readiness(
        self, target: VersionRecord, versions: Sequence[VersionState], window: timedelta, action: str
    ) -> Readiness:
        facts = self._facts(target, versions)
        found = problems(action, facts)
        return self.registry.evidence.readiness(
            target, "promote", found, window=window, approval_required=facts.approval_required
        )

    def _facts(
        self,
        target: VersionState,
        versions: Sequence[VersionState],
        *,
        figures_pass: bool = True,
        history: list[dict[str, Any]] | None = None,
    ) -> Facts:
        """What the policy needs to know about ``target``, read in the current transaction."""
        history = self.status_history(target.model_id) if history is None else history
        other = next((v for v in versions if v.is_active_primary and v.id != target.id), None)
        return Facts(
            label=target.label(),
            status=target.status,
            role=target.role,
            approval_required=self.registry.guards.approval(target.model_id).required,
            other_primary=other.version if other else None,
            was_primary=target.id in primary_ids(history),
            primary_when_errored=_was_primary_when_errored(target.id, history),
            errored_since_primary=target.id in errored_since_primary(history),
            figures_pass=figures_pass,
        )

    def _into_primary(
        self,
        cur: PgCursor,
        versions: list[VersionRecord],
        target: VersionRecord,
        decision: Decision,
        readiness: Readiness,
        reason: str | None,
        keep_previous_as_shadow: bool,
        *,
        request_id: int | None = None,
    ) -> Promotion:
        """The change into PRIMARY, inside the caller's transaction: ``promote`` and ``approve`` alike."""
        previous = next((v for v in versions if v.is_active_primary), None)
        figures = readiness.figures_json()
        previous_now = None
        if previous is not None:
            previous_now = "ACTIVE SHADOW" if keep_previous_as_shadow else "ARCHIVED"
            state = ("ACTIVE", Role.SHADOW.value) if keep_previous_as_shadow else ("ARCHIVED", previous.role)
            self._apply(cur, previous, Decision(decision.action, *state, None), reason, figures, request_id=request_id)
        self._apply(cur, target, decision, reason, figures, request_id=request_id)
        return Promotion(
            target.model_id,
            target.version,
            previous.version if previous else None,
            previous_now,
            forced=decision.forced,
            basis=str(decision.basis),
            gates=readiness.gates,
            checks=readiness.checks,
        )

    def _apply(
        self,
        cur: PgCursor,
        version: VersionRecord,
        decision: Decision,
        reason: str | None,
        figures: list[dict[str, Any]] | dict[str, Any] | None,
        *,
        request_id: int | None = None,
    ) -> None:
        action = "promote" if decision.action == "approve" else decision.action
        self.session.context(
            cur, action, reason, figures, basis=decision.basis.value if decision.basis else None, request_id=request_id
        )
        cur.execute(
            queries(_SQL)["set_status_role"], {"id": version.id, "status": decision.to_status, "role": decision.to_role}
        )


class StaleJudgment(LifecycleError):
    """The self-healing review judged a state that has changed since: it does not act on it."""


def primary_after(primary: str | None, event: dict[str, Any]) -> str | None:
    """The ACTIVE PRIMARY version after one transition, given the one before it.

    Only a version's own rows move it (those with a status before or after); the rows of
    requests, approvals and settings, which name a version too, never do.
    """
    if event["version"] is None or (event["from_status"] is None and event["to_status"] is None):
        return primary
    if enters_primary(event):
        return event["version"]
    if event["version"] == primary:
        return None
    return primary


def enters_primary(event: dict[str, Any]) -> bool:
    """Whether the transition made its version the ACTIVE PRIMARY."""
    return event["to_status"] == "ACTIVE" and event["to_role"] == Role.PRIMARY.value


def primary_ids(history: list[dict[str, Any]]) -> set[int]:
    """The ids of every version that has been the model's ACTIVE PRIMARY."""
    return {event["version_id"] for event in history if event["version_id"] is not None and enters_primary(event)}


def errored_since_primary(history: list[dict[str, Any]]) -> set[int]:
    """Versions that went to ERROR, not as the ACTIVE PRIMARY, after they were last the PRIMARY:
    restoring them would put a version that failed since back in production."""
    found: set[int] = set()
    for event in history:
        version_id = event["version_id"]
        if version_id is None:
            continue
        if enters_primary(event):
            found.discard(version_id)
        elif (
            event["to_status"] == "ERROR"
            and event["from_status"] != "ERROR"
            and (event["from_status"], event["from_role"]) != ("ACTIVE", Role.PRIMARY.value)
        ):
            found.add(version_id)
    return found


def _was_primary_when_errored(version_id: int, history: list[dict[str, Any]]) -> bool:
    """Whether the version was the ACTIVE PRIMARY when it last went to ERROR."""
    entered = [
        e
        for e in history
        if e["version_id"] == version_id and e["to_status"] == "ERROR" and e["from_status"] != "ERROR"
    ]
    return bool(entered) and (entered[-1]["from_status"], entered[-1]["from_role"]) == ("ACTIVE", Role.PRIMARY.value)


def _rollback_target(
    model_id: str, current: VersionRecord | None, versions: list[VersionRecord], history: list[dict[str, Any]]
) -> str:
    """The version a plain rollback restores: the latest earlier PRIMARY not known bad, not in ERROR and
    not failed into ERROR since it was the PRIMARY."""
    sequence: list[str] = []
    rolled_back_from: dict[str, datetime] = {}
    primary = None
    for event in history:
        if (
            event["action"] == "rollback"
            and event["from_role"] == Role.PRIMARY.value
            and event["from_status"] == "ACTIVE"
            and event["to_status"] != "ACTIVE"
        ):
            rolled_back_from[event["version"]] = event["at"]
        primary = primary_after(primary, event)
        if primary and (not sequence or sequence[-1] != primary):
            sequence.append(primary)
    current_version = current.version if current else None
    in_error = {v.version for v in versions if v.status == "ERROR"}
    failed_since = {v.version for v in versions if v.id in errored_since_primary(history)} - in_error
    for candidate in reversed(sequence):
        if candidate not in {current_version, *rolled_back_from, *in_error, *failed_since}:
            return candidate
    bad = ", ".join(
        [
            f"{v} (rolled back from at {at.isoformat(timespec='seconds')})"
            for v, at in sorted(rolled_back_from.items(), key=lambda item: item[1])
        ]
        + [f"{v} (in ERROR)" for v in sorted(in_error - set(rolled_back_from))]
        + [f"{v} (went to ERROR since it was PRIMARY)" for v in sorted(failed_since - set(rolled_back_from))]
    )
    why = f"every earlier PRIMARY is known bad: {bad}" if bad else "it has no earlier PRIMARY in its history"
    raise LifecycleError(
        f"{model_id} has nothing to roll back to: {why}. Name a version with `modelreg rollback MODEL --to VERSION`"
    )
