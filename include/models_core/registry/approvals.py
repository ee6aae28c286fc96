"""Promotions that need a second person: the request a ``promote`` leaves, and who may decide it.

With approvals on for a model, ``promote`` changes no version: it records a PENDING request
holding the checks' and gates' figures it was made on. A *different* actor approves it
(the promotion is then applied, gates re-checked, in the approving transaction) or rejects
it with a reason. A request not decided within ``approval_ttl_hours`` expires: the figures
it holds are stale by then, so it must be made again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models_core.errors import ModelRegistryError


class ApprovalError(ModelRegistryError):
    """A request cannot be made, approved or rejected; the message says why and what to do."""


@dataclass(frozen=True)
class ApprovalRequest:
    """One promotion request. ``status`` is PENDING, APPROVED, REJECTED or EXPIRED (a
    PENDING request past ``expires_at`` reads as EXPIRED)."""

    id: int
    model_id: str
    version_id: int
    version: str
    status: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    reason: str | None
    forced: bool
    keep_previous_as_shadow: bool
    window_hours: float
    checks: list[dict[str, Any]]
    gates: list[dict[str, Any]]
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    decision_gates: list[dict[str, Any]] | None

    def label(self) -> str:
        return f"request #{self.id} for {self.model_id}@{self.version}"

    def as_json(self) -> dict[str, Any]:
        return {key: value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
                for key, value in self.__dict__.items()}


def check_decidable(request: ApprovalRequest | None, model_id: str, version: str, actor: str,
                    decision: str) -> ApprovalRequest:
    """The request ``actor`` may ``approve`` or ``reject`` now, or an error saying why not.

    ``request`` is the model's open request (PENDING, or EXPIRED and not yet recorded so).

    Nobody approves their own request (compared ignoring case, so ``Alice`` is ``alice``);
    rejecting one's own request withdraws it and is allowed.
    """
    if request is None or request.version != version:
        waiting = f" ({request.label()} is for {request.version})" if request else ""
        raise ApprovalError(f"{model_id}@{version} has no pending promotion request to {decision}{waiting}; "
                            f"`modelreg promote {model_id} {version}` makes one")
    if request.status == "EXPIRED":
        then = (f"its figures are stale: run `modelreg promote {model_id} {version}` again for a new request"
                if decision == "approve" else "it can no longer be approved, so there is nothing to reject")
        raise ApprovalError(f"{request.label()} expired at {request.expires_at.isoformat(timespec='seconds')} "
                            f"(made by {request.requested_by}); {then}")
    if decision == "approve" and actor.casefold() == request.requested_by.casefold():
        raise ApprovalError(f"{actor} cannot approve {request.label()}: they made it, and a promotion "
                            "under approval needs a second person; ask a different actor to approve it")
    return request


def check_no_pending(pending: ApprovalRequest | None, model_id: str) -> None:
    """One request waits per model: approving one would change what another replaces."""
    if pending is not None and pending.status == "PENDING":
        raise ApprovalError(f"{model_id} already has {pending.label()} by {pending.requested_by}, pending until "
                            f"{pending.expires_at.isoformat(timespec='seconds')}; approve or reject it first "
                            f"(`modelreg approve {model_id} {pending.version}` by another actor, or "
                            f"`modelreg reject {model_id} {pending.version} --reason ...`)")
