"""What a registry change would do to the cycle DAG, found by making it and rolling it back.

A preview runs the real :class:`ModelRegistry` method, so every rule (gates, locks, the
primary guard, cycles) answers exactly as it will on confirmation, inside one transaction
that is never committed: the plan is built from that uncommitted state on the same
connection, then everything is rolled back, audit rows and locks included. Building the
plan twice in that transaction (before and after the change) gives the tasks and edges the
change adds or removes, with ``plan_difference``, the function ``modelreg plan`` uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import psycopg2
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor

from models_core.cycle.plan_source import plan_from_connection, plan_from_registry, read_cached_plan
from models_core.errors import ModelRegistryError
from models_core.plan import Plan
from models_core.registry.actors import Actor
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.plan_difference import plan_difference
from models_core.settings import Settings

T = TypeVar("T")


class PreviewCommitError(RuntimeError):
    """Something tried to commit inside a preview; the preview is abandoned instead."""


class _UncommittedConnection:
    """The registry's connection as a preview lends it: transactions end, but never commit.

    ``ModelRegistry`` ends each change with ``with conn:`` (commit) and each read with
    ``rollback()``; here both leave the transaction open, so later reads see the change.
    The caller rolls the real connection back when the preview is over.
    """

    def __init__(self, conn: PgConnection) -> None:
        self._conn = conn

    def cursor(self) -> PgCursor:
        return self._conn.cursor()

    def rollback(self) -> None:
        """Deferred: the whole preview is rolled back at its end."""

    def commit(self) -> None:
        raise PreviewCommitError("a preview must not commit; it was abandoned and nothing was changed")

    def __enter__(self) -> _UncommittedConnection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self._conn.rollback()


def _as_connection(lent: _UncommittedConnection) -> PgConnection:
    """``lent`` where the registry code takes a connection: that code only opens cursors, rolls
    back and commits with ``with conn:``, all of which ``lent`` does (it is not a subclass)."""
    return cast(PgConnection, lent)


def _plan_or_error(conn: _UncommittedConnection, settings: Settings) -> Plan | ModelRegistryError:
    """The plan of the registry as ``conn`` sees it (``plan_from_registry`` opens its own connection)."""
    try:
        return plan_from_connection(_as_connection(conn), settings)
    except ModelRegistryError as exc:
        return exc


def preview_change(
    conn: PgConnection, settings: Settings, actor: Actor, change: Callable[[ModelRegistry], T]
) -> tuple[T, dict[str, Any]]:
    """Run ``change`` uncommitted; return its result and the plan difference it would make.

    A registry with a dependency cycle has no plan: the difference then says so
    (``plan_error``) instead of refusing a change that may be the fix.
    """
    lent = _UncommittedConnection(conn)
    try:
        before = _plan_or_error(lent, settings)
        result = change(ModelRegistry(_as_connection(lent), actor))
        after = _plan_or_error(lent, settings)
    finally:
        conn.rollback()
    if isinstance(after, ModelRegistryError) or isinstance(before, ModelRegistryError):
        failed = after if isinstance(after, ModelRegistryError) else before
        return result, {"plan_error": str(failed)}
    return result, plan_difference(after, before)


def next_parse(settings: Settings) -> dict[str, Any]:
    """What ``modelreg plan`` reports: the registry's plan now against the DAG last parsed.

    Called after a committed change, so a failure here is reported, never raised: the
    change stands either way.
    """
    try:
        current = plan_from_registry(settings)
    except (ModelRegistryError, psycopg2.Error) as exc:
        return {"plan_error": " ".join(str(exc).split())}
    return {"fingerprint": current.fingerprint, **plan_difference(current, read_cached_plan(settings))}
