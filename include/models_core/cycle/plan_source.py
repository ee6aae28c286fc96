"""Where a DAG parse gets its plan: the registry, or the last plan that worked.

Airflow re-parses the DAG file every ~30 s and again when each task starts, so this reads
the registry in two queries under a statement timeout. Each good plan is kept in a cache
file; when the registry cannot be read, or describes a plan that cannot run (a dependency
cycle, however it got there, or two classes with one model_id), that last-known-good plan
is used with the reason, so the DAG neither vanishes nor runs something broken.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

import psycopg2

from models_core.discovery import discover_models
from models_core.errors import DependencyCycleError, DuplicateModelIdError, RegistryUnavailableError
from models_core.plan import Plan, build_plan
from models_core.settings import Settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import read_registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan
    stale_reason: str | None = None  # set when the plan came from the cache: why


def plan_from_registry(settings: Settings) -> Plan:
    """Build the plan from the registry database and the models package."""
    discovery = discover_models(settings.models_package)
    with registry_connection(settings, statement_timeout_ms=settings.parse_statement_timeout_ms,
                             application_name="models_core:parse") as conn:
        versions, edges = read_registry(conn)
    return build_plan(versions, edges, discovery.classes, discovery.import_errors)


def load_plan(settings: Settings) -> LoadedPlan:
    """The plan to build the DAG from, falling back to the cached one when the registry's can't be had.

    Without a cached plan the error propagates: an unreachable registry as
    :class:`RegistryUnavailableError`, a cycle as :class:`DependencyCycleError` naming its models.
    """
    try:
        plan = plan_from_registry(settings)
    except psycopg2.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"the registry could not be read ({type(exc).__name__}: {detail})"
        cached = read_cached_plan(settings)
        if cached is None:
            raise RegistryUnavailableError(
                f"cannot read the model registry through connection {settings.conn_id!r} "
                f"(schema {settings.schema!r}): {type(exc).__name__}: {detail}. No last-known-good plan "
                f"exists at {settings.plan_cache_path}; check the connection, then run `modelreg migrate`."
            ) from exc
        return _stale(settings, cached, reason)
    except (DependencyCycleError, DuplicateModelIdError) as exc:
        cached = read_cached_plan(settings)
        if cached is None:
            raise
        return _stale(settings, cached, f"the registry's plan cannot run: {exc}")
    for warning in plan.warnings:
        log.warning("registry plan: %s", warning)
    _write_cache(settings, plan)
    return LoadedPlan(plan)


def _stale(settings: Settings, cached: Plan, reason: str) -> LoadedPlan:
    log.warning("%s; using the last-known-good plan %s from %s", reason, cached.fingerprint, settings.plan_cache_path)
    return LoadedPlan(cached, stale_reason=reason)


def read_cached_plan(settings: Settings) -> Plan | None:
    """The last-known-good plan, i.e. the one the last successful parse on this machine built."""
    try:
        return Plan.from_json(settings.plan_cache_path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable plan cache %s: %s", settings.plan_cache_path, exc)
        return None


def _write_cache(settings: Settings, plan: Plan) -> None:
    """Replace the cache atomically, and only when the plan changed."""
    text = plan.to_json()
    path = settings.plan_cache_path
    try:
        if path.exists() and path.read_text() == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".plan_cache.")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write plan cache %s: %s", path, exc)
