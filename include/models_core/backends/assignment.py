"""Which backend a version calls: its params' ``backend`` key, else its class's ``backend``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.backends.catalog import BackendError
from models_core.discovery import discover_models, import_model_class
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

#: The params key with which a version overrides its class's backend.
PARAMS_KEY = "backend"


def backend_of(model_class: type, params: Mapping[str, Any], label: str) -> str | None:
    """The backend ``label`` (model@version) calls, or None when it calls none.

    Raises :class:`BackendError` naming the version when the params' ``backend`` is not a
    non-empty string (or null, which means: no backend, whatever the class says).
    """
    if PARAMS_KEY in params:
        value = params[PARAMS_KEY]
        if value is not None and (not isinstance(value, str) or not value):
            raise BackendError(
                f"{label}: params key {PARAMS_KEY!r} must name a backend (a string) or be null, got {value!r}"
            )
        return value
    return getattr(model_class, "backend", None) or None


@dataclass(frozen=True)
class BackendCaller:
    """An ACTIVE version and the backend it calls."""

    model_id: str
    version: str
    role: str
    backend: str

    def label(self) -> str:
        return f"{self.model_id}@{self.version}[{self.role}]"


def active_callers(conn: PgConnection, models_package: str) -> list[BackendCaller]:
    """Every ACTIVE version that calls a backend.

    A version whose model has no class is left out; so is one whose params name a backend
    wrongly, with a warning naming it (its own task fails with that message).
    """
    classes = discover_models(models_package).classes
    with conn.cursor() as cur:
        cur.execute(queries("backends/backends.sql")["active_versions_with_params"])
        rows = cur.fetchall()
    conn.rollback()
    callers = []
    for model_id, version, role, params in rows:
        if model_id not in classes:
            continue
        try:
            name = backend_of(import_model_class(classes[model_id].class_path), params, f"{model_id}@{version}")
        except BackendError as exc:
            log.warning("%s", exc)
            continue
        if name:
            callers.append(BackendCaller(model_id, version, role, name))
    return callers
