"""Monitoring snapshots: how the models behaved over a window, as JSON and Markdown.

Per version: cycles run, succeeded, failed, skipped (and of those, for a backend down); duration
p50/p95/max; outputs; every metric's count/mean/min/max; for a SHADOW/CHALLENGER, coverage,
identical outputs and agreement (on the output key its class compares, as its cycles'
evaluation measured it) against its
PRIMARY on the same inputs. Then drift against the same window one and 1-7 days earlier,
"silent fault" (ran, produced nothing) against "no signal" (did not run), registry health,
cycles whose run never finished (a missing shadow pool holds them open) and partition
health. Stored in detection_model_snapshots and written to the reports folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.discovery import discover_models
from models_core.maintenance.partition_maintenance import KIND as MAINTENANCE_KIND
from models_core.store.partitions import add_months, list_partitions, month_bounds
from models_core.store.sql_files import fetch_value, queries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def _rows(conn: PgConnection, name: str, params: dict[str, Any]) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(queries("maintenance/snapshots.sql")[name], params)
        return cur.fetchall()


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _params(window: Window, models: list[str] | None) -> dict[str, Any]:
    return {"start": window.start, "end": window.end, "models": models or None}


def version_figures(
    conn: PgConnection, window: Window, models: list[str] | None, *, compare: bool = True
) -> list[dict[str, Any]]:
    """One entry per version of ``models`` (None: all) that is ACTIVE now or ran in the window:
    its outcomes, durations, outputs, metrics and signal; with ``compare``, each
    SHADOW/CHALLENGER's row-by-row comparison with its PRIMARY too (the costliest part, which
    the registry pages do not show: they show the evaluation the cycles stored)."""
    params = _params(window, models)
    entries: dict[int, dict[str, Any]] = {}
    for version_id, model_id, version, role in _rows(conn, "active_versions", params):
        entries[version_id] = {
            "model_id": model_id,
            "version_id": version_id,
            "version": version,
            "role": role,
            "active": True,
            "cycles": 0,
            "succeeded": 0,
            "failed": 0,
            "skipped": 0,
            "skipped_backend_down": 0,
        }
    for model_id, version_id, version, role, cycles, succeeded, failed, skipped, backend_down in _rows(
        conn, "outcomes", params
    ):
        entry = entries.setdefault(
            version_id,
            {"model_id": model_id, "version_id": version_id, "version": version, "role": role, "active": False},
        )
        entry.update(
            cycles=cycles, succeeded=succeeded, failed=failed, skipped=skipped, skipped_backend_down=backend_down
        )
    stats: dict[int, dict[str, dict[str, float]]] = {}
    for version_id, key, count, mean, low, high, p50, p95, total in _rows(conn, "metric_stats", params):
        stats.setdefault(version_id, {})[key] = {
            "count": count,
            "mean": mean,
            "min": low,
            "max": high,
            "p50": p50,
            "p95": p95,
            "sum": total,
        }
    comparisons = {row[0]: row[1:] for row in _rows(conn, "shadow_comparison", params)} if compare else {}
    for version_id, entry in entries.items():
        metrics = stats.get(version_id, {})
        duration = metrics.get("cycle_duration_ms")
        outputs = metrics.get("output_count")
        entry["duration_ms"] = (
            {"p50": duration["p50"], "p95": duration["p95"], "max": duration["max"]} if duration else None
        )
        entry["outputs"] = {
            "total": int(outputs["sum"]) if outputs else 0,
            "mean_per_cycle": outputs["mean"] if outputs else None,
        }
        entry["metrics"] = {
            key: {k: value[k] for k in ("count", "mean", "min", "max")}
            for key, value in metrics.items()
            if key not in ("cycle_duration_ms", "output_count")
        }
        if compare and entry["role"] != "PRIMARY":
            both, shadow_only, primary_only, agreeing = comparisons.get(version_id, (0, 0, 0, 0))
            evaluated = metrics.get("eval_agreement")
            entry["comparison"] = {
                "both_sides": both,
                "shadow_only": shadow_only,
                "primary_only": primary_only,
                "coverage": _ratio(both, both + shadow_only + primary_only),
                "identical_outputs": _ratio(agreeing, both),
                "agreement": round(evaluated["mean"], 4) if evaluated else None,
            }
        if entry["succeeded"] == 0 and entry["failed"] == 0:
            entry["signal"] = "no_signal"
        elif entry["succeeded"] and entry["outputs"]["total"] == 0:
            entry["signal"] = "silent_fault"
        else:
            entry["signal"] = "ok"
    return sorted(entries.values(), key=lambda e: (e["model_id"], e["role"] != "PRIMARY", e["version_id"]))


#: What the drift compares at most: a window of a day against the same window on each of the
#: seven days before (a longer window would overlap the days it is compared with).
DRIFT_MAX_HOURS = 24


def drift_findings(
    conn: PgConnection, window: Window, models: list[str] | None, band: float
) -> list[dict[str, Any]] | str:
    """Each metric's mean per cycle now against one day earlier and the mean of 1-7 days earlier,
    for ``models`` (None: all); ``flagged`` names the references it left ``band`` (a fraction) of.
    Over :data:`DRIFT_MAX_HOURS` it is not computed, and says so."""
    if window.hours > DRIFT_MAX_HOURS:
        return f"not computed for windows over {DRIFT_MAX_HOURS} hours"
    by_key: dict[tuple[int, str], dict[int, float]] = {}
    for version_id, key, days_back, mean in _rows(conn, "drift", _params(window, models)):
        by_key.setdefault((version_id, key), {})[days_back] = mean
    names = dict(_rows(conn, "version_labels", {"ids": sorted({version_id for version_id, _ in by_key})}))
    findings = []
    for (version_id, key), values in sorted(by_key.items()):
        now = values.get(0)
        previous_day = values.get(1)
        week = [values[d] for d in range(1, 8) if d in values]
        week_mean = sum(week) / len(week) if week else None
        flags = [
            name
            for name, reference in (("previous_day", previous_day), ("previous_7_days", week_mean))
            if reference is not None
            and (now is None or abs(now - reference) > band * abs(reference) or (reference == 0 and now != 0))
        ]
        findings.append(
            {
                "label": names[version_id],
                "version_id": version_id,
                "metric": key,
                "now": now,
                "previous_day": previous_day,
                "previous_7_days_mean": week_mean,
                "flagged": flags,
            }
        )
    return findings


def registry_health(
    conn: PgConnection, window: Window, models: list[str] | None, models_package: str, versions: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ACTIVE versions of ``versions`` (from :func:`version_figures`) against the model
    classes, and the PRIMARY failures and skips of ``models`` in the window."""
    params = _params(window, models)
    active = [v for v in versions if v["active"]]
    active_models = {v["model_id"] for v in active}
    discovery = discover_models(models_package)
    problems: dict[str, dict[str, int]] = {}
    backend_down: dict[str, int] = {}
    for model_id, state, for_backend, count in _rows(conn, "primary_problems", params):
        if for_backend:
            backend_down[model_id] = backend_down.get(model_id, 0) + count
        else:
            problems.setdefault(model_id, {})[state] = count
    return {
        "active_versions": len(active),
        "rows_without_class": sorted(
            f"{v['model_id']}@{v['version']}" for v in active if v["model_id"] not in discovery.classes
        ),
        "classes_without_rows": sorted(set(discovery.classes) - active_models) if params["models"] is None else [],
        "module_import_errors": list(discovery.import_errors),
        "primary_failed": {m: s["failed"] for m, s in sorted(problems.items()) if s.get("failed")},
        "primary_skipped": {
            m: sum(n for state, n in s.items() if state != "failed")
            for m, s in sorted(problems.items())
            if any(state != "failed" for state in s)
        },
        "primary_skipped_backend_down": dict(sorted(backend_down.items())),
    }


