"""The registered inference backends and the state their health probes left them in.

A backend is a row of ``detection_model_backends`` (name, base URL, health path, optional
status path, timeout), added and removed with ``modelreg backends``. Each change runs in one
transaction that tells the audit trigger who made it and why, as the lifecycle API does for
versions, so ``detection_model_backend_events`` holds every change and every UP/DOWN
transition.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor

from models_core.errors import ModelRegistryError
from models_core.registry.actors import Actor, Permission
from models_core.store.sql_files import queries

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: A probe waits at most this long (a CHECK of migration 0006 too): health and status
#: requests of a round then end well within the health DAG's one-minute interval.
MAX_TIMEOUT_S = 20.0
#: ... and at least this long: less can never see an answer (a connection alone takes longer).
MIN_TIMEOUT_S = 0.1
#: The ports a TCP connection can be made to.
MIN_PORT, MAX_PORT = 1, 65535


class BackendError(ModelRegistryError):
    """A backend command or lookup cannot be carried out; the message names the backend and field."""


@dataclass(frozen=True)
class Backend:
    """A registered backend: where the health DAG probes it, and for how long it waits."""

    name: str
    base_url: str
    health_path: str = "/health"
    status_path: str | None = None
    timeout_s: float = 5.0

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def validated(self) -> Backend:
        """This backend, or a :class:`BackendError` naming the field that cannot be stored."""
        if not _NAME.fullmatch(self.name or ""):
            raise BackendError(
                f"backend name {self.name!r} must be 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        self._check_base_url()
        for field, path in (("--health-path", self.health_path), ("--status-path", self.status_path)):
            if path is None:
                continue
            if not path.startswith("/"):
                raise BackendError(f"backend {self.name}: {field} {path!r} must start with '/'")
            try:
                httpx.URL(self.url(path))
            except httpx.InvalidURL as exc:
                raise BackendError(f"backend {self.name}: {field} {path!r} does not make a URL: {exc}") from None
        if not (
            isinstance(self.timeout_s, (int, float))
            and math.isfinite(self.timeout_s)
            and MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S
        ):
            raise BackendError(
                f"backend {self.name}: --timeout must be {MIN_TIMEOUT_S:g} to "
                f"{MAX_TIMEOUT_S:g} seconds, got {self.timeout_s!r}"
            )
        return self

    def _check_base_url(self) -> None:
        """Refuse a URL no probe could ever reach, naming what is wrong with it."""
        url, shape = self.base_url or "", "must be http(s)://host[:port][/path]"
        try:
            parts = urlsplit(url)
            httpx.URL(url)
        except (ValueError, httpx.InvalidURL) as exc:  # a broken [IPv6] host, a control character
            raise BackendError(f"backend {self.name}: URL {url!r} cannot be read ({exc}); it {shape}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in parts.hostname):
            raise BackendError(f"backend {self.name}: URL {url!r} {shape}")
        port: int | str | None
        try:
            port = parts.port
        except ValueError:  # not a number, or over 65535
            port = parts.netloc.rpartition(":")[2]
        if port is not None and not (isinstance(port, int) and MIN_PORT <= port <= MAX_PORT):
            raise BackendError(
                f"backend {self.name}: URL {url!r} has port {port}; a port is a number of {MIN_PORT}-{MAX_PORT}"
            )
        if parts.username is not None or parts.password is not None:
            raise BackendError(
                f"backend {self.name}: URL {parts.scheme}://...@{parts.hostname} carries a user name "
                "or password, which everyone who may read the registry would see; give the URL "
                "without them"
            )
        if parts.query or parts.fragment:
            raise BackendError(
                f"backend {self.name}: URL {url!r} {shape}, without '?' or '#': the health and "
                "status paths are appended to it"
            )


@dataclass(frozen=True)
class BackendStatus:
    """A backend with its state after the last probe (all None when it was never probed)."""

    backend: Backend
    status: str | None
    since: datetime | None
    last_sample_at: datetime | None
    latency_ms: float | None
    baseline_ms: float | None
    healthy_samples: int | None
    load_class: str | None
    active_jobs: int | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, as ``modelreg backends list --json`` prints it."""
        return {
            "name": self.backend.name,
            "base_url": self.backend.base_url,
            "health_path": self.backend.health_path,
            "status_path": self.backend.status_path,
            "timeout_s": self.backend.timeout_s,
            "status": self.status,
            "since": self.since.isoformat() if self.since else None,
            "last_sample_at": self.last_sample_at.isoformat() if self.last_sample_at else None,
            "latency_ms": self.latency_ms,
            "baseline_ms": self.baseline_ms,
            "healthy_samples": self.healthy_samples,
            "load_class": self.load_class,
            "active_jobs": self.active_jobs,
            "error": self.error,
        }


