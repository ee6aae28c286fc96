"""``modelreg`` / ``python -m models_core``: registry commands for operators.

Each command prints a readable result, or JSON with ``--json``; an error is one line on
stderr and exit status 1. A ``--check`` prints its report either way and exits 1 when the
change would be refused, so a CI step can gate on it.
"""
from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2

from models_core.cycle.plan_doc import render_plan_doc
from models_core.cycle.plan_source import plan_from_registry, read_cached_plan
from models_core.cycle.shadow_pool import ensure_shadow_pool
from models_core.discovery import code_dependencies
from models_core.errors import ModelRegistryError
from models_core.registry import self_healing_commands
from models_core.registry.approvals import ApprovalRequest
from models_core.registry.demo_registry import seed_demo_if_empty
from models_core.registry.lifecycle import ModelRegistry, Promotion, Readiness, plan_difference
from models_core.registry.metadata import MetadataError, parse_tag_assignments, parse_tag_filter
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.migrate import migrate
from models_core.store.sql_files import queries

Output = tuple[Any, str]  # (JSON-able data, text for a terminal)


class RefusedByCheck(Exception):
    """A ``--check`` whose change would be refused: its report is printed, the exit status is 1."""

    def __init__(self, output: Output) -> None:
        super().__init__(output[1])
        self.output = output


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    cells = [header] + [tuple("-" if value is None else str(value) for value in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells)


def _registry(conn, args: argparse.Namespace) -> ModelRegistry:
    return ModelRegistry(conn, actor=args.actor)


def cmd_migrate(conn, args: argparse.Namespace) -> Output:
    settings = load_settings()
    applied = migrate(conn, settings.schema)
    seeded = seed_demo_if_empty(conn) if args.seed_demo else False
    pool_ok, pool_text = ensure_shadow_pool(settings)
    text = f"schema {settings.schema}: applied {', '.join(applied)}" if applied else f"schema {settings.schema}: up to date"
    if args.seed_demo:
        text += "\nseeded the demo registry" if seeded else "\nregistry not empty: demo not seeded"
    if pool_ok:
        text += f"\n{pool_text}"
    else:
        print(f"modelreg migrate: warning: {pool_text}", file=sys.stderr)
    return ({"schema": settings.schema, "applied": applied, "seeded_demo": seeded,
             "shadow_pool": {"ok": pool_ok, "message": pool_text}}, text)


def cmd_list(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    models: dict[str, dict[str, Any]] = {}
    for v in registry.versions():
        entry = models.setdefault(v.model_id, {"model_id": v.model_id, "primary": None, "active_shadows": [],
                                               "versions": 0})
        entry["versions"] += 1
        if v.is_active_primary:
            entry["primary"] = v.version
        elif v.status == "ACTIVE":
            entry["active_shadows"].append(f"{v.version} {v.role}")
    header = ("model", "PRIMARY", "SHADOW/CHALLENGER", "versions")
    if args.tag:  # only models with a version carrying every tag asked for, and those versions
        tagged: dict[str, list[str]] = {}
        for v in registry.versions(tags=[parse_tag_filter(t) for t in args.tag]):
            tagged.setdefault(v.model_id, []).append(v.version)
        models = {m: {**entry, "tagged": tagged[m]} for m, entry in models.items() if m in tagged}
        header += (f"tagged {' '.join(args.tag)}",)
    rows = [(m["model_id"], m["primary"], ", ".join(m["active_shadows"]) or None, m["versions"],
             *([", ".join(m["tagged"])] if args.tag else [])) for m in models.values()]
    return list(models.values()), _table(header, rows)


def cmd_show(conn, args: argparse.Namespace) -> Output:
    data = _registry(conn, args).show(args.model, [parse_tag_filter(t) for t in args.tag or []])
    rows = [(v["version"], v["status"], v["role"],
             ", ".join(f"{k}={val}" for k, val in sorted(v["tags"].items())) or None,
             json.dumps(v["params"], sort_keys=True),
             ", ".join(f"{k}={val:.4g}" for k, val in sorted((v["latest"] or {}).get("metrics", {}).items())) or None)
            for v in data["versions"]]
    lines = [f"{args.model}  (upstream: {', '.join(data['upstream']) or 'none'}; "
             f"downstream: {', '.join(data['downstream']) or 'none'})",
             _table(("version", "status", "role", "tags", "params", "latest metrics"), rows)]
    lines += [f"{v['version']}: {v['description']}" for v in data["versions"] if v["description"]]
    lines += [f"{v['version']} metadata: {json.dumps(v['metadata'], sort_keys=True)}"
              for v in data["versions"] if v["metadata"]]
    checks = data["stage_checks"]
    lines += [f"gates: {json.dumps(data['gates'], sort_keys=True)}",
              f"checks before SHADOW/CHALLENGER: tags {', '.join(checks['required_tags']) or 'none required'}; "
              f"description {'required' if checks['require_description'] else 'not required'}; "
              "params against the class's params_schema, if it declares one",
              f"approvals: {'on' if data['approvals']['required'] else 'off'}"]
    lines += [f"  {_request_line(r)}" for r in data["approvals"]["requests"]]
    return data, "\n".join(lines)


def _request_line(request: dict[str, Any]) -> str:
    """One approval request as ``as_json()`` gives it, in a line."""
    line = (f"request #{request['id']} for {request['model_id']}@{request['version']} by {request['requested_by']}"
            f" at {request['requested_at']}: {request['status']}")
    if request["status"] in ("PENDING", "EXPIRED"):
        return line + f" ({'expires' if request['status'] == 'PENDING' else 'expired'} {request['expires_at']})" + (
            ", forced past failing checks" if request["forced"] else "")
    return line + f" by {request['decided_by'] or '-'}" + (f": {request['decision_reason']}"
                                                          if request["decision_reason"] else "")


def cmd_register(conn, args: argparse.Namespace) -> Output:
    try:
        params = json.loads(Path(args.params).read_text()) if args.params else {}
    except (OSError, ValueError) as exc:
        raise ModelRegistryError(f"cannot read params file {args.params}: {exc}") from None
    version_id = _registry(conn, args).register(args.model, args.version, params, args.description)
    return ({"model_id": args.model, "version": args.version, "id": version_id, "status": "DRAFT"},
            f"registered {args.model}@{args.version} (id {version_id}) as DRAFT; "
            f"run it with `modelreg activate {args.model} {args.version} --role SHADOW`")


def _state_change(action: str) -> Callable[[Any, argparse.Namespace], Output]:
    def command(conn, args: argparse.Namespace) -> Output:
        registry = _registry(conn, args)
        checks = []
        if action == "activate":
            if args.check:
                return _check_report(registry.check_activation(args.model, args.version, args.role))
            checks = registry.activate(args.model, args.version, args.role, args.reason)
        else:
            getattr(registry, action)(args.model, args.version, args.reason, args.force)
        (version,) = [v for v in registry.versions(args.model) if v.version == args.version]
        data = {"model_id": args.model, "version": args.version, "status": version.status, "role": version.role}
        text = f"{args.model}@{args.version} is now {version.status} {version.role}"
        if action == "activate":
            data["checks"] = [asdict(c) for c in checks]
            text = _figures(data["checks"]) + "\n" + text if checks else text
        return data, text
    return command


def _figures(figures: list[dict[str, Any]]) -> str:
    """Stage checks and quality gates (as stored) in one table: what each needs, what was
    found, pass/FAIL."""
    return _table(("check", "threshold", "measured", "result"),
                  [(f["name"], f["threshold"], f"{f['actual']:.4g}" if isinstance(f["actual"], float) else f["actual"],
                    "pass" if f["passed"] else "FAIL") for f in figures])


def _check_report(readiness: Readiness) -> Output:
    """A ``--check``: every figure and the verdict; raises RefusedByCheck when it would be refused."""
    data = readiness.as_json()
    lines = [_figures(readiness.figures_json())] if readiness.checks or readiness.gates else []
    lines += readiness.problems
    label = f"{readiness.model_id}@{readiness.version}"
    if not readiness.passed:
        lines.append(f"check FAILED: {readiness.action} of {label} would be refused; nothing was changed")
        raise RefusedByCheck((data, "\n".join(lines)))
    then = " (its promotions need approval: promote makes a request)" if readiness.approval_required \
        and readiness.action == "promote" else ""
    lines.append(f"check passed: {readiness.action} of {label} would go ahead{then}; nothing was changed")
    return data, "\n".join(lines)


def cmd_promote(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    window = timedelta(hours=args.window)
    if args.check:
        if args.force:
            raise ModelRegistryError("--check evaluates without --force: leave one of them out")
        return _check_report(registry.check_promotion(args.model, args.version, window=window))
    result = registry.promote(args.model, args.version, window=window, force=args.force, reason=args.reason,
                              keep_previous_as_shadow=args.keep_previous_as_shadow)
    if isinstance(result, ApprovalRequest):
        figures = _figures([*result.checks, *result.gates])
        return ({"model_id": args.model, "version": args.version, "promoted": None, "request": result.as_json()},
                f"{figures}\n{args.model}'s promotions need approval: made {result.label()}, pending until "
                f"{result.expires_at.isoformat(timespec='seconds')}. Another actor applies it with "
                f"`modelreg approve {args.model} {args.version}`")
    return _promotion_output(result, args.reason)


def _promotion_output(result: Promotion, reason: str | None) -> Output:
    figures = [asdict(c) for c in [*result.checks, *result.gates]]
    text = _figures(figures) + f"\n{result.model_id}@{result.promoted} is now the ACTIVE PRIMARY"
    if result.previous:
        text += f"; {result.previous} is now {result.previous_now}"
    if result.forced:
        text += " (forced past failing checks" + (f": {reason})" if reason else ")")
    data = {"model_id": result.model_id, "promoted": result.promoted, "previous": result.previous,
            "previous_now": result.previous_now, "forced": result.forced,
            "checks": [asdict(c) for c in result.checks], "gates": [asdict(c) for c in result.gates]}
    return data, text


def cmd_approve(conn, args: argparse.Namespace) -> Output:
    return _promotion_output(_registry(conn, args).approve(args.model, args.version, args.reason), args.reason)


def cmd_reject(conn, args: argparse.Namespace) -> Output:
    request = _registry(conn, args).reject(args.model, args.version, args.reason)
    return request.as_json(), _request_line(request.as_json())


def cmd_approvals(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    if args.approvals_action == "set":
        registry.set_approval_required(args.model, args.state == "on", args.reason)
        return ({"model_id": args.model, "approval_required": args.state == "on"},
                f"{args.model}: promotions {'need' if args.state == 'on' else 'no longer need'} approval")
    requests = [r.as_json() for r in registry.approval_requests(args.model, include_decided=args.all)]
    return requests, "\n".join(_request_line(r) for r in requests) or "no requests"


def cmd_describe(conn, args: argparse.Namespace) -> Output:
    _registry(conn, args).describe(args.model, args.version, args.text, args.reason)
    return ({"model_id": args.model, "version": args.version, "description": args.text.strip() or None},
            f"{args.model}@{args.version}: description {'set' if args.text.strip() else 'removed'}")


def cmd_tag(conn, args: argparse.Namespace) -> Output:
    tags = _registry(conn, args).set_tags(args.model, args.version,
                                          parse_tag_assignments(args.tags, f"{args.model}@{args.version}"), args.reason)
    return _tags_output(args, tags)


def cmd_untag(conn, args: argparse.Namespace) -> Output:
    return _tags_output(args, _registry(conn, args).remove_tags(args.model, args.version, args.keys, args.reason))


def _tags_output(args: argparse.Namespace, tags: dict[str, str]) -> Output:
    return ({"model_id": args.model, "version": args.version, "tags": tags},
            f"{args.model}@{args.version} tags: {', '.join(f'{k}={v}' for k, v in sorted(tags.items())) or 'none'}")


def cmd_meta(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    if args.file:
        registry.set_metadata(args.model, args.version, _read_json(args.file, "metadata file"), args.reason)
    metadata = registry.metadata(args.model, args.version)
    return ({"model_id": args.model, "version": args.version, "metadata": metadata},
            json.dumps(metadata, indent=2, sort_keys=True))


def _read_json(path: str, what: str) -> Any:
    """A JSON file, strictly: NaN and Infinity are not JSON and jsonb refuses them."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")
    try:
        return json.loads(Path(path).read_text(), parse_constant=refuse)
    except (OSError, ValueError) as exc:
        raise MetadataError(f"cannot read {what} {path}: {exc}") from None


def cmd_checks(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    tags = None if args.require_tags is None else [t.strip() for t in args.require_tags.split(",") if t.strip()]
    describe = None if args.require_description is None else args.require_description == "on"
    policy = registry.stage_checks(args.model) if tags is None and describe is None else \
        registry.set_stage_checks(args.model, required_tags=tags, require_description=describe, reason=args.reason)
    return ({"model_id": args.model, **asdict(policy)},
            f"{args.model}: before SHADOW/CHALLENGER a version needs tags "
            f"{', '.join(policy.required_tags) or '(none)'}; description "
            f"{'required' if policy.require_description else 'not required'}; params valid against the "
            "class's params_schema, if it declares one")


def cmd_best(conn, args: argparse.Namespace) -> Output:
    ranking = _registry(conn, args).best(args.model, args.metric, window=timedelta(hours=args.window),
                                         min_cycles=args.min_cycles, lower_is_better=args.lower_is_better,
                                         include_defaults=args.include_defaults)
    data = ranking.as_json()
    rows = [(r["rank"], r["version"], f"{r['status']} {r['role']}", r["cycles"], r["failed"], f"{r['mean']:.6g}",
             r["samples"]) for r in data["ranked"]]
    rows += [("-", r["version"], f"{r['status']} {r['role']}", r["cycles"], r["failed"],
              "-" if r["mean"] is None else f"{r['mean']:.6g}", f"{r['samples']} (left out: {r['why']})")
             for r in data["excluded"]]
    order = "lower" if args.lower_is_better else "higher"
    head = (f"{args.model}: versions by mean {args.metric} over the last {args.window:g} h ({order} is better, "
            f"at least {args.min_cycles} cycles)")
    verdict = f"best: {ranking.best.version}" if ranking.best else "no version qualifies"
    return data, "\n".join([head, _table(("rank", "version", "now", "cycles", "failed", "mean", "values"), rows),
                            verdict])


def cmd_rollback(conn, args: argparse.Namespace) -> Output:
    result = _registry(conn, args).rollback(args.model, args.reason, to=args.to)
    return ({"model_id": args.model, "restored": result.promoted, "previous": result.previous},
            f"{args.model}@{result.promoted} is the ACTIVE PRIMARY again"
            + (f"; {result.previous} is now INACTIVE" if result.previous else ""))


def cmd_deps(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    if args.deps_action == "add":
        registry.add_dependency(args.model, args.upstream, code_dependencies(load_settings().models_package))
        text = f"{args.model} now depends on {args.upstream}"
    else:
        registry.remove_dependency(args.model, args.upstream)
        text = f"{args.model} no longer depends on {args.upstream} in the registry"
    return {"model_id": args.model, "upstream": args.upstream, "action": args.deps_action}, text


def cmd_gates(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    thresholds = json.loads(args.metric_thresholds) if args.metric_thresholds else None
    changes = {"min_cycles": args.min_cycles, "max_failure_rate": args.max_failure_rate,
               "min_agreement": args.min_agreement, "max_duration_ratio": args.max_duration_ratio,
               "metric_thresholds": thresholds}
    gates = registry.set_gates(args.model, args.reason, **changes) if any(v is not None for v in changes.values()) \
        else registry.gates(args.model)
    return gates, "\n".join(f"{key}: {json.dumps(value)}" for key, value in gates.items())


def cmd_compare(conn, args: argparse.Namespace) -> Output:
    data = _registry(conn, args).compare(args.model, args.first, args.second, timedelta(hours=args.window))
    first, second = (data["versions"][v] for v in (args.first, args.second))
    keys = sorted(set(first["metrics"]) | set(second["metrics"]))
    rows = [("role", first["role"], second["role"]), ("cycles", first["cycles"], second["cycles"]),
            ("failed", first["failed"], second["failed"])]
    rows += [(f"mean {key}", *(None if side["metrics"].get(key) is None else f"{side['metrics'][key]:.4g}"
                               for side in (first, second))) for key in keys]
    return data, f"last {args.window:g} h\n" + _table(("", args.first, args.second), rows)


def cmd_history(conn, args: argparse.Namespace) -> Output:
    registry = _registry(conn, args)
    if args.at:
        at = datetime.fromisoformat(args.at)
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
        primary = registry.primary_at(args.model, at)
        return ({"model_id": args.model, "at": at.isoformat(), "primary": primary},
                f"{args.model} PRIMARY at {at.isoformat()}: {primary or 'none'}")
    events = registry.history(args.model)
    rows = [(e["at"].isoformat(timespec="seconds"), e["action"], e["version"],
             f"{e['from_status'] or '-'} {e['from_role'] or ''}".strip(), f"{e['to_status'] or '-'} {e['to_role'] or ''}".strip(),
             e["actor"], e["source"], e["reason"] or _brief(e["details"])) for e in events]
    data = [{**e, "at": e["at"].isoformat()} for e in events]
    return data, _table(("at", "action", "version", "from", "to", "actor", "source", "reason"), rows)


def _brief(details: dict[str, Any] | None) -> str | None:
    """A changed-fields summary for the history table (the JSON output has them whole)."""
    if not details:
        return None
    text = json.dumps(details, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def cmd_plan(conn, args: argparse.Namespace) -> Output:
    settings = load_settings()
    current = plan_from_registry(settings)
    diff = plan_difference(current, read_cached_plan(settings))
    lines = [render_plan_doc(current, settings), "Compared with the DAG Airflow last parsed "
             f"({settings.plan_cache_path}):"]
    for key, items in diff.items():
        lines.append(f"  {key.replace('_', ' ')}: {', '.join(items) or 'none'}")
    return {"fingerprint": current.fingerprint, **diff}, "\n".join(lines)


def cmd_rows(conn, args: argparse.Namespace) -> Output:
    cycle = datetime.fromisoformat(args.cycle)
    with conn.cursor() as cur:
        cur.execute(queries("registry/reports.sql")["rows_per_version"], {"cycle": cycle})
        rows = cur.fetchall()
    text = f"rows stored for cycle {cycle.isoformat()}:\n" + _table(
        ("model", "version", "role", "output rows", "metrics"), rows)
    missing = [f"{row[0]}@{row[1]}" for row in rows if row[3] == 0]
    if missing:
        text += f"\nno rows for: {', '.join(missing)}"
    keys = ("model_id", "version", "role", "output_rows", "metrics")
    return [dict(zip(keys, row)) for row in rows], text


def _figures(figures: dict[str, Any], width: int = 160) -> str:
    text = json.dumps(figures, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= width else text[:width - 3] + "..."


def cmd_alerts(conn, args: argparse.Namespace) -> Output:
    """Output rows of one cycle with ``"alert": true``, from whichever models report one."""
    cycle = datetime.fromisoformat(args.cycle)
    with conn.cursor() as cur:
        cur.execute(queries("registry/reports.sql")["cycle_alerts"], {"cycle": cycle, "limit": args.limit})
        rows = cur.fetchall()
    total = rows[0][5] if rows else 0
    keys = ("model_id", "version", "role", "input_ref", "figures")
    data = {"cycle": cycle.isoformat(), "total": total, "alerts": [dict(zip(keys, row[:5])) for row in rows]}
    text = f"alerts of cycle {cycle.isoformat()}: {total}" + (f" (first {len(rows)} shown)" if total > len(rows) else "")
    if rows:
        text += "\n" + _table(("model", "version", "role", "input", "figures"),
                              [(m, v, r, json.dumps(ref, sort_keys=True), _figures(fig)) for m, v, r, ref, fig, _ in rows])
    return data, text


def _common_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """``--json`` and ``--actor``, taken before the command or after it, as people type them."""
    given = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument("--json", action="store_true", help="print JSON instead of text",
                        **({"default": False} if defaults else given))
    parser.add_argument("--actor", help="who makes the change (for the audit trail; default: your OS user)",
                        **({"default": getpass.getuser()} if defaults else given))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelreg", description="Detection-model registry commands.")
    _common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str, *model_version: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        _common_options(p, defaults=False)
        for arg in model_version:
            p.add_argument(arg)
        p.set_defaults(func=func)
        return p

    add("migrate", cmd_migrate, "create or upgrade the registry schema (idempotent)").add_argument(
        "--seed-demo", action="store_true", help="also insert the demo registry when it has no versions")
    tag_filter = {"action": "append", "metavar": "KEY[=VALUE]",
                  "help": "only versions with this tag (any value if none is given); repeat for several"}
    add("list", cmd_list, "models with their PRIMARY and active shadows").add_argument("--tag", **tag_filter)
    add("show", cmd_show, "a model's versions, tags, metadata, latest metrics, dependencies, gates and checks",
        "model").add_argument("--tag", **tag_filter)
    p = add("register", cmd_register, "add a DRAFT version", "model", "version")
    p.add_argument("--params", help="JSON file with the version's params")
    p.add_argument("--description")
    p = add("activate", _state_change("activate"), "run a version as SHADOW or CHALLENGER, behind the model's checks",
            "model", "version")
    p.add_argument("--role", required=True, choices=["SHADOW", "CHALLENGER"])
    p.add_argument("--reason")
    p.add_argument("--check", action="store_true",
                   help="only evaluate the checks: exit 0 pass, 1 fail, nothing changed")
    for name in ("deactivate", "archive"):
        p = add(name, _state_change(name), f"{name} a version", "model", "version")
        p.add_argument("--reason")
        p.add_argument("--force", action="store_true", help="allow it for the ACTIVE PRIMARY")
    p = add("promote", cmd_promote, "make a version the PRIMARY, behind the quality gates", "model", "version")
    p.add_argument("--force", action="store_true", help="promote even if gates fail (needs --reason)")
    p.add_argument("--reason")
    p.add_argument("--keep-previous-as-shadow", action="store_true",
                   help="the previous PRIMARY stays ACTIVE as a SHADOW instead of ARCHIVED")
    p.add_argument("--window", type=float, default=168, help="hours of history the gates look at (default 168)")
    p.add_argument("--check", action="store_true",
                   help="only evaluate the checks and gates: exit 0 pass, 1 fail, nothing changed")
    p = add("approve", cmd_approve, "apply a promotion request another actor made (checks and gates re-evaluated)",
            "model", "version")
    p.add_argument("--reason")
    p = add("reject", cmd_reject, "turn a promotion request down", "model", "version")
    p.add_argument("--reason", required=True)
    p = add("approvals", cmd_approvals, "whether a model's promotions need approval; its requests")
    approvals = p.add_subparsers(dest="approvals_action", required=True)
    q = approvals.add_parser("set", help="turn approvals on or off for a model")
    _common_options(q, defaults=False)
    q.add_argument("model")
    q.add_argument("state", choices=["on", "off"])
    q.add_argument("--reason")
    q = approvals.add_parser("list", help="pending requests (of one model), or all with --all")
    _common_options(q, defaults=False)
    q.add_argument("model", nargs="?")
    q.add_argument("--all", action="store_true", help="decided requests too")
    p = add("describe", cmd_describe, "set a version's description ('' removes it)", "model", "version", "text")
    p.add_argument("--reason")
    p = add("tag", cmd_tag, "set tags of a version", "model", "version")
    p.add_argument("tags", nargs="+", metavar="KEY=VALUE")
    p.add_argument("--reason")
    p = add("untag", cmd_untag, "remove tags of a version", "model", "version")
    p.add_argument("keys", nargs="+", metavar="KEY")
    p.add_argument("--reason")
    p = add("meta", cmd_meta, "show a version's metadata document, or replace it with --file", "model", "version")
    p.add_argument("--file", help="JSON file with the whole metadata document (see the README for its keys)")
    p.add_argument("--reason")
    p = add("checks", cmd_checks, "show or set what a version needs before it runs as SHADOW/CHALLENGER", "model")
    p.add_argument("--require-tags", metavar="KEY[=VALUE],...", help="tags a version must have ('' for none)")
    p.add_argument("--require-description", choices=["on", "off"])
    p.add_argument("--reason", help="why the checks change (recorded in the history)")
    p = add("best", cmd_best, "rank the versions that ran by a metric's mean", "model")
    p.add_argument("--metric", required=True)
    p.add_argument("--window", type=float, default=168, help="hours of history (default 168)")
    p.add_argument("--min-cycles", type=int, default=1, help="leave out versions with fewer cycles (default 1)")
    p.add_argument("--lower-is-better", action="store_true")
    p.add_argument("--include-defaults", action="store_true",
                   help="allow the framework's own metrics (cycle_duration_ms, output_count, eval_*)")
    p = add("rollback", cmd_rollback, "restore the previous PRIMARY (never one rolled back from), or --to VERSION",
            "model")
    p.add_argument("--to", metavar="VERSION", help="restore this version, whatever its history")
    p.add_argument("--reason")
    p = add("deps", cmd_deps, "add or remove a registry dependency")
    p.add_argument("deps_action", choices=["add", "remove"])
    p.add_argument("model")
    p.add_argument("upstream")
    p = add("gates", cmd_gates, "show or set a model's quality gates", "model")
    p.add_argument("--min-cycles", type=int)
    p.add_argument("--max-failure-rate", type=float)
    p.add_argument("--min-agreement", type=float)
    p.add_argument("--max-duration-ratio", type=float)
    p.add_argument("--metric-thresholds", help='JSON, e.g. {"flagged": {"max": 50}}')
    p.add_argument("--reason", help="why the gates change (recorded in the history)")
    p = add("compare", cmd_compare, "two versions' figures side by side", "model", "first", "second")
    p.add_argument("--window", type=float, default=168, help="hours of history (default 168)")
    p = add("history", cmd_history, "every transition of a model", "model")
    p.add_argument("--at", help="ISO timestamp: which version was PRIMARY then")
    add("plan", cmd_plan, "the plan the registry describes now, against the DAG Airflow last parsed")
    add("rows", cmd_rows, "rows stored per ACTIVE version for one cycle").add_argument(
        "--cycle", required=True, help="the cycle's timestamp, ISO-8601 with offset")
    p = add("alerts", cmd_alerts, "output rows of one cycle whose outputs say \"alert\": true")
    p.add_argument("--cycle", required=True, help="the cycle's timestamp, ISO-8601 with offset")
    p.add_argument("--limit", type=int, default=50, help="rows shown at most (default 50)")
    self_healing_commands.add_commands(add, _table, _common_options)
    return parser


def _logs_to_stderr() -> None:
    """Airflow logs to stdout; stdout is for the command's result (``--json`` is parsed)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    logging.getLogger("models_core").setLevel(logging.WARNING)


def error_line(command: str, exc: Exception) -> str:
    """The one line ``modelreg <command>`` prints for an error (the registry page shows the same)."""
    if isinstance(exc, psycopg2.Error):
        return f"modelreg {command}: database error: {' '.join(str(exc).split())}"
    return f"modelreg {command}: {exc}"


def main(argv: list[str] | None = None) -> int:
    _logs_to_stderr()
    args = build_parser().parse_args(argv)
    settings = load_settings()
    status = 0
    try:
        with registry_connection(settings, application_name=f"modelreg:{args.command}") as conn:
            try:
                data, text = args.func(conn, args)
            except RefusedByCheck as failed:
                (data, text), status = failed.output, 1
    except (ModelRegistryError, ValueError, psycopg2.Error) as exc:
        print(error_line(args.command, exc), file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2, sort_keys=True, default=str) if args.json else text)
    return status
