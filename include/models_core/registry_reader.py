"""Reads the registry tables: what the plan is built from, and a version's current row."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.sql_files import queries


@dataclass(frozen=True)
class VersionRow:
    """An ACTIVE row of detection_model_versions as the plan needs it."""

    id: int
    model_id: str
    version: str
    role: str


@dataclass(frozen=True)
class CurrentVersion:
    """A version's row as a task sees it at run time."""

    id: int
    model_id: str
    version: str
    status: str
    role: str
    params: dict[str, Any]


def read_registry(conn: PgConnection) -> tuple[list[VersionRow], list[tuple[str, str]]]:
    """ACTIVE versions and dependency edges: the two queries a DAG parse costs."""
    q = queries("registry.sql")
    with conn.cursor() as cur:
        cur.execute(q["active_versions"])
        versions = [VersionRow(*row) for row in cur.fetchall()]
        cur.execute(q["dependencies"])
        edges = [(model_id, depends_on) for model_id, depends_on in cur.fetchall()]
    conn.rollback()
    return versions, edges


def read_version(conn: PgConnection, model_id: str, version: str) -> CurrentVersion | None:
    """The version's row now, or None when it was deleted."""
    with conn.cursor() as cur:
        cur.execute(queries("registry.sql")["version_row"], {"model_id": model_id, "version": version})
        row = cur.fetchone()
    conn.rollback()
    return None if row is None else CurrentVersion(*row[:5], params=row[5] or {})
