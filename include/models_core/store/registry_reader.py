"""Reads the registry tables: what the plan is built from, and a version's current row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.plan import VersionRow
from models_core.store.sql_files import queries


@dataclass(frozen=True)
class VersionState:
    """Which version of which model, and where it stands: what the transition policy reads of a
    model's other versions (a check reads no more of them)."""

    id: int
    model_id: str
    version: str
    status: str
    role: str

    @property
    def is_active_primary(self) -> bool:
        return self.status == "ACTIVE" and self.role == "PRIMARY"

    def label(self) -> str:
        return f"{self.model_id}@{self.version}"


@dataclass(frozen=True)
class VersionRecord(VersionState):
    """A whole row of detection_model_versions: what a task re-checks and the lifecycle changes."""

    params: dict[str, Any]
    description: str | None
    created_at: datetime
    updated_at: datetime
    tags: dict[str, str]
    metadata: dict[str, Any]


def read_registry(conn: PgConnection) -> tuple[list[VersionRow], list[tuple[str, str]]]:
    """ACTIVE versions and dependency edges: the two queries a DAG parse costs."""
    q = queries("store/registry.sql")
    with conn.cursor() as cur:
        cur.execute(q["active_versions"])
        versions = [VersionRow(*row) for row in cur.fetchall()]
        cur.execute(q["dependencies"])
        edges = [(model_id, depends_on) for model_id, depends_on in cur.fetchall()]
    conn.rollback()
    return versions, edges


def read_version(conn: PgConnection, model_id: str, version: str) -> VersionRecord | None:
    """The version's row now, or None when it was deleted."""
    return _one(conn, "version_row", {"model_id": model_id, "version": version})


def read_active_primary(conn: PgConnection, model_id: str) -> VersionRecord | None:
    """The model's ACTIVE PRIMARY now, if it has one."""
    return _one(conn, "active_primary", {"model_id": model_id})


def _one(conn: PgConnection, query: str, params: dict[str, Any]) -> VersionRecord | None:
    with conn.cursor() as cur:
        cur.execute(queries("store/registry.sql")[query], params)
        row = cur.fetchone()
    conn.rollback()
    return None if row is None else VersionRecord(*row)
