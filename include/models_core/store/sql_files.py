"""Named queries kept in ``.sql`` files beside the code that runs them, one file per concern.

A file holds blocks that start with ``-- name: <query_name>``; :func:`queries` returns them
by name, so Python code refers to SQL by name instead of embedding it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


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
