"""One connection and one actor: the change transaction and the reads every registry concern shares.

Every change runs in one transaction that holds a per-model lock (a concurrent change to the
same model gets a clear error instead of waiting); changes that depend on the whole graph
(dependencies, gates) also take a registry-wide lock in turn and read the graph only once
they hold it. Database triggers write every change into ``detection_model_transitions``,
whoever makes it; a change only tells them its context (action, actor and its kind, reason,
figures, the basis of a promotion, the request it applies) for its transaction, so the
history is complete and has one row per change, API or plain SQL alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor

from models_core.errors import ModelRegistryError
from models_core.registry.actors import Actor
from models_core.registry.metadata import tags_match
from models_core.store.registry_reader import VersionRecord, VersionState, read_version
from models_core.store.sql_files import fetch_value, queries

_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
#: How long a graph change waits for another one to finish before it gives up.
GRAPH_LOCK_TIMEOUT = "10s"
_SQL = "registry/session.sql"
Found = TypeVar("Found", bound=VersionState)


class LifecycleError(ModelRegistryError):
    """A registry command cannot be carried out; the message says why and what to do."""


class ChangeInProgress(LifecycleError):
    """Another change holds the model's (or the graph's) lock: nothing was changed; try again."""


def semver_key(version: str) -> tuple[int, int, int]:
    """Sort key that orders 1.10.0 after 1.9.0."""
    match = _SEMVER.fullmatch(version)
    if not match:
        raise LifecycleError(f"version {version!r} is not MAJOR.MINOR.PATCH (e.g. 1.4.0)")
    return int(match[1]), int(match[2]), int(match[3])


def find_version(versions: Sequence[Found], model_id: str, version: str) -> Found:
    """``version`` among ``versions``, or an error naming the ones there are."""
    for candidate in versions:
        if candidate.version == version:
            return candidate
    raise not_registered(versions, model_id, version)


def not_registered(versions: Sequence[VersionState], model_id: str, version: str) -> LifecycleError:
    """The error for a version the model does not have, naming the ones it has."""
    known = ", ".join(v.version for v in sorted(versions, key=lambda v: semver_key(v.version))) or "none"
    return LifecycleError(f"{model_id}@{version} is not registered (versions: {known})")


class RegistrySession:
    """The registry's connection as one actor uses it."""

    def __init__(self, conn: PgConnection, actor: Actor) -> None:
        self.conn = conn
        self.actor = actor
        self._changing = False  # inside change(): reads must not end its transaction

    @contextmanager
    def change(self, model_id: str, *, graph: bool = False) -> Iterator[PgCursor]:
        """One change: a transaction holding the model's lock (and, for graph changes, the registry's)."""
        q = queries(_SQL)
        with self.conn, self.conn.cursor() as cur:
            if graph:
                try:
                    cur.execute(q["lock_graph"], {"timeout": GRAPH_LOCK_TIMEOUT})
                except psycopg2.errors.LockNotAvailable:
                    raise ChangeInProgress(
                        "another dependency or gate change is in progress and did not finish "
                        f"within {GRAPH_LOCK_TIMEOUT}; try again"
                    ) from None
            cur.execute(q["try_lock_model"], {"model_id": model_id})
            if not fetch_value(cur):
                raise ChangeInProgress(f"another registry change to {model_id} is in progress; try again")
            self._changing = True
            try:
                yield cur
            finally:
                self._changing = False

    def context(
        self,
        cur: PgCursor,
        action: str,
        reason: str | None = None,
        gates: list[dict[str, Any]] | dict[str, Any] | None = None,
        *,
        basis: str | None = None,
        request_id: int | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Tell the audit triggers what the next statements of this transaction do, and for whom."""
        who = actor or self.actor
        cur.execute(
            queries(_SQL)["set_change_context"],
            {
                "action": action,
                "actor": who.id,
                "actor_kind": str(who.kind),
                "reason": reason,
                "gates": json.dumps(gates, default=str) if gates is not None else None,
                "basis": basis,
                "request_id": request_id,
            },
        )

    def fetch(self, name: str, params: dict[str, Any], sql_file: str) -> list[tuple]:
        """A named query's rows; outside a change, the read's transaction ends at once."""
        return self._rows(queries(sql_file)[name], params)

    def _rows(self, query: str | sql.Composable, params: dict[str, Any]) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        if not self._changing:
            self.conn.rollback()
        return rows

    def fetch_json(self, name: str, params: dict[str, Any], sql_file: str, order_by: tuple[str, ...]) -> list[str]:
        """A named query's rows, each as the JSON object PostgreSQL writes of it (``row_to_json``:
        its columns' names as keys), in ``order_by`` order: for an answer that passes its rows on
        as they are, instead of making Python objects of them only to write them out again."""
        query = sql.SQL("SELECT row_to_json(r)::text FROM ({}) r ORDER BY {}").format(
            sql.SQL(queries(sql_file)[name]), sql.SQL(", ").join(sql.Identifier("r", c) for c in order_by)
        )
        return [text for (text,) in self._rows(query, params)]

    def versions(self, model_id: str | None = None, tags: Iterable[tuple[str, str | None]] = ()) -> list[VersionRecord]:
        """Versions of one model (or all), newest version first within a model.

        ``tags`` keeps only versions with every (key, value) tag; a None value means any value.
        """
        wanted = list(tags)
        rows = (
            self.fetch("all_versions", {}, _SQL)
            if model_id is None
            else self.fetch("model_versions", {"model_id": model_id}, _SQL)
        )
        found = [VersionRecord(*row) for row in rows]
        found = [v for v in found if tags_match(v.tags, wanted)]
        return sorted(found, key=lambda v: (v.model_id, tuple(-n for n in semver_key(v.version))))

    def version_states(self, model_id: str) -> list[VersionState]:
        """Each version of the model and where it stands, without its params, tags and metadata."""
        return [VersionState(*row) for row in self.fetch("version_states", {"model_id": model_id}, _SQL)]

    def version(self, model_id: str, version: str) -> VersionRecord:
        """``version``'s whole row, read outside a change (a check), or the error naming the model's versions."""
        assert not self._changing, "a change reads its versions locked (locked_versions)"
        found = read_version(self.conn, model_id, version)
        if found is None:
            raise not_registered(self.version_states(model_id), model_id, version)
        return found

    @staticmethod
    def locked_versions(cur: PgCursor, model_id: str) -> list[VersionRecord]:
        """The model's versions, locked until the change's transaction ends."""
        cur.execute(queries(_SQL)["versions_of_model"], {"model_id": model_id})
        return [VersionRecord(*row) for row in cur.fetchall()]

    def require_model(self, cur: PgCursor, model_id: str) -> list[VersionRecord]:
        """The model's locked versions; a setting for a model with none is almost always a typo in its name."""
        found = self.locked_versions(cur, model_id)
        if not found:
            raise LifecycleError(f"unknown model {model_id!r}: it has no versions (see `modelreg list`)")
        return found
