"""Changes that need a second person: the requests ``promote`` (and guard changes) leave, and their approval.

With approvals on for a model, ``promote`` changes no version: it records a PENDING request
holding the checks' and gates' figures it was made on; so does a change of the model's
guards by an actor who may not govern. People other than the requester approve it, as many
as the model asks (``min_approvals``, among its ``approvers`` when it names some); the last
approval applies the change in its transaction, a promotion with its gates re-checked
(:mod:`transitions` decides it). Anyone allowed to approve may reject it with a reason; its
maker may withdraw it so. A request not decided within ``approval_ttl_hours`` expires (the
figures it holds are stale by then), and one whose version changes state is closed by the
database (CANCELLED). Only people approve: a service account (direct database mode) never does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg2.extensions import cursor as PgCursor

from models_core.errors import ModelRegistryError
from models_core.registry.actors import Actor, ActorKind, Permission
from models_core.settings import load_settings
from models_core.store.sql_files import queries

if TYPE_CHECKING:
    from models_core.registry.evidence import Readiness
    from models_core.registry.guards import ApprovalSetting
    from models_core.registry.lifecycle import Promotion
    from models_core.registry.model_registry import ModelRegistry
    from models_core.store.registry_reader import VersionRecord

_SQL = "registry/approvals.sql"


class ApprovalError(ModelRegistryError):
    """A request cannot be made, approved or rejected; the message says why and what to do."""


@dataclass(frozen=True)
class ApprovalRequest:
    """One request. ``kind`` is ``promote`` (of ``version``) or ``guards`` (``change`` says
    which guard and its new values). ``status`` is PENDING, APPROVED, REJECTED, EXPIRED (a
    PENDING request past ``expires_at`` reads so) or CANCELLED (its version changed state).
    ``approvals`` are the ids of those who approved it so far."""

    id: int
    model_id: str
    kind: str
    version_id: int | None
    version: str | None
    change: dict[str, Any] | None
    status: str
    requested_by: str
    requested_by_kind: str
    requested_at: datetime
    expires_at: datetime
    reason: str | None
    forced: bool
    keep_previous_as_shadow: bool
    window_hours: float | None
    checks: list[dict[str, Any]]
    gates: list[dict[str, Any]]
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    decision_gates: list[dict[str, Any]] | None
    approvals: list[str]

    def label(self) -> str:
        subject = (
            f"{self.model_id}@{self.version}"
            if self.kind == "promote"
            else f"{self.model_id}'s {(self.change or {}).get('guard', 'guards')}"
        )
        return f"request #{self.id} for {subject}"

    def as_json(self) -> dict[str, Any]:
        return {
            key: value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
            for key, value in self.__dict__.items()
        }


def check_decidable(
    request: ApprovalRequest | None, model_id: str, version: str | None, decision: str
) -> ApprovalRequest:
    """The model's open request ``decision`` (approve or reject) applies to, or an error saying why not.

    ``request`` is the model's open request (PENDING, or EXPIRED and not yet recorded so);
    ``version`` None means whatever the model's open request is (a guard change has none).
    """
    if request is None or (version is not None and request.version != version):
        subject = f"{model_id}@{version}" if version else model_id
        waiting = f" ({request.label()} is waiting instead)" if request else ""
        raise ApprovalError(
            f"{subject} has no pending request to {decision}{waiting}; `modelreg promote {model_id} VERSION` makes one"
        )
    if request.status == "EXPIRED":
        then = (
            "its figures are stale: make the request again"
            if decision == "approve"
            else "it can no longer be approved, so there is nothing to reject"
        )
        raise ApprovalError(
            f"{request.label()} expired at {request.expires_at.isoformat(timespec='seconds')} "
            f"(made by {request.requested_by}); {then}"
            + (
                f" (`modelreg promote {model_id} {request.version}`)"
                if decision == "approve" and request.kind == "promote"
                else ""
            )
        )
    return request


def check_approver(actor: Actor, request: ApprovalRequest, setting: ApprovalSetting) -> None:
    """Refuse an approval that would not be a distinct, permitted second person's.

    Only people approve (never a service account or the system); nobody approves their own
    request (ids compared ignoring case, so ``Alice`` is ``alice``) or approves twice; a
    model that names its approvers takes approvals from them only.
    """
    if actor.kind is not ActorKind.PERSON:
        raise ApprovalError(
            f"{actor.describe()} cannot approve {request.label()}: only a person logged in to "
            "Airflow approves (`modelreg login`, or the registry page)"
        )
    actor.require(Permission.APPROVE, f"approve {request.label()}")
    if actor.same_person(request.requested_by):
        raise ApprovalError(
            f"{actor.id} cannot approve {request.label()}: they made it, and a change under "
            "approval needs a second person; ask a different actor to approve it"
        )
    if any(actor.same_person(voter) for voter in request.approvals):
        missing = setting.min_approvals - len(counted_approvals(request, setting))
        raise ApprovalError(
            f"{actor.id} already approved {request.label()}; it needs {missing} more approval(s) from other people"
        )
    if setting.approvers and not any(actor.same_person(a) for a in setting.approvers):
        raise ApprovalError(
            f"{actor.id} is not among the approvers of {request.model_id} "
            f"({', '.join(setting.approvers)}); `modelreg approvals set` names them"
        )


def counted_approvals(request: ApprovalRequest, setting: ApprovalSetting) -> list[str]:
    """The approvals so far that count now: those of the model's approvers (all, when it names none)."""
    return [
        voter
        for voter in request.approvals
        if not setting.approvers or any(voter.casefold() == a.casefold() for a in setting.approvers)
    ]