def _cycle_health(
    conn: PgConnection, params: dict[str, Any], now: datetime, settle_after: timedelta, shadow_pool: str
) -> dict[str, Any]:
    """Cycles that stored PRIMARY results but whose run has not ended when it should have."""
    ((count, oldest),) = _rows(conn, "unfinished_cycles", {**params, "settled": now - settle_after})
    return {
        "unfinished": count,
        "oldest_unfinished": oldest.isoformat() if oldest else None,
        "settle_after_s": settle_after.total_seconds(),
        "hint": (
            f"their runs are still open: SHADOW/CHALLENGER tasks may be waiting for the Airflow pool "
            f"{shadow_pool!r}, which Airflow never schedules when it is missing (check `airflow pools list`; "
            "`modelreg migrate` creates it)"
        )
        if count
        else None,
    }


def _partition_health(conn: PgConnection, schema: str, now: datetime, months_ahead: int) -> dict[str, Any]:
    current, _ = month_bounds(now)
    have = {p.start for p in list_partitions(conn, schema) if not p.is_default}
    missing = [f"{m:%Y-%m}" for m in (add_months(current, k) for k in range(months_ahead + 1)) if m not in have]
    default_rows = _rows(conn, "default_partition_rows", {})[0][0]
    with conn.cursor() as cur:
        cur.execute(queries("maintenance/maintenance.sql")["last_success"], {"kind": MAINTENANCE_KIND})
        last = fetch_value(cur)
    return {
        "default_partition_rows": default_rows,
        "months_missing_ahead": missing,
        "last_maintenance_success": last.isoformat() if last else None,
        "hours_since_maintenance": round((now - last).total_seconds() / 3600, 2) if last else None,
    }


