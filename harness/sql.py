"""One statement on a short-lived connection: how test and fault harnesses read a database."""
from __future__ import annotations

from typing import Any

import psycopg2


def fetch_rows(dsn: str, statement: str, params: Any = None, *, search_path: str | None = None) -> list[tuple]:
    """Run ``statement`` in autocommit mode; its rows, or [] when it returns none.

    ``search_path`` set as ``models_core`` sets it lets plain SQL name the registry tables
    without their schema.
    """
    options = f"-c search_path={search_path}" if search_path else None
    conn = psycopg2.connect(dsn, connect_timeout=5, options=options)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
