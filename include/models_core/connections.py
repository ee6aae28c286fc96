"""Connections to the registry database.

The Airflow connection named by ``conn_id`` is resolved through the Postgres provider's
hook (so env vars, secrets backends and the metadata DB all work), then opened with
psycopg2. With no such connection configured, the embedded PostgreSQL is used.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from models_core import embedded_postgres
from models_core.settings import Settings

log = logging.getLogger(__name__)


def _connect_kwargs(settings: Settings) -> dict[str, Any]:
    """psycopg2 keyword arguments for the configured connection, or the embedded server."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    hook = PostgresHook(postgres_conn_id=settings.conn_id)
    try:
        conn = hook.connection
    except AirflowNotFoundException:
        server = embedded_postgres.start(settings.embedded_pgdata)
        dsn = embedded_postgres.ensure_database(server, embedded_postgres.REGISTRY_DATABASE)
        log.info("connection %r is not configured; using the embedded PostgreSQL in %s",
                 settings.conn_id, settings.embedded_pgdata)
        return {"dsn": dsn}
    kwargs: dict[str, Any] = {
        "host": conn.host or None,
        "port": conn.port or None,
        "user": conn.login or None,
        "password": conn.password or None,
        "dbname": conn.schema or None,
    }
    for key, value in conn.extra_dejson.items():
        if key not in hook.ignored_extra_options and key not in ("cursor", "iam", "sqlalchemy_scheme"):
            kwargs[key] = value
    return {k: v for k, v in kwargs.items() if v is not None}


@contextmanager
def registry_connection(settings: Settings, *, statement_timeout_ms: int | None = None,
                        application_name: str = "models_core") -> Iterator[PgConnection]:
    """Open a connection with ``search_path`` set to the registry schema; close it after.

    ``statement_timeout_ms`` bounds every statement, which keeps DAG parsing from hanging
    on a slow database.
    """
    kwargs = _connect_kwargs(settings)
    kwargs.setdefault("connect_timeout", settings.connect_timeout_s)
    kwargs["application_name"] = application_name
    conn = psycopg2.connect(**kwargs)
    try:
        setup = sql.SQL("SET search_path TO {}, public; SET statement_timeout = {}").format(
            sql.Identifier(settings.schema), sql.Literal(int(statement_timeout_ms or 0)))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(setup)
        conn.autocommit = False
        yield conn
    finally:
        conn.close()