def _alerts(conn: PgConnection, params: dict[str, Any], limit: int = 20) -> dict[str, Any]:
    """Alerts (output rows with ``"alert": true``) per version, and the latest cycle's PRIMARY ones."""
    counts = [
        {"model_id": m, "version": v, "role": r, "alerts": n, "cycles": c}
        for m, v, r, n, c in _rows(conn, "alert_counts", params)
    ]
    latest = _rows(conn, "latest_cycle_alerts", {**params, "limit": limit})
    return {
        "per_version": counts,
        "latest_cycle": latest[0][0].isoformat() if latest else None,
        "latest": [
            {"model_id": m, "version": v, "input_ref": ref, "figures": figures} for _, m, v, ref, figures in latest
        ],
    }


def take_snapshot(
    conn: PgConnection,
    *,
    schema: str,
    models_package: str,
    kind: str,
    window: Window,
    models: list[str] | None,
    now: datetime,
    drift_band: float,
    months_ahead: int,
    settle_after: timedelta,
    shadow_pool: str,
) -> dict[str, Any]:
    """Compute the snapshot report (plain JSON-able data).

    ``settle_after`` is how long after its timestamp a cycle's run must have ended (twice
    the task timeout: PRIMARY chain, then shadows), ``shadow_pool`` the pool they need.
    """
    params = _params(window, models)
    versions = version_figures(conn, window, models)
    report = {
        "kind": kind,
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "models": models or None,
        "taken_at": now.isoformat(),
        "versions": versions,
        "alerts": _alerts(conn, params),
        "drift": drift_findings(conn, window, models, drift_band),
        "drift_band": drift_band,
        "registry": registry_health(conn, window, models, models_package, versions),
        "cycles": _cycle_health(conn, params, now, settle_after, shadow_pool),
        "partitions": _partition_health(conn, schema, now, months_ahead),
    }
    conn.rollback()
    return report


