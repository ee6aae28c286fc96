"""Named queries kept in ``.sql`` files beside the code that runs them, one file per concern.

A file holds blocks that start with ``-- name: <query_name>``; :func:`queries` returns them
by name, so Python code refers to SQL by name instead of embedding it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from psycopg2.extensions import cursor as PgCursor


@cache
def queries(path: str, package: str = "models_core") -> dict[str, str]:
    """The named queries of ``<package>/<path>``, e.g. ``queries("cycle/results.sql")``.

    ``package`` lets a models package keep its own SQL the same way (``example_models`` does).
    """
    text = resources.files(package).joinpath(path).read_text()
    named: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("-- name:"):
            current = line.split(":", 1)[1].strip()
            named[current] = ""
        elif current is not None:
            named[current] += line + "\n"
    return {name: body.strip().rstrip(";") for name, body in named.items()}


def fetch_value(cur: PgCursor) -> Any:
    """The first column of the row a statement that always returns one row has just returned.

    For an aggregate, ``EXISTS``, ``pg_try_advisory_lock`` or ``INSERT ... RETURNING``: no row
    there means the statement is not the one the caller meant to run, raised as ``LookupError``.
    """
    row = cur.fetchone()
    if row is None:
        raise LookupError("a statement that always returns one row returned none")
    return row[0]