def check_no_pending(pending: ApprovalRequest | None, model_id: str) -> None:
    """One request waits per model: approving one would change what another replaces."""
    if pending is not None and pending.status == "PENDING":
        raise ApprovalError(
            f"{model_id} already has {pending.label()} by {pending.requested_by}, pending until "
            f"{pending.expires_at.isoformat(timespec='seconds')}; approve or reject it first "
            f"(`modelreg approve {model_id}` by another actor, or "
            f"`modelreg reject {model_id} --reason ...`)"
        )


class Approvals:
    """Requests and their decisions, each in the model's change transaction."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.session = registry.session

    def requests(self, model_id: str | None = None, *, include_decided: bool = False) -> list[ApprovalRequest]:
        """Requests waiting (PENDING or EXPIRED, not yet decided) or, with ``include_decided``,
        all of them; newest first."""
        rows = self.session.fetch("requests", {"model_id": model_id, "all": include_decided}, _SQL)
        return [ApprovalRequest(*row) for row in rows]

    def check_none_pending(self, cur: PgCursor, model_id: str) -> None:
        """Refuse a new request while another one waits for the model (one at a time)."""
        check_no_pending(self._open(cur, model_id), model_id)

    def request_promotion(
        self,
        cur: PgCursor,
        target: VersionRecord,
        readiness: Readiness,
        window: timedelta,
        forced: bool,
        reason: str | None,
        keep_previous_as_shadow: bool,
    ) -> ApprovalRequest:
        """Record a PENDING promotion request instead of promoting (in the caller's transaction)."""
        return self._record(
            cur,
            target.model_id,
            reason,
            readiness.figures_json(),
            {
                "kind": "promote",
                "version_id": target.id,
                "version": target.version,
                "change": None,
                "forced": forced,
                "keep_previous_as_shadow": keep_previous_as_shadow,
                "window_hours": window.total_seconds() / 3600,
                "checks": json.dumps([asdict(c) for c in readiness.checks]),
                "gates": json.dumps([asdict(c) for c in readiness.gates]),
            },
        )

    def request_guard_change(
        self, cur: PgCursor, model_id: str, guard: str, values: dict[str, Any], reason: str | None
    ) -> ApprovalRequest:
        """Record a PENDING request to change a guard of a model under approval (``values``: the fields asked)."""
        change = {"guard": guard, "values": values}
        return self._record(
            cur,
            model_id,
            reason,
            change,
            {
                "kind": "guards",
                "version_id": None,
                "version": None,
                "change": json.dumps(change),
                "forced": False,
                "keep_previous_as_shadow": False,
                "window_hours": None,
                "checks": "[]",
                "gates": "[]",
            },
        )

    def _record(
        self, cur: PgCursor, model_id: str, reason: str | None, figures: Any, values: dict[str, Any]
    ) -> ApprovalRequest:
        open_request = self._open(cur, model_id)
        check_no_pending(open_request, model_id)
        if open_request is not None:  # expired: recorded so before the new one
            self._decide(cur, open_request, "EXPIRED", "expire", None, None)
        actor = self.session.actor
        self.session.context(
            cur, f"request_{values['kind'] if values['kind'] == 'guards' else 'promotion'}", reason, figures
        )
        cur.execute(
            queries(_SQL)["insert_request"],
            {
                **values,
                "model_id": model_id,
                "requested_by": actor.id,
                "requested_by_kind": str(actor.kind),
                "ttl": load_settings().approval_ttl,
                "reason": reason,
            },
        )
        return self._still_open(cur, model_id)

    def approve(
        self, model_id: str, version: str | None = None, reason: str | None = None, request_id: int | None = None
    ) -> Promotion | dict[str, Any] | ApprovalRequest:
        """Approve the model's pending request (of ``version``, or request ``request_id``, when given).

        The approval is recorded; once the model's ``min_approvals`` are in, the change is
        applied in the same transaction (a promotion's checks and gates evaluated again now,
        over the request's window: if they no longer pass and the request was not forced,
        nothing is recorded and the request stays PENDING). Returns the promotion, the
        guard and its new values, or the request still waiting for more approvals.
        """
        with self.session.change(model_id) as cur:
            request = self._decidable(cur, model_id, version, request_id, "approve")
            setting = self.registry.guards.approval(model_id)
            check_approver(self.session.actor, request, setting)
            self.session.context(cur, "approve", reason, request_id=request.id)
            cur.execute(
                queries(_SQL)["insert_vote"],
                {"request_id": request.id, "model_id": model_id, "approver": self.session.actor.id, "reason": reason},
            )
            if len(counted_approvals(request, setting)) + 1 < setting.min_approvals:
                return self._still_open(cur, model_id)
            if request.kind == "guards":
                self._decide(cur, request, "APPROVED", "approve", reason, None)
                change = request.change or {}
                why = f"{request.label()} by {request.requested_by}, approved" + (
                    f": {request.reason}" if request.reason else ""
                )
                return {
                    "guard": change["guard"],
                    "values": self.registry.guards.apply_requested(
                        cur, model_id, change["guard"], change["values"], why, request.id
                    ),
                }
            return self.registry.lifecycle.apply_approved(cur, request, reason)

    def reject(self, model_id: str, version: str | None, reason: str, request_id: int | None = None) -> ApprovalRequest:
        """Turn a pending request down, saying why; its maker may reject it too (withdraw it)."""
        if not (reason or "").strip():
            raise ApprovalError("reject needs --reason: the requester is told why")
        actor = self.session.actor
        with self.session.change(model_id) as cur:
            request = self._decidable(cur, model_id, version, request_id, "reject")
            if not actor.same_person(request.requested_by):
                actor.require(Permission.APPROVE, f"reject {request.label()}")
                approvers = self.registry.guards.approval(model_id).approvers
                if approvers and not any(actor.same_person(a) for a in approvers):
                    raise ApprovalError(
                        f"{actor.id} is not among the approvers of {model_id} ({', '.join(approvers)})"
                        f": only they, or {request.requested_by} who made it, may reject "
                        f"{request.label()}"
                    )
            self._decide(cur, request, "REJECTED", "reject", reason, None)
        return next(r for r in self.requests(model_id, include_decided=True) if r.id == request.id)

    def decide_approved(
        self, cur: PgCursor, request: ApprovalRequest, reason: str | None, figures: list[dict[str, Any]]
    ) -> None:
        """Record the request APPROVED with the figures it was applied on (before the change it applies)."""
        self._decide(cur, request, "APPROVED", "approve", reason, figures)

    def _decidable(
        self, cur: PgCursor, model_id: str, version: str | None, request_id: int | None, decision: str
    ) -> ApprovalRequest:
        request = check_decidable(self._open(cur, model_id), model_id, version, decision)
        if request_id is not None and request.id != request_id:
            raise ApprovalError(
                f"request #{request_id} is not the one waiting for {model_id}: "
                f"{request.label()} is; look at it before you {decision} it"
            )
        return request

    @staticmethod
    def _open(cur: PgCursor, model_id: str) -> ApprovalRequest | None:
        cur.execute(queries(_SQL)["open_request"], {"model_id": model_id})
        row = cur.fetchone()
        return None if row is None else ApprovalRequest(*row)

    @classmethod
    def _still_open(cls, cur: PgCursor, model_id: str) -> ApprovalRequest:
        """The model's open request, which this transaction has just inserted or voted on."""
        request = cls._open(cur, model_id)
        if request is None:
            raise LookupError(f"{model_id}: the approval request this change just wrote is not open")
        return request

    def _decide(
        self,
        cur: PgCursor,
        request: ApprovalRequest,
        status: str,
        action: str,
        reason: str | None,
        figures: list[dict[str, Any]] | None,
    ) -> None:
        self.session.context(cur, action, reason, request_id=request.id)
        cur.execute(
            queries(_SQL)["decide_request"],
            {
                "id": request.id,
                "status": status,
                "decided_by": None if status == "EXPIRED" else self.session.actor.id,
                "decision_reason": reason,
                "decision_gates": None if figures is None else json.dumps(figures),
            },
        )
