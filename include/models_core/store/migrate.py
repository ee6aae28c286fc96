"""Versioned schema migrations, applied in order and at most once each.

Files in ``migrations/`` are named ``NNNN_description.sql``; the applied ones are recorded
in ``schema_migrations``. Concurrent callers serialise on an advisory lock, so two
``migrate`` commands at once are safe.
"""

from __future__ import annotations

import logging
from importlib import resources

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)

_LOCK_KEY = 0x6D6F64656C73  # "models": one advisory lock for all migrations


def available_migrations() -> list[tuple[str, str]]:
    """(version, sql text) of every migration shipped with the package, in order."""
    folder = resources.files("models_core") / "store" / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.split("_", 1)[0], f.read_text()) for f in files]


def migrate(conn: PgConnection, schema: str) -> list[str]:
    """Bring ``schema`` up to date in one transaction; return the versions applied now."""
    applied_now: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for version, text in available_migrations():
            if version in done:
                continue
            log.info("applying migration %s to schema %s", version, schema)
            cur.execute(text)
            cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    conn.commit()
    return applied_now
