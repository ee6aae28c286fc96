"""What the registry pages show, put together from the lifecycle API and the snapshot's parts.

The registry's state (versions, roles, gates, tags, checks, approvals, history) comes from
:class:`ModelRegistry`, the backends' from their catalog;
how each version behaved over the chosen window (cycles, failures, durations, metric means,
a shadow's evaluation against its PRIMARY), the registry health and the drift from the parts of
the monitoring snapshot (:mod:`models_core.maintenance.snapshots`), computed as the snapshot
DAG computes them, for the models shown only, and only the parts a page shows. Nothing here
decides anything: it only joins them by version id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.backends.assignment import active_callers
from models_core.backends.availability import state_unavailable_reason
from models_core.backends.catalog import backend_statuses
from models_core.maintenance.snapshots import Window, drift_findings, registry_health, version_figures
from models_core.registry.metadata import check_filter_keys_once
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.session import semver_key
from models_core.settings import Settings
from models_core.store.sql_files import queries

#: A SHADOW/CHALLENGER's evaluation against its PRIMARY: what the page calls each metric
#: the model task stores (their means over the window are what the quality gates compare).
EVALUATION_METRICS = {
    "coverage": "eval_coverage",
    "agreement": "eval_agreement",
    "score_difference": "eval_score_mean_abs_diff",
    "duration_ratio": "eval_duration_ratio",
}

#: Points a metric chart gets at most per version; longer windows average cycles into buckets.
CHART_POINTS = 120


def window_ending_now(hours: float) -> Window:
    end = datetime.now(UTC)
    return Window(start=end - timedelta(hours=hours), end=end)


def _rows(conn: PgConnection, name: str, params: dict[str, Any]) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(queries("api/queries.sql")[name], params)
        rows = cur.fetchall()
    conn.rollback()
    return rows


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's entry for one version, as the pages show it."""
    means = {key: stats["mean"] for key, stats in entry["metrics"].items()}
    figures = {key: entry[key] for key in ("cycles", "succeeded", "failed", "skipped", "signal")}
    figures["duration_p50_ms"] = (entry["duration_ms"] or {}).get("p50")
    figures["outputs_per_cycle"] = entry["outputs"]["mean_per_cycle"]
    figures["metrics"] = {key: mean for key, mean in means.items() if not key.startswith("eval_")}
    if entry["role"] != "PRIMARY":
        figures["evaluation"] = {name: means.get(key) for name, key in EVALUATION_METRICS.items()}
    return figures


def _last_outcomes(conn: PgConnection, version_ids: list[int], window: Window) -> dict[int, dict[str, Any]]:
    rows = _rows(conn, "last_outcomes", {"version_ids": version_ids, "start": window.start, "end": window.end})
    return {
        version_id: {"cycle_started_at": cycle, "state": state, "run_id": run_id, "task_id": task_id}
        for version_id, cycle, state, run_id, task_id in rows
    }


def _window(window: Window) -> dict[str, Any]:
    return {"start": window.start, "end": window.end, "hours": window.hours}


#: Models on one page of the models page, unless the request asks for another number: about a
#: screen of them, each with its running versions. A page's cost is its models' (their versions,
#: and 8 days of their metrics for the drift), whatever the registry's size.
PAGE_SIZE = 25
#: Versions carrying a tag filter's tags listed per model on the models page (the newest).
TAGGED_SHOWN = 5


@dataclass(frozen=True)
class ModelFilter:
    """Which models the models page lists: those with a version matching every version filter at
    once (``tags``, each ``(KEY, VALUE)`` or ``(KEY, None)`` for any value; ``status``; an ACTIVE
    ``role``; ``text`` in the model id or the description, case-insensitive), and with
    ``attention`` only those needing someone (a version in ERROR, a request waiting for
    approval, no ACTIVE PRIMARY)."""

    tags: tuple[tuple[str, str | None], ...] = ()
    status: str | None = None
    role: str | None = None
    text: str | None = None
    attention: bool = False

    def __post_init__(self) -> None:
        check_filter_keys_once(self.tags)  # the tag table's lead tag and the JSON of all assume it

    @property
    def is_set(self) -> bool:
        return bool(self.tags or self.status or self.role or self.text or self.attention)

    def as_json(self) -> dict[str, Any]:
        return {
            "tag": [key if value is None else f"{key}={value}" for key, value in self.tags],
            "status": self.status,
            "role": self.role,
            "q": self.text,
            "attention": self.attention,
        }


@dataclass(frozen=True)
class _PageVersion:
    """What the models page shows of a version (``versions_of_models``)."""

    id: int
    model_id: str
    version: str
    status: str
    role: str
    tagged: bool | None  # carries every tag asked for, and is among the newest TAGGED_SHOWN so; None without a filter
    versions: int  # how many versions its model has
    tagged_count: int  # how many of its model's versions carry every tag asked for


