"""Fewer SHADOW/CHALLENGER tasks at once while a backend they call is busy.

The shadows' Airflow pool (``shadow_pool``, ``shadow_pool_slots`` slots normally) is sized
after each health round by the busiest UP backend that an ACTIVE SHADOW/CHALLENGER calls:
idle or normal keeps every slot, busy halves them, very busy leaves one. PRIMARY tasks use
no pool and are never held back.

How the pool is changed: Airflow 3 keeps pools in its metadata database, which task code
may not use (the task SDK refuses ORM access) and a worker need not reach. The public REST
API is what a task may use: ``PATCH /api/v2/pools/{name}``, with a token from
``POST /auth/token`` (the simple and FAB auth managers' token endpoint), through the
Airflow connection named by ``airflow_api_conn_id`` (host = the API server's base URL,
login/password = a user allowed to edit pools). Workers reach the API server anyway (it
serves their Execution API). Without that connection the step skips and says how to turn
it on; the pool then keeps the size it has.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Self

import httpx

from models_core.backends.assignment import active_callers
from models_core.backends.catalog import backend_statuses
from models_core.backends.health_rules import LOAD_CLASSES
from models_core.settings import Settings

log = logging.getLogger(__name__)

_SHADOW_ROLES = ("SHADOW", "CHALLENGER")
_API_TIMEOUT_S = 10.0


def shadow_slots(normal_slots: int, loads: list[str]) -> int:
    """Slots for the shadow pool given the load classes of the backends the shadows call."""
    busiest = max((LOAD_CLASSES.index(load) for load in loads), default=0)
    if LOAD_CLASSES[busiest] == "very_busy":
        return 1
    if LOAD_CLASSES[busiest] == "busy":
        return max(1, normal_slots // 2)
    return normal_slots


@dataclass(frozen=True)
class PoolDecision:
    """The size the shadow pool should have now, and the busy backends that made it so."""

    slots: int
    normal_slots: int
    loads: dict[str, str]  # backend -> load class, for the UP backends shadows call

    @property
    def why(self) -> str:
        busy = {name: load for name, load in sorted(self.loads.items()) if load in ("busy", "very_busy")}
        if not busy:
            return "no backend called by an ACTIVE SHADOW/CHALLENGER is busy"
        return "busy backends called by shadows: " + ", ".join(f"{name} ({load})" for name, load in busy.items())


def decide_shadow_slots(conn: Any, settings: Settings) -> PoolDecision:
    """The shadow pool's size for the load the last health round measured."""
    called = {c.backend for c in active_callers(conn, settings.models_package) if c.role in _SHADOW_ROLES}
    loads = {
        s.backend.name: s.load_class
        for s in backend_statuses(conn)
        if s.backend.name in called and s.status == "UP" and s.load_class
    }
    return PoolDecision(
        shadow_slots(settings.shadow_pool_slots, list(loads.values())), settings.shadow_pool_slots, loads
    )


class AirflowPoolsApi:
    """The pools endpoints of Airflow's public REST API, as an authenticated client."""

    def __init__(self, base_url: str, login: str | None, password: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=_API_TIMEOUT_S)
        if login:
            response = self._call("POST", "/auth/token", json={"username": login, "password": password or ""})
            self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    @classmethod
    def from_connection(cls, conn_id: str) -> Self | None:
        """A client for the Airflow connection ``conn_id``, or None when it is not defined."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            return None
        host = conn.host or ""
        base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
        if conn.port and base.count(":") < 2:
            base = f"{base}:{conn.port}"
        return cls(base, conn.login, conn.password)

    def pool(self, name: str) -> dict[str, Any]:
        """The pool as the API describes it (``name``, ``slots``, ``include_deferred``, ...)."""
        return self._call("GET", f"/api/v2/pools/{name}").json()

    def set_slots(self, pool: dict[str, Any], slots: int) -> None:
        """Change only the slots (``update_mask``); the API validates the whole pool, so it is sent whole."""
        self._call(
            "PATCH",
            f"/api/v2/pools/{pool['name']}",
            params={"update_mask": "slots"},
            json={"pool": pool["name"], "slots": slots, "include_deferred": pool["include_deferred"]},
        )

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RuntimeError(
                f"Airflow API at {self.base_url} unreachable ({method} {path}): {type(exc).__name__}: {exc}"
            ) from None
        if not response.is_success:
            raise RuntimeError(
                f"Airflow API at {self.base_url}: {method} {path} answered HTTP "
                f"{response.status_code}: {' '.join(response.text.split())[:300]}"
            )
        return response


def apply_pool_size(api: AirflowPoolsApi, pool: str, decision: PoolDecision) -> dict[str, Any]:
    """Set the pool to the decided size if it has another; say what happened."""
    found = api.pool(pool)
    current = int(found["slots"])
    if current != decision.slots:
        api.set_slots(found, decision.slots)
        log.warning("shadow pool %s: %d -> %d slots (%s)", pool, current, decision.slots, decision.why)
    else:
        log.info("shadow pool %s keeps %d slots (%s)", pool, current, decision.why)
    return {"pool": pool, "before": current, "slots": decision.slots, "why": decision.why, "loads": decision.loads}