def registered_backends(conn: PgConnection) -> list[Backend]:
    """Every registered backend, by name."""
    with conn.cursor() as cur:
        cur.execute(queries("backends/backends.sql")["backends"])
        rows = cur.fetchall()
    conn.rollback()
    return [Backend(*row) for row in rows]


def backend_statuses(conn: PgConnection, name: str | None = None) -> list[BackendStatus]:
    """Every backend (or the one named) with its state now."""
    with conn.cursor() as cur:
        cur.execute(queries("backends/backends.sql")["backend_statuses"], {"name": name})
        rows = cur.fetchall()
    conn.rollback()
    return [BackendStatus(Backend(*row[:5]), *row[5:]) for row in rows]


def add_backend(conn: PgConnection, backend: Backend, *, actor: Actor, reason: str | None = None) -> Backend:
    """Register ``backend``; refuses a bad field or a name already taken, naming it."""
    backend = backend.validated()
    with conn, conn.cursor() as cur:
        _set_context(cur, "backend_add", actor, reason)
        cur.execute(queries("backends/backends.sql")["insert_backend"], backend.__dict__)
        if cur.fetchone() is None:
            raise BackendError(
                f"backend {backend.name} is already registered; "
                f"`modelreg backends remove {backend.name}` first to change it"
            )
    return backend


def remove_backend(
    conn: PgConnection, name: str, *, actor: Actor, callers: list[str], reason: str | None = None, force: bool = False
) -> None:
    """Remove a backend with its samples and state.

    ``callers`` are the ACTIVE versions that call it; with any, the removal is refused
    (their tasks would fail, the backend being unknown) unless ``force``.
    """
    if callers and not force:
        raise BackendError(
            f"backend {name} is called by ACTIVE versions {', '.join(callers)}; their tasks would "
            "fail. Point them at another backend first, or use --force --reason"
        )
    if callers:  # forced: their tasks will fail, so it is a forced, reasoned change like any other
        actor.require(Permission.FORCE, f"force the removal of backend {name}")
        if not (reason or "").strip():
            raise BackendError(
                f"--force needs --reason: removing backend {name} fails the tasks of "
                f"{', '.join(callers)}, and is recorded with why"
            )
    with conn, conn.cursor() as cur:
        _set_context(cur, "backend_remove", actor, reason)
        cur.execute(queries("backends/backends.sql")["delete_backend"], {"name": name})
        if cur.rowcount == 0:
            raise BackendError(f"backend {name!r} is not registered (see `modelreg backends list`)")


def _set_context(cur: PgCursor, action: str, actor: Actor, reason: str | None) -> None:
    """The change's context for the audit triggers (the registry's own), once ``actor`` may make it."""
    actor.require(Permission.REQUEST, f"{action.replace('_', ' ')} a backend")
    cur.execute(
        queries("registry/session.sql")["set_change_context"],
        {
            "action": action,
            "actor": actor.id,
            "actor_kind": str(actor.kind),
            "reason": reason,
            "gates": None,
            "basis": None,
            "request_id": None,
        },
    )
