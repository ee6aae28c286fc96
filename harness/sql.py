"""One statement on a short-lived connection: how test and fault harnesses read a database."""
from __future__ import annotations

from typing import Any

from models_core.store.embedded_postgres import autocommit_rows


def fetch_rows(dsn: str, statement: str, params: Any = None, *, search_path: str | None = None) -> list[tuple]:
    """Run ``statement`` in autocommit mode; its rows, or [] when it returns none.

    ``search_path`` set as ``models_core`` sets it lets plain SQL name the registry tables
    without their schema.
    """
    options = f"-c search_path={search_path}" if search_path else None
    return autocommit_rows(dsn, statement, params, options=options, connect_timeout=5)
