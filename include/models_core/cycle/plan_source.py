"""Where a DAG parse gets its plan: the registry, or the last plan that worked.

Airflow re-parses the DAG file every ~30 s and again when each task starts, so this reads
the registry in two queries under a statement timeout. Each good plan is kept in a cache
file; when the registry cannot be read, or describes a plan that cannot run (a dependency
cycle, however it got there, or two classes with one model_id), that last-known-good plan
is used with the reason, so the DAG neither vanishes nor runs something broken. A plan
built while a model module failed to import is cached without the fingerprint a worker
reuses it by: the failure may be gone at the next parse with nothing the fingerprint covers
changed (a module outside the package fixed, a dependency installed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass

import psycopg2
from psycopg2.extensions import connection as PgConnection

from models_core.discovery import discover_models, package_files
from models_core.errors import DependencyCycleError, DuplicateModelIdError, RegistryUnavailableError
from models_core.plan import Plan, VersionRow, build_plan
from models_core.settings import Settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import read_registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan
    stale_reason: str | None = None  # set when the plan came from the cache: why


@dataclass(frozen=True)
class _CachedPlan:
    """The cache file: the last good plan and the fingerprint of what it was built from."""

    plan: Plan
    inputs: str | None  # None: never reused as it is (built with an import failure, or an older cache)


def plan_from_registry(settings: Settings) -> Plan:
    """Build the plan from the registry database and the models package."""
    versions, edges = _read_registry(settings)
    return _build(settings, versions, edges)[0]


def plan_from_connection(conn: PgConnection, settings: Settings) -> Plan:
    """The plan of the registry as ``conn`` sees it, uncommitted changes of its transaction included."""
    versions, edges = read_registry(conn)
    return _build(settings, versions, edges)[0]


def load_plan(settings: Settings, *, reuse_cached: bool = False) -> LoadedPlan:
    """The plan to build the DAG from, falling back to the cached one when the registry's can't be had.

    With ``reuse_cached`` (a worker's parse), the cached plan is taken as it is when the
    registry rows and the models package's files are exactly those it was built from and
    every model module imported then, which spares importing them all again; the rows are
    still read, so a stale plan is never taken, and the connection that read them is left
    for the task that runs next. Without a
    cached plan the errors propagate: an unreachable registry as
    :class:`RegistryUnavailableError`, a cycle as :class:`DependencyCycleError` naming its models.
    """
    try:
        versions, edges = _read_registry(settings, keep_for_task=reuse_cached)
        inputs = _inputs_fingerprint(settings, versions, edges)
        # Read only where it may be used (decoding a plan of 5,000 versions costs about 15 ms).
        cached = _read_cache(settings) if reuse_cached else None
        if cached is not None and cached.inputs == inputs:
            return LoadedPlan(cached.plan)
        plan, imports_failed = _build(settings, versions, edges)
    except psycopg2.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"the registry could not be read ({type(exc).__name__}: {detail})"
        cached = _read_cache(settings)
        if cached is None:
            raise RegistryUnavailableError(
                f"cannot read the model registry through connection {settings.conn_id!r} "
                f"(schema {settings.schema!r}): {type(exc).__name__}: {detail}. No last-known-good plan "
                f"exists at {settings.plan_cache_path}; check the connection, then run `modelreg migrate`."
            ) from exc
        return _stale(settings, cached.plan, reason)
    except (DependencyCycleError, DuplicateModelIdError) as exc:
        cached = _read_cache(settings)
        if cached is None:
            raise
        return _stale(settings, cached.plan, f"the registry's plan cannot run: {exc}")
    for warning in plan.warnings:
        log.warning("registry plan: %s", warning)
    _write_cache(settings, plan, None if imports_failed else inputs)
    return LoadedPlan(plan)


def _read_registry(
    settings: Settings, *, keep_for_task: bool = False
) -> tuple[list[VersionRow], list[tuple[str, str]]]:
    with registry_connection(
        settings,
        statement_timeout_ms=settings.parse_statement_timeout_ms,
        application_name="models_core:parse",
        keep_for_task=keep_for_task,
    ) as conn:
        return read_registry(conn)


def _build(settings: Settings, versions: list[VersionRow], edges: list[tuple[str, str]]) -> tuple[Plan, bool]:
    """The plan, and whether a model module failed to import while it was built."""
    discovery = discover_models(settings.models_package)
    return build_plan(versions, edges, discovery.classes, discovery.import_errors), bool(discovery.import_errors)


def _inputs_fingerprint(settings: Settings, versions: list[VersionRow], edges: list[tuple[str, str]]) -> str:
    """What a plan is built from: the registry rows, and the models package's files (by size and time)."""
    payload = json.dumps(
        [
            settings.models_package,
            package_files(settings.models_package),
            [(v.id, v.model_id, v.version, v.role) for v in versions],
            edges,
        ]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _stale(settings: Settings, cached: Plan, reason: str) -> LoadedPlan:
    log.warning("%s; using the last-known-good plan %s from %s", reason, cached.fingerprint, settings.plan_cache_path)
    return LoadedPlan(cached, stale_reason=reason)


def read_cached_plan(settings: Settings) -> Plan | None:
    """The last-known-good plan, i.e. the one the last successful parse on this machine built."""
    cached = _read_cache(settings)
    return cached.plan if cached else None


def _read_cache(settings: Settings) -> _CachedPlan | None:
    try:
        data = json.loads(settings.plan_cache_path.read_text())
        if "plan" not in data:  # a cache file of the plan alone, as written before
            return _CachedPlan(Plan.from_dict(data), None)
        # A plan cached before plans kept their left-out versions cannot say why one is missing.
        return _CachedPlan(Plan.from_dict(data["plan"]), data["inputs"] if "left_out" in data["plan"] else None)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable plan cache %s: %s", settings.plan_cache_path, exc)
        return None


def _write_cache(settings: Settings, plan: Plan, inputs: str | None) -> None:
    """Replace the cache atomically, and only when it changed."""
    text = json.dumps({"inputs": inputs, "plan": plan.to_dict()}, sort_keys=True, separators=(",", ":"))
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
