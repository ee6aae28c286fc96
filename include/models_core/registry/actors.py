"""Who makes a registry change, and what they may do: the registry's side of identity. Pure.

Three kinds of actor change the registry:

- a **person**, whom Airflow authenticated: the registry API (and so the page and the CLI,
  which logs in to the API server) builds them from Airflow's logged-in user, with the
  auth manager's stable user id and the permissions :func:`person_permissions` grants;
- a **service**: direct database mode (``modelreg`` without a login, bootstrap and CI
  service accounts), named by the database user it connects as. It may never approve;
- the **system**: the product's own self-healing review.

Permissions are per action, so each path asks the same question of the same actor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from models_core.errors import ModelRegistryError


class Permission(StrEnum):
    """What an actor may do to the registry."""

    #: Any ordinary change: register, activate, tags, a promotion or a request for one.
    REQUEST = "request"
    #: Decide a request someone else made (never one's own).
    APPROVE = "approve"
    #: Go past failing checks or gates, or retire the ACTIVE PRIMARY, with a reason.
    FORCE = "force"
    #: Change what guards a model under approval (gates, checks, approvals, policy) alone.
    GOVERN = "govern"
    #: The self-healing review: ERROR, and an automatic rollback to an earlier PRIMARY.
    HEAL = "heal"


class ActorKind(StrEnum):
    PERSON = "person"
    SERVICE = "service"
    SYSTEM = "system"


class PermissionDenied(ModelRegistryError):
    """The actor may not do this; the message names the actor, the permission and how it is granted."""


#: How each permission is granted, for the messages that refuse one.
GRANTED_BY = {
    Permission.REQUEST: "edit access to the detection_models DAG",
    Permission.APPROVE: "edit access to the detection_models DAG, as a person logged in to Airflow "
    "(`modelreg login`), and a place in the model's approvers when it names some",
    Permission.FORCE: "the [model_registry] governors setting, or the auth manager's right to edit the configuration",
    Permission.GOVERN: "the [model_registry] governors setting, or the auth manager's right to edit the configuration",
    Permission.HEAL: "the product's self-healing review only",
}


@dataclass(frozen=True)
class Actor:
    """An actor and its permissions; ``id`` is what the audit trail records."""

    id: str
    kind: ActorKind
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    name: str | None = None

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission, what: str) -> None:
        """Refuse ``what`` unless the actor holds ``permission``, saying how it is granted."""
        if not self.may(permission):
            raise PermissionDenied(
                f"{self.describe()} may not {what}: it needs the {permission} permission ({GRANTED_BY[permission]})"
            )

    def require_any(self, permissions: tuple[Permission, ...], what: str) -> None:
        """Refuse ``what`` unless the actor holds one of ``permissions`` (the first is named)."""
        if not any(self.may(p) for p in permissions):
            self.require(permissions[0], what)

    def describe(self) -> str:
        if self.kind is ActorKind.PERSON:
            return self.id if not self.name or self.name == self.id else f"{self.id} ({self.name})"
        return f"{self.kind} {self.id}"

    def same_person(self, other_id: str) -> bool:
        """Whether ``other_id`` names this actor (ids compared ignoring case: ``Alice`` is ``alice``)."""
        return self.id.casefold() == other_id.casefold()


#: The product's own actor (the self-healing review).
SYSTEM = Actor("system", ActorKind.SYSTEM, frozenset({Permission.HEAL}))

#: What a service account may do by default: everything but approving and governing a model
#: under approval alone (a service is not a second person).
SERVICE_PERMISSIONS = frozenset({Permission.REQUEST, Permission.FORCE})


def service(database_user: str, permissions: frozenset[Permission] = SERVICE_PERMISSIONS) -> Actor:
    """The actor of direct database mode: the database user, marked as a service."""
    return Actor(database_user, ActorKind.SERVICE, permissions - {Permission.APPROVE, Permission.HEAL})


def person_permissions(*, may_edit: bool, may_govern: bool) -> frozenset[Permission]:
    """A person's permissions from what the auth manager (and the governors setting) allow."""
    granted = {Permission.REQUEST, Permission.APPROVE} if may_edit else set()
    if may_edit and may_govern:
        granted |= {Permission.FORCE, Permission.GOVERN}
    return frozenset(granted)