def _tag_params(found: ModelFilter) -> dict[str, Any]:
    """The tag filter as the queries take it: a JSON object of KEY: VALUE, and the KEYs with any value."""
    return {
        "tags": json.dumps({k: v for k, v in found.tags if v is not None}) if found.tags else None,
        "tag_keys": [k for k, v in found.tags if v is None] or None,
    }


def _page_of_models(conn: PgConnection, found: ModelFilter, limit: int, offset: int) -> tuple[list[str], bool]:
    """The model ids of one page, in order, and whether another page follows.

    Without a filter the ids come off the versions' (model_id, version) key page by page; with
    a tag, off the tag table in model order, led by the first tag asked for (``tagged_models``
    in ``queries.sql``); with other filters only, from the matching versions (``matching_models``).
    """
    params: dict[str, Any] = {"limit": limit + 1, "offset": offset}
    if not found.is_set:
        rows = _rows(conn, "first_models", params)
    else:
        filters = {
            **params,
            **_tag_params(found),
            "status": found.status,
            "role": found.role,
            "text": found.text or None,
            "attention": found.attention,
        }
        if found.tags:
            # A KEY=VALUE leads before a KEY alone: fewer versions carry it.
            lead_key, lead_value = next(((k, v) for k, v in found.tags if v is not None), found.tags[0])
            rows = _rows(conn, "tagged_models", {**filters, "lead_key": lead_key, "lead_value": lead_value})
        else:
            rows = _rows(conn, "matching_models", filters)
    ids = [model_id for (model_id,) in rows]
    return ids[:limit], len(ids) > limit


