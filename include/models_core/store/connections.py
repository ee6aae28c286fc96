"""Connections to the registry database.

The Airflow connection named by ``conn_id`` is resolved through the Postgres provider's
hook (so env vars, secrets backends and the metadata DB all work), then opened with
psycopg2. With no such connection configured, the embedded PostgreSQL is used.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from models_core.settings import Settings
from models_core.store import embedded_postgres
from models_core.store.transient import one_line

log = logging.getLogger(__name__)


#: libpq keywords a connection's extras may carry; other extras (the Postgres provider's own,
#: such as ``sqlalchemy_scheme`` or ``iam``) mean nothing to psycopg2 and are left out.
_LIBPQ_EXTRAS = frozenset(
    {
        "connect_timeout",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "options",
        "application_name",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "gssencmode",
        "krbsrvname",
        "service",
        "passfile",
        "channel_binding",
        "hostaddr",
        "client_encoding",
    }
)


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
        log.info(
            "connection %r is not configured; using the embedded PostgreSQL in %s",
            settings.conn_id,
            settings.embedded_pgdata,
        )
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


#: On a worker, the connection the DAG file's parse read the registry with, left open for
#: the task that runs next in the same process (see :func:`registry_connection`).
_kept_for_task: PgConnection | None = None


@contextmanager
def registry_connection(
    settings: Settings,
    *,
    statement_timeout_ms: int | None = None,
    application_name: str = "models_core",
    keep_for_task: bool = False,
    reuse_kept: bool = False,
    pooled: bool = False,
    read_only: bool = False,
) -> Iterator[PgConnection]:
    """Open a connection with ``search_path`` set to the registry schema; close it after.

    ``statement_timeout_ms`` bounds every statement, which keeps DAG parsing from hanging
    on a slow database. A worker parses the DAG file right before each task, in the task's
    own process, and both read the registry: with ``keep_for_task`` (the parse) the
    connection is left open, without a transaction, when the block ends without error, and
    ``reuse_kept`` (the task) takes it instead of opening another; every connection costs
    the server a new backend process. A kept connection the server has dropped meanwhile is
    replaced by a new one.

    ``pooled`` (the registry API's requests, many a second in one long-lived process): the
    connection comes from, and goes back to, a few idle ones kept per connection target (see
    :class:`_Pool`), so a request does not pay for a new server process (about 6 ms, more than
    most of its queries); a connection that saw an error is closed instead.

    ``read_only`` (a read's request): each statement is its own read-only transaction
    (autocommit with ``default_transaction_read_only``), so a read cannot write whatever its
    code does, and pays no BEGIN and ROLLBACK round trips around each of its queries.
    """
    global _kept_for_task
    conn = None
    target = None
    if reuse_kept:
        conn, _kept_for_task = _kept_for_task, None
    if pooled:
        target = _POOL.target(settings)
        conn = _POOL.take(target)
    if conn is not None:
        try:
            _configure(conn, settings, statement_timeout_ms, application_name, reset=pooled, read_only=read_only)
        except psycopg2.Error as exc:
            log.info("a kept registry connection is unusable (%s); opening a new one", one_line(exc))
            conn.close()
            conn = None
    if conn is None:
        conn = _open(settings, statement_timeout_ms, application_name, target, read_only)
    kept = False
    try:
        yield conn
        if keep_for_task and not conn.closed:
            conn.rollback()
            close_kept_connection()  # a second parse in one process keeps only its own
            _kept_for_task, kept = conn, True
        elif target is not None and not conn.closed:
            conn.rollback()
            kept = _POOL.give_back(target, conn)
    finally:
        if not kept:
            conn.close()


class _Pool:
    """Idle registry connections of one process, by connection target; thread-safe (FastAPI
    runs sync routes in a thread pool). A target is what a connection was opened with (the
    resolved Airflow connection and the schema), so a connection is never handed to a request
    for another database, even when the ``registry_db`` connection changes meanwhile."""

    KEEP = 4  # idle connections per target at most; the API server runs requests a few at a time
    #: Seconds a resolved target is reused: resolving the ``registry_db`` connection (Airflow's
    #: secrets backends, environment, metadata database) took about 1 ms of every request. A
    #: changed connection is seen within this long, at once when it is an environment variable.
    TARGET_TTL_S = 5.0

    def __init__(self) -> None:
        self._idle: dict[str, list[PgConnection]] = {}
        self._targets: dict[tuple[str, ...], tuple[float, tuple[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def target(self, settings: Settings) -> tuple[str, dict[str, Any]]:
        variable = os.environ.get(f"AIRFLOW_CONN_{settings.conn_id.upper()}", "")
        key = (settings.conn_id, settings.schema, str(settings.embedded_pgdata), variable)
        now = time.monotonic()
        with self._lock:
            kept = self._targets.get(key)
        if kept is not None and now - kept[0] < self.TARGET_TTL_S:
            return kept[1]
        kwargs = _connect_kwargs(settings)
        target = json.dumps([settings.schema, sorted(kwargs.items())], default=str), kwargs
        with self._lock:
            self._targets[key] = (now, target)
        return target

    def take(self, target: tuple[str, dict[str, Any]]) -> PgConnection | None:
        with self._lock:
            idle = self._idle.get(target[0])
            return idle.pop() if idle else None

    def give_back(self, target: tuple[str, dict[str, Any]], conn: PgConnection) -> bool:
        """Keep ``conn`` for the next request; False when enough are kept (the caller closes it)."""
        with self._lock:
            idle = self._idle.setdefault(target[0], [])
            if len(idle) >= self.KEEP:
                return False
            idle.append(conn)
            return True


_POOL = _Pool()


def close_kept_connection() -> None:
    """Close the connection a worker's parse kept when no task took it (for processes that parse repeatedly)."""
    global _kept_for_task
    if _kept_for_task is not None:
        _kept_for_task.close()
        _kept_for_task = None


def _open(
    settings: Settings,
    statement_timeout_ms: int | None,
    application_name: str,
    target: tuple[str, dict[str, Any]] | None = None,
    read_only: bool = False,
) -> PgConnection:
    kwargs = dict(target[1]) if target is not None else _connect_kwargs(settings)
    kwargs.setdefault("connect_timeout", settings.connect_timeout_s)
    if statement_timeout_ms:
        # One bound for the whole parse: connecting may not take longer than a statement
        # (libpq counts connect_timeout in whole seconds, 2 at the least).
        kwargs["connect_timeout"] = min(int(kwargs["connect_timeout"]), max(2, -(-statement_timeout_ms // 1000)))
    kwargs["application_name"] = application_name
    conn = psycopg2.connect(**kwargs)
    try:
        _configure(conn, settings, statement_timeout_ms, None, read_only=read_only)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(
    conn: PgConnection,
    settings: Settings,
    statement_timeout_ms: int | None,
    application_name: str | None,
    *,
    reset: bool = False,
    read_only: bool = False,
) -> None:
    """Set the registry schema, the statement timeout and (for a reused connection) the name, in
    one round trip; with ``reset`` (a pooled connection, an API request's), every session setting
    goes back to its default first, so nothing an earlier request set carries over, and JIT
    compilation is off; with ``read_only``, the connection stays in autocommit, every statement
    a read-only transaction of its own."""
    setup = sql.SQL("{}SET search_path TO {}, public; SET statement_timeout = {}").format(
        # An API request's queries are short: compiling them (JIT, on by default on many servers)
        # took longer than running them, 10 ms on a page of models.
        sql.SQL("RESET ALL; SET jit = off; " if reset else ""),
        sql.Identifier(settings.schema),
        sql.Literal(int(statement_timeout_ms or 0)),
    )
    if application_name is not None:
        setup = sql.SQL("{}; SET application_name = {}").format(setup, sql.Literal(application_name))
    setup = sql.SQL("{}; SET default_transaction_read_only = {}").format(setup, sql.SQL("on" if read_only else "off"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(setup)
    conn.autocommit = read_only
