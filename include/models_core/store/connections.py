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

from models_core.settings import Settings
from models_core.store import embedded_postgres

log = logging.getLogger(__name__)


#: libpq keywords a connection's extras may carry; other extras (the Postgres provider's own,
#: such as ``sqlalchemy_scheme`` or ``iam``) mean nothing to psycopg2 and are left out.
_LIBPQ_EXTRAS = frozenset({
    "connect_timeout", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl",
    "options", "application_name", "target_session_attrs", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "gssencmode", "krbsrvname",
    "service", "passfile", "channel_binding", "hostaddr", "client_encoding",
})


def _connect_kwargs(settings: Settings) -> dict[str, Any]:
    """psycopg2 keyword arguments for the configured connection, or the embedded server.

    The connection is resolved the Airflow way (env vars, secrets backends, metadata DB)
    through ``BaseHook.get_connection``; importing the Postgres provider's hook instead
    would add about 0.1 s (psycopg 3) to every DAG parse, and a parse runs per task start.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(settings.conn_id)
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
        **{key: value for key, value in conn.extra_dejson.items() if key in _LIBPQ_EXTRAS},
    }
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
    if statement_timeout_ms:
        # One bound for the whole parse: connecting may not take longer than a statement
        # (libpq counts connect_timeout in whole seconds, 2 at the least).
        kwargs["connect_timeout"] = min(int(kwargs["connect_timeout"]), max(2, -(-statement_timeout_ms // 1000)))
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