def store_snapshot(conn: PgConnection, report: dict[str, Any], reports_dir: Path) -> tuple[int, Path]:
    """Insert the report into detection_model_snapshots and write its Markdown file."""
    with conn, conn.cursor() as cur:
        cur.execute(
            queries("maintenance/snapshots.sql")["insert_snapshot"],
            {
                "kind": report["kind"],
                "start": report["window"]["start"],
                "end": report["window"]["end"],
                "models": report["models"],
                "report": json.dumps(report, default=str),
            },
        )
        snapshot_id = fetch_value(cur)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(report["window"]["end"]).astimezone(UTC)
    path = reports_dir / f"snapshot_{report['kind']}_{stamp:%Y%m%dT%H%M}Z_{snapshot_id}.md"
    path.write_text(render_markdown(report))
    return snapshot_id, path


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _alert_lines(alerts: dict[str, Any]) -> list[str]:
    if not alerts["per_version"]:
        return ["", "## Alerts", "", "No output row with `alert: true` in the window."]
    lines = ["", "## Alerts", "", "| version | alerts | cycles with alerts |", "|---|---|---|"]
    lines += [
        f"| {a['model_id']}@{a['version']} {a['role']} | {a['alerts']} | {a['cycles']} |" for a in alerts["per_version"]
    ]
    if alerts["latest"]:
        lines += [
            "",
            f"PRIMARY alerts of the latest cycle with any, {alerts['latest_cycle']}:",
            "",
            "| model | input | figures |",
            "|---|---|---|",
        ]
        lines += [
            f"| {a['model_id']}@{a['version']} | `{json.dumps(a['input_ref'], sort_keys=True)}` | "
            f"`{json.dumps(a['figures'], sort_keys=True)[:300]}` |"
            for a in alerts["latest"]
        ]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """A readable report of the snapshot for people (and for the task log)."""
    lines = [f"# {report['kind'].title()} snapshot {report['window']['start']} to {report['window']['end']}", ""]
    if report["models"]:
        lines += [f"Models: {', '.join(report['models'])}", ""]
    lines += [
        "## Versions",
        "",
        "| version | cycles | ok | failed | skipped | of which backend down | p50 ms | p95 ms | max ms | "
        "outputs | signal |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report["versions"]:
        d = v["duration_ms"] or {}
        lines.append(
            f"| {v['model_id']}@{v['version']} {v['role']} | {v['cycles']} | {v['succeeded']} | "
            f"{v['failed']} | {v['skipped']} | {v['skipped_backend_down']} | "
            f"{_fmt(d.get('p50'))} | {_fmt(d.get('p95'))} | "
            f"{_fmt(d.get('max'))} | {v['outputs']['total']} | {v['signal']} |"
        )
    shadows = [v for v in report["versions"] if "comparison" in v]
    if shadows:
        lines += [
            "",
            "## Shadows against their PRIMARY",
            "",
            "| version | inputs on both | shadow only | primary only | coverage | identical outputs | agreement |",
            "|---|---|---|---|---|---|---|",
        ]
        for v in shadows:
            c = v["comparison"]
            lines.append(
                f"| {v['model_id']}@{v['version']} {v['role']} | {c['both_sides']} | {c['shadow_only']} | "
                f"{c['primary_only']} | {_fmt(c['coverage'])} | {_fmt(c['identical_outputs'])} | "
                f"{_fmt(c['agreement'])} |"
            )
    lines += _alert_lines(report["alerts"])
    metric_lines = [
        f"| {v['model_id']}@{v['version']} {v['role']} | {key} | {m['count']} | {_fmt(m['mean'])} | "
        f"{_fmt(m['min'])} | {_fmt(m['max'])} |"
        for v in report["versions"]
        for key, m in sorted(v["metrics"].items())
    ]
    if metric_lines:
        lines += ["", "## Metrics", "", "| version | metric | count | mean | min | max |", "|---|---|---|---|---|---|"]
        lines += metric_lines
    lines += ["", f"## Drift (band ±{report['drift_band']:.0%})", ""]
    if isinstance(report["drift"], str):
        lines.append(report["drift"])
    else:
        flagged = [f for f in report["drift"] if f["flagged"]]
        lines += [
            f"- {f['label']} {f['metric']}: now {_fmt(f['now'])}, previous day {_fmt(f['previous_day'])}, "
            f"7-day mean {_fmt(f['previous_7_days_mean'])} (outside band vs {', '.join(f['flagged'])})"
            for f in flagged
        ] or ["No metric outside the band."]
    r = report["registry"]
    p = report["partitions"]
    lines += [
        "",
        "## Registry",
        "",
        f"- ACTIVE versions: {r['active_versions']}",
        f"- rows without a class: {', '.join(r['rows_without_class']) or 'none'}",
        f"- classes without an ACTIVE row: {', '.join(r['classes_without_rows']) or 'none'}",
        f"- PRIMARY failures: {_fmt(r['primary_failed'] or 'none')}",
        f"- PRIMARY skipped (missing upstream or demoted): {_fmt(r['primary_skipped'] or 'none')}",
        f"- PRIMARY skipped, a backend down: {_fmt(r['primary_skipped_backend_down'] or 'none')}",
        "",
        "## Cycles",
        "",
        f"- runs not finished {_fmt(report['cycles']['settle_after_s'])} s after their cycle: "
        f"{report['cycles']['unfinished']}"
        + (
            f" (oldest {report['cycles']['oldest_unfinished']}): {report['cycles']['hint']}"
            if report["cycles"]["unfinished"]
            else ""
        ),
        "",
        "## Partitions",
        "",
        f"- rows in DEFAULT: {p['default_partition_rows']}",
        f"- months missing ahead: {', '.join(p['months_missing_ahead']) or 'none'}",
        f"- last successful maintenance: {p['last_maintenance_success'] or 'never'}"
        f" ({_fmt(p['hours_since_maintenance'])} h ago)",
    ]
    return "\n".join(lines) + "\n"
