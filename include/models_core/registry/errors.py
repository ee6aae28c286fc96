"""The one line an error becomes, for ``modelreg`` and the registry API alike, with its HTTP status.

An operator who meets a refusal in the page and then tries the CLI (or the other way
round) reads the same words. A database error is told by its message alone: never the SQL
statement, the parameters or the position PostgreSQL adds to it. The registry rolled the
change back before raising, so nothing is half-applied; the line only reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from typing import Any

import psycopg2
from psycopg2.extensions import connection as PgConnection

from models_core.errors import ModelRegistryError
from models_core.registry.actors import PermissionDenied
from models_core.registry.evidence import ChecksFailed
from models_core.registry.metadata import MetadataError
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection

CONFLICT = 409
NOT_FOUND = 404


class RegistryRefusal(ModelRegistryError):
    """A request the registry or its database refused: the HTTP status and the line the CLI prints."""

    def __init__(self, status_code: int, line: str, gates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(line)
        self.status_code = status_code
        self.line = line
        self.gates = gates


def error_line(command: str, exc: Exception) -> str:
    """The one line ``modelreg <command>`` prints for an error (the registry page shows the same)."""
    if isinstance(exc, psycopg2.Error):
        return f"modelreg {command}: database error: {database_message(exc)}"
    return f"modelreg {command}: {' '.join(str(exc).split())}"


def database_message(exc: psycopg2.Error) -> str:
    """What PostgreSQL said, without the statement: its primary message (and detail), else the first line."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        detail = getattr(diag, "message_detail", None)
        return " ".join(f"{primary}{f' ({detail})' if detail else ''}".split())
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return " ".join(first.split())


@contextmanager
def as_cli_errors(command: str, refused: int = CONFLICT) -> Iterator[None]:
    """Turn what ``modelreg <command>`` reports as an error into a :class:`RegistryRefusal`.

    ``refused`` is the status of a registry refusal: 409 for a change (a gate, a lock held
    by another change, a cycle, an unknown version), 404 for a read of something absent.
    A value the registry cannot store is 422, a permission the actor lacks 403, a value the
    database refused anyway 400 and the database itself failing 503.
    """
    try:
        yield
    except RegistryRefusal:
        raise
    except ChecksFailed as exc:
        raise RegistryRefusal(refused, error_line(command, exc), [asdict(c) for c in exc.checks]) from exc
    except PermissionDenied as exc:
        raise RegistryRefusal(403, error_line(command, exc)) from exc
    except MetadataError as exc:
        raise RegistryRefusal(422, error_line(command, exc)) from exc
    except ModelRegistryError as exc:
        raise RegistryRefusal(refused, error_line(command, exc)) from exc
    except ValueError as exc:
        raise RegistryRefusal(400, error_line(command, exc)) from exc
    except (psycopg2.DataError, psycopg2.IntegrityError) as exc:
        raise RegistryRefusal(400, error_line(command, exc)) from exc
    except psycopg2.Error as exc:
        raise RegistryRefusal(503, error_line(command, exc)) from exc


@contextmanager
def command_connection(
    command: str, refused: int = CONFLICT, *, read_only: bool = False
) -> Iterator[tuple[PgConnection, Settings]]:
    """The settings and a connection to the registry (the ``registry_db`` connection, or the
    embedded PostgreSQL when none is defined) for one command or request; every error,
    connecting included, becomes the CLI's one line for ``command``. The connection comes from
    the process's pool of idle ones and goes back to it (see ``registry_connection``).

    Every statement is bounded by ``request_statement_timeout_ms``: a read asked for over a
    year of a page's models, or a change stuck behind a lock, ends with a 503 that says so
    instead of holding one of the API server's threads and a database backend for as long as
    it takes (a few such requests at once would leave the page nothing to answer with). A read
    (``read_only``) cannot write: each of its statements is a read-only transaction."""
    settings = load_settings()
    with (
        as_cli_errors(command, refused),
        registry_connection(
            settings,
            statement_timeout_ms=settings.request_statement_timeout_ms,
            application_name=f"modelreg:{command}",
            pooled=True,
            read_only=read_only,
        ) as conn,
    ):
        yield conn, settings


def read_connection(command: str, refused: int = CONFLICT) -> AbstractContextManager[tuple[PgConnection, Settings]]:
    """:func:`command_connection` for a read (the registry API's GET routes): it cannot write."""
    return command_connection(command, refused, read_only=True)