def models_overview(
    registry: ModelRegistry,
    settings: Settings,
    window: Window,
    found: ModelFilter = ModelFilter(),
    *,
    limit: int = PAGE_SIZE,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of models (by model id, filtered on the server by ``found``): for each its PRIMARY
    and ACTIVE shadows/challengers with their last cycle and window figures, its versions in
    ERROR with why, and its pending approvals; the registry health and drift of those models.

    Every query is bounded by the page: the versions, edges, requests and the snapshot of the
    page's models only, so a page costs the same at 10 models or 1,000. With tags, each model
    lists the newest :data:`TAGGED_SHOWN` versions carrying every one (``tagged``) and how many
    do (``tagged_count``); ``modelreg list --tag`` and the model's page list them all.
    """
    conn = registry.conn
    page, more = _page_of_models(conn, found, limit, offset)
    rows = _rows(conn, "versions_of_models", {"models": page, "tagged_shown": TAGGED_SHOWN, **_tag_params(found)})
    versions = [_PageVersion(*row) for row in rows]
    versions.sort(key=lambda v: semver_key(v.version), reverse=True)  # newest first within a model:
    versions.sort(key=lambda v: v.model_id)  # the sort is stable
    upstream = defaultdict(list)
    for model_id, depends_on in _rows(conn, "upstream_of_models", {"models": page}):
        upstream[model_id].append(depends_on)
    shown = page or ["-"]  # no model: no figures (None would mean all of them)
    entries = version_figures(conn, window, shown, compare=False)
    figures = {entry["version_id"]: _figures(entry) for entry in entries}
    last = _last_outcomes(conn, [v.id for v in versions if v.status == "ACTIVE"], window)
    pending = dict(_rows(conn, "pending_requests_of_models", {"models": page}))
    reasons = registry.lifecycle.error_reasons(sorted({v.model_id for v in versions if v.status == "ERROR"}))
    models: dict[str, dict[str, Any]] = {}
    for v in versions:
        model = models.setdefault(
            v.model_id,
            {
                "model_id": v.model_id,
                "upstream": upstream[v.model_id],
                "primary": None,
                "challengers": [],
                "versions": v.versions,
                "errors": [],
                "pending_approvals": pending.get(v.model_id, 0),
                **({"tagged": [], "tagged_count": v.tagged_count} if found.tags else {}),
            },
        )
        if v.tagged:
            model["tagged"].append(v.version)
        if v.status == "ERROR":
            model["errors"].append(
                {"id": v.id, "version": v.version, "role": v.role, **reasons.get(v.model_id, {}).get(v.version, {})}
            )
        if v.status != "ACTIVE":
            continue
        running = {"id": v.id, "version": v.version, "role": v.role, "last": last.get(v.id), **figures.get(v.id, {})}
        if v.role == "PRIMARY":
            model["primary"] = running
        else:
            model["challengers"].append(running)
    health = registry_health(conn, window, shown, settings.models_package, entries)
    conn.rollback()
    return {
        "window": _window(window),
        "models": list(models.values()),
        "page": {"offset": offset, "limit": limit, "has_more": more, "filters": found.as_json()},
        "registry": health,
    }


def flagged_drift(conn: PgConnection, settings: Settings, window: Window, models: list[str]) -> dict[str, Any]:
    """The drift of ``models`` (a page's) that left the band, as the snapshot finds it. Apart from
    the page of models, which the registry page shows first and then asks for this: it reads
    eight days of the models' metrics, the costliest read of a page."""
    findings = drift_findings(conn, window, models, settings.drift_band)
    conn.rollback()
    return {
        "window": _window(window),
        "band": settings.drift_band,
        "findings": [] if isinstance(findings, str) else [d for d in findings if d["flagged"]],
        "not_computed": findings if isinstance(findings, str) else None,
    }


def model_detail(registry: ModelRegistry, model_id: str, window: Window) -> tuple[dict[str, Any], list[str]]:
    """``modelreg show`` of one model, its self-healing policy, and for each version its window
    figures, its stage checks now and, in ERROR, why; and ``modelreg history`` of it, its rows
    as JSON text (:meth:`~models_core.registry.lifecycle.Lifecycle.history_json`)."""
    conn = registry.conn
    records = registry.lifecycle.versions(model_id)
    detail = registry.show(model_id, every=records)
    entries = version_figures(conn, window, [model_id], compare=False)
    figures = {entry["version_id"]: _figures(entry) for entry in entries}
    conn.rollback()
    last = _last_outcomes(conn, list(figures), window)  # a version without figures did not run in the window
    checks = registry.evidence.stage_checks_of(records)
    errored = any(version["status"] == "ERROR" for version in detail["versions"])
    reasons = registry.lifecycle.error_reasons([model_id]).get(model_id, {}) if errored else {}
    for version in detail["versions"]:
        version["window"] = figures.get(version["id"])
        version["last"] = last.get(version["id"])
        version["checks"] = [asdict(c) for c in checks[version["id"]]]
        version["error"] = reasons.get(version["version"]) if version["status"] == "ERROR" else None
    detail["healing_policy"] = registry.guards.healing_policy(model_id)
    detail["window"] = _window(window)
    return detail, registry.lifecycle.history_json(model_id)


def metric_trends(conn: PgConnection, model_id: str, window: Window) -> dict[str, Any]:
    """Each metric's values per version over the window, at most :data:`CHART_POINTS` points each."""
    bucket = max(timedelta(seconds=1), (window.end - window.start) / CHART_POINTS)
    rows = _rows(
        conn, "metric_series", {"model_id": model_id, "start": window.start, "end": window.end, "bucket": bucket}
    )
    series: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for key, version_id, version, at, value in rows:
        line = series[key].setdefault(version_id, {"version_id": version_id, "version": version, "points": []})
        line["points"].append((at, value))
    return {
        "window": _window(window),
        "bucket_seconds": bucket.total_seconds(),
        "metrics": {key: list(lines.values()) for key, lines in series.items()},
    }


def cycle_outputs(conn: PgConnection, version_id: int, cycle: datetime, limit: int) -> dict[str, Any] | None:
    """What one version stored for one cycle: its first rows, their count, its metrics, and the
    role it ran in then (its status and role now may differ)."""
    found = _rows(conn, "version_by_id", {"version_id": version_id})
    if not found:
        return None
    ((model_id, version, status_now, role_now),) = found
    params = {"version_id": version_id, "cycle": cycle, "limit": limit}
    ((count,),) = _rows(conn, "cycle_output_count", params)
    stored = _rows(conn, "cycle_metrics", params)
    metrics = {key: value for key, value, _role in stored}
    evaluated = any(key in metrics for key in EVALUATION_METRICS.values())  # a SHADOW/CHALLENGER's cycle
    return {
        "model_id": model_id,
        "version": version,
        "cycle_started_at": cycle,
        "role": stored[0][2] if stored else None,
        "now": f"{status_now} {role_now}",
        "output_count": count,
        "rows": [
            {"seq": seq, "input_ref": ref, "outputs": out} for seq, ref, out in _rows(conn, "cycle_output_rows", params)
        ],
        "metrics": {key: value for key, value in metrics.items() if not key.startswith("eval_")},
        "evaluation": {name: metrics.get(key) for name, key in EVALUATION_METRICS.items()} if evaluated else None,
    }


def backends_overview(conn: PgConnection, settings: Settings) -> dict[str, Any]:
    """Every registered backend with its health (``modelreg backends list``), why a task would
    skip calling it now (the rule the model task applies), and the ACTIVE versions that call it;
    ``unregistered``: backends ACTIVE versions call that nobody registered (their tasks fail)."""
    now = datetime.now(UTC)
    callers: dict[str, list[dict[str, str]]] = defaultdict(list)
    for caller in active_callers(conn, settings.models_package):
        callers[caller.backend].append({"model_id": caller.model_id, "version": caller.version, "role": caller.role})
    backends = [
        {
            **state.as_dict(),
            "unavailable": state_unavailable_reason(state, now, settings.backend_stale_after),
            "callers": callers.pop(state.backend.name, []),
        }
        for state in backend_statuses(conn)
    ]
    return {
        "at": now,
        "stale_after_seconds": settings.backend_stale_after.total_seconds(),
        "backends": backends,
        "unregistered": [{"name": name, "callers": found} for name, found in sorted(callers.items())],
    }
