"""One registry connection per request, opened and reported on the way ``modelreg`` does."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import status
from psycopg2.extensions import connection as PgConnection

from models_core.api.errors import as_cli_errors
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection


@contextmanager
def registry_session(command: str, refused: int = status.HTTP_409_CONFLICT) -> Iterator[tuple[PgConnection, Settings]]:
    """The settings and a connection to the registry (the ``registry_db`` connection, or the
    embedded PostgreSQL when none is defined); every error, connecting included, becomes the
    CLI's one line for ``command``."""
    settings = load_settings()
    with as_cli_errors(command, refused), \
            registry_connection(settings, application_name=f"modelreg-ui:{command}") as conn:
        yield conn, settings
