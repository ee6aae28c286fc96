"""``modelreg`` / ``python -m models_core``: registry commands for operators.

Each command prints a readable result, or JSON with ``--json``; an error is one line on
stderr and exit status 1. A ``--check`` prints its report either way and exits 1 when the
change would be refused, so a CI step can gate on it.

Who changes the registry is who Airflow authenticated: ``modelreg login`` logs in to the
Airflow API server and every change then goes through the registry API as that person (see
:mod:`cli_transport`). Without a login, changes are made in direct database mode as a
service account, named by the database user, which never approves. Reads come from the
registry database in both modes.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg2
from psycopg2.extensions import connection as PgConnection

from models_core.backtest.request import BACKTEST_DAG_ID, check_request
from models_core.cycle.plan_doc import render_plan_doc
from models_core.cycle.plan_source import plan_from_registry, read_cached_plan
from models_core.cycle.shadow_pool import ensure_shadow_pool
from models_core.errors import ModelRegistryError
from models_core.registry import self_healing_commands, webhook_commands
from models_core.registry.actors import Actor, service
from models_core.registry.cli_transport import (
    ApiTransport,
    CommandError,
    Credentials,
    DirectTransport,
    log_in,
    read_credentials,
    save_credentials,
)
from models_core.registry.demo_registry import seed_demo_if_empty
from models_core.registry.errors import error_line
from models_core.registry.evidence import GATE_KINDS, Readiness
from models_core.registry.metadata import MetadataError, parse_tag_filters
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.plan_difference import plan_difference
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection
from models_core.store.migrate import migrate
from models_core.store.sql_files import queries

Output = tuple[Any, str]  # (JSON-able data, text for a terminal)


class RefusedByCheck(Exception):
    """A ``--check`` whose change would be refused: its report is printed, the exit status is 1."""

    def __init__(self, output: Output) -> None:
        super().__init__(output[1])
        self.output = output


@dataclass
class Command:
    """What a command works with: its arguments, the registry database (opened when first read) and the
    transport its changes go through (the registry API as a person, or direct as a service)."""

    args: argparse.Namespace
    settings: Settings
    http: httpx.Client | None = None
    _opened: list[Any] = field(default_factory=list)

    @cached_property
    def conn(self) -> PgConnection:
        context = registry_connection(
            self.settings,
            # every command's statements are bounded as an API request's are; a migration's DDL is not
            statement_timeout_ms=None if self.args.command == "migrate" else self.settings.request_statement_timeout_ms,
            application_name=f"modelreg:{self.args.command}",
        )
        conn = context.__enter__()
        self._opened.append(context)
        return conn

    @cached_property
    def registry(self) -> ModelRegistry:
        """The registry for reads (and for the direct mode's service actor)."""
        return ModelRegistry(self.conn, self.service)

    @cached_property
    def service(self) -> Actor:
        with self.conn.cursor() as cur:
            cur.execute(queries("registry/session.sql")["database_user"])
            ((user,),) = cur.fetchall()
        self.conn.rollback()
        return service(user)

    @cached_property
    def transport(self) -> ApiTransport | DirectTransport:
        credentials = read_credentials(self.settings)
        if credentials is not None:
            return ApiTransport(credentials, self.http)
        return DirectTransport(self.service)

    def change(self, name: str, path_params: dict[str, str], body: dict[str, Any]) -> Any:
        """Carry out the change ``name`` (of :data:`~models_core.registry.changes.CHANGES`) through
        the transport; returns its ``result``."""
        body = {key: value for key, value in body.items() if value is not None}
        return self.transport.change(name, path_params, body)["result"]

    def close(self) -> None:
        if "transport" in self.__dict__:
            self.transport.close()
        for context in self._opened:
            context.__exit__(None, None, None)


def table(header: tuple[str, ...], rows: list[tuple]) -> str:
    cells = [header] + [tuple("-" if value is None else str(value) for value in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells)


# ---- identity -------------------------------------------------------------------------------


def cmd_login(cmd: Command) -> Output:
    args = cmd.args
    url = (args.url or cmd.settings.api_url).rstrip("/")
    username = args.username or input(f"Airflow user name at {url}: ").strip()
    password = (
        sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"Password of {username}: ")
    )
    token = log_in(url, username, password, cmd.http)
    credentials = Credentials(url, token, username)
    who = ApiTransport(credentials, cmd.http).get("/whoami", "login")
    save_credentials(cmd.settings.credentials_path, Credentials(url, token, who["id"]))
    return (
        {"url": url, **who, "saved_to": str(cmd.settings.credentials_path)},
        f"logged in to {url} as {who['id']} (permissions: {', '.join(who['permissions']) or 'none'}); "
        f"the token is kept in {cmd.settings.credentials_path}",
    )


def cmd_logout(cmd: Command) -> Output:
    path = cmd.settings.credentials_path
    existed = path.exists()
    path.unlink(missing_ok=True)
    text = f"logged out: removed {path}" if existed else "not logged in (no saved login)"
    if cmd.settings.api_token:
        text += "; [model_registry] api_token is still set in the configuration or environment"
    return {"logged_out": existed}, text


def cmd_whoami(cmd: Command) -> Output:
    transport = cmd.transport
    if isinstance(transport, ApiTransport):
        who = transport.get("/whoami", "whoami")
        return (
            {**who, "mode": "api", "url": transport.credentials.url},
            f"{who['id']} ({who['kind']}), {transport.describe()}; permissions: "
            f"{', '.join(who['permissions']) or 'none'}",
        )
    actor = transport.actor
    return (
        {
            "id": actor.id,
            "kind": str(actor.kind),
            "mode": "direct",
            "permissions": sorted(str(p) for p in actor.permissions),
        },
        f"{transport.describe()}; permissions: {', '.join(sorted(actor.permissions))}",
    )


# ---- reading --------------------------------------------------------------------------------


def cmd_migrate(cmd: Command) -> Output:
    settings = cmd.settings
    applied = migrate(cmd.conn, settings.schema)
    seeded = seed_demo_if_empty(cmd.conn) if cmd.args.seed_demo else False
    pool_ok, pool_text = ensure_shadow_pool(settings)
    text = (
        f"schema {settings.schema}: applied {', '.join(applied)}"
        if applied
        else f"schema {settings.schema}: up to date"
    )
    if cmd.args.seed_demo:
        text += "\nseeded the demo registry" if seeded else "\nregistry not empty: demo not seeded"
    if pool_ok:
        text += f"\n{pool_text}"
    else:
        print(f"modelreg migrate: warning: {pool_text}", file=sys.stderr)
    return (
        {
            "schema": settings.schema,
            "applied": applied,
            "seeded_demo": seeded,
            "shadow_pool": {"ok": pool_ok, "message": pool_text},
        },
        text,
    )


def cmd_list(cmd: Command) -> Output:
    args = cmd.args
    models: dict[str, dict[str, Any]] = {
        model_id: {"model_id": model_id, "primary": primary, "active_shadows": list(shadows), "versions": count}
        for model_id, primary, shadows, count in cmd.registry.session.fetch(
            "models_summary", {}, "registry/lifecycle.sql"
        )
    }
    header: tuple[str, ...] = ("model", "PRIMARY", "SHADOW/CHALLENGER", "versions")
    if args.tag:  # only models with a version carrying every tag asked for, and those versions
        tagged: dict[str, list[str]] = {}
        for v in cmd.registry.lifecycle.versions(tags=parse_tag_filters(args.tag)):
            tagged.setdefault(v.model_id, []).append(v.version)
        models = {m: {**entry, "tagged": tagged[m]} for m, entry in models.items() if m in tagged}
        header += (f"tagged {' '.join(args.tag)}",)
    rows = [
        (
            m["model_id"],
            m["primary"],
            ", ".join(m["active_shadows"]) or None,
            m["versions"],
            *([", ".join(m["tagged"])] if args.tag else []),
        )
        for m in models.values()
    ]
    return list(models.values()), table(header, rows)


def cmd_show(cmd: Command) -> Output:
    args = cmd.args
    data = cmd.registry.show(args.model, list(parse_tag_filters(args.tag or [])))
    rows = [
        (
            v["version"],
            v["status"],
            v["role"],
            ", ".join(f"{k}={val}" for k, val in sorted(v["tags"].items())) or None,
            json.dumps(v["params"], sort_keys=True),
            ", ".join(f"{k}={val:.4g}" for k, val in sorted((v["latest"] or {}).get("metrics", {}).items())) or None,
        )
        for v in data["versions"]
    ]
    lines = [
        f"{args.model}  (upstream: {', '.join(data['upstream']) or 'none'}; "
        f"downstream: {', '.join(data['downstream']) or 'none'})",
        table(("version", "status", "role", "tags", "params", "latest metrics"), rows),
    ]
    lines += [f"{v['version']}: {v['description']}" for v in data["versions"] if v["description"]]
    lines += [
        f"{v['version']} metadata: {json.dumps(v['metadata'], sort_keys=True)}"
        for v in data["versions"]
        if v["metadata"]
    ]
    checks, approvals = data["stage_checks"], data["approvals"]
    lines += [
        f"gates: {json.dumps(data['gates'], sort_keys=True)}",
        f"checks before SHADOW/CHALLENGER: tags {', '.join(checks['required_tags']) or 'none required'}; "
        f"description {'required' if checks['require_description'] else 'not required'}; "
        "params against the class's params_schema, if it declares one",
        f"approvals: {_approval_text(approvals)}",
    ]
    lines += [f"  {_request_line(r)}" for r in approvals["requests"]]
    return data, "\n".join(lines)


def _approval_text(setting: dict[str, Any]) -> str:
    if not setting["required"]:
        return "off"
    who = ", ".join(setting["approvers"]) or "anyone allowed to edit the detection_models DAG"
    return f"on: {setting['min_approvals']} approval(s) from {who}, never the requester"


def _request_line(request: dict[str, Any]) -> str:
    """One approval request as ``as_json()`` gives it, in a line."""
    subject = (
        f"{request['model_id']}@{request['version']}"
        if request["kind"] == "promote"
        else f"{request['model_id']}'s {request['change']['guard']}"
    )
    line = (
        f"request #{request['id']} for {subject} by {request['requested_by']} at {request['requested_at']}: "
        f"{request['status']}"
    )
    if request["status"] in ("PENDING", "EXPIRED"):
        line += f" ({'expires' if request['status'] == 'PENDING' else 'expired'} {request['expires_at']})"
        if request["approvals"]:
            line += f", approved so far by {', '.join(request['approvals'])}"
        return line + (", forced past failing checks" if request["forced"] else "")
    return (
        line
        + f" by {request['decided_by'] or '-'}"
        + (f": {request['decision_reason']}" if request["decision_reason"] else "")
    )


def cmd_backtest(cmd: Command) -> Output:
    """Check a backtest as its run would, then (unless ``--check``) trigger the run as the person logged in."""
    args = cmd.args
    request = check_request(cmd.conn, cmd.settings, args.model, args.version, args.start, args.end)
    cmd.conn.rollback()
    data = request.as_json()
    label = f"{args.model}@{request.candidate.version}"
    plan = (
        f"{label}: {data['cycles']} cycles of {cmd.settings.schedule!r} from {request.start.isoformat()} to "
        f"{request.end.isoformat()}, in {data['tasks']} task(s) of up to {data['cycles_per_task']} cycles"
    )
    if args.check:
        return data, f"{plan}\ncheck passed: the backtest of {label} would run; nothing was started"
    transport = cmd.transport
    if not isinstance(transport, ApiTransport):
        raise CommandError(
            f"modelreg backtest: a backtest is a run of the {BACKTEST_DAG_ID} DAG, and Airflow decides who may "
            "trigger it: log in first (`modelreg login`), or trigger it with Airflow: "
            f"airflow dags trigger {BACKTEST_DAG_ID} -c '{json.dumps(request.conf())}'"
        )
    run = transport.trigger(BACKTEST_DAG_ID, request.conf(), "backtest")
    data["run"] = {key: run.get(key) for key in ("dag_run_id", "state", "triggering_user_name")}
    url = f"{transport.credentials.url.rstrip('/')}/dags/{BACKTEST_DAG_ID}/runs/{quote(run['dag_run_id'], safe='')}"
    return data, (
        f"{plan}\nstarted {BACKTEST_DAG_ID} run {run['dag_run_id']} as {run.get('triggering_user_name')}: {url}\n"
        f"when it ends, `modelreg promote {args.model} {request.candidate.version} --check` shows its evidence "
        "beside the live one"
    )


def cmd_history(cmd: Command) -> Output:
    args = cmd.args
    lifecycle = cmd.registry.lifecycle
    if args.at:
        at = datetime.fromisoformat(args.at)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        primary = lifecycle.primary_at(args.model, at)
        return (
            {"model_id": args.model, "at": at.isoformat(), "primary": primary},
            f"{args.model} PRIMARY at {at.isoformat()}: {primary or 'none'}",
        )
    events = lifecycle.history(args.model)
    rows = [
        (
            e["at"].isoformat(timespec="seconds"),
            e["action"],
            e["version"],
            f"{e['from_status'] or '-'} {e['from_role'] or ''}".strip(),
            f"{e['to_status'] or '-'} {e['to_role'] or ''}".strip(),
            f"{e['actor']} ({e['actor_kind']})",
            e["basis"],
            e["reason"] or _brief(e["details"]),
        )
        for e in events
    ]
    data = [{**e, "at": e["at"].isoformat()} for e in events]
    return data, table(("at", "action", "version", "from", "to", "actor", "basis", "reason"), rows)


def _brief(details: dict[str, Any] | None) -> str | None:
    """A changed-fields summary for the history table (the JSON output has them whole)."""
    if not details:
        return None
    text = json.dumps(details, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def cmd_compare(cmd: Command) -> Output:
    args = cmd.args
    data = cmd.registry.evidence.compare(args.model, args.first, args.second, timedelta(hours=args.window))
    first, second = (data["versions"][v] for v in (args.first, args.second))
    keys = sorted(set(first["metrics"]) | set(second["metrics"]))
    rows: list[tuple[Any, ...]] = [
        ("role", first["role"], second["role"]),
        ("cycles", first["cycles"], second["cycles"]),
        ("failed", first["failed"], second["failed"]),
    ]
    rows += [
        (
            f"mean {key}",
            *(None if side["metrics"].get(key) is None else f"{side['metrics'][key]:.4g}" for side in (first, second)),
        )
        for key in keys
    ]
    return data, f"last {args.window:g} h\n" + table(("", args.first, args.second), rows)


def cmd_best(cmd: Command) -> Output:
    args = cmd.args
    ranking = cmd.registry.evidence.best(
        args.model,
        args.metric,
        window=timedelta(hours=args.window),
        min_cycles=args.min_cycles,
        lower_is_better=args.lower_is_better,
        include_defaults=args.include_defaults,
    )
    data = ranking.as_json()
    rows = [
        (
            r["rank"],
            r["version"],
            f"{r['status']} {r['role']}",
            r["cycles"],
            r["failed"],
            f"{r['mean']:.6g}",
            r["samples"],
        )
        for r in data["ranked"]
    ]
    rows += [
        (
            "-",
            r["version"],
            f"{r['status']} {r['role']}",
            r["cycles"],
            r["failed"],
            "-" if r["mean"] is None else f"{r['mean']:.6g}",
            f"{r['samples']} (left out: {r['why']})",
        )
        for r in data["excluded"]
    ]
    order = "lower" if args.lower_is_better else "higher"
    head = (
        f"{args.model}: versions by mean {args.metric} over the last {args.window:g} h ({order} is better, "
        f"at least {args.min_cycles} cycles)"
    )
    verdict = f"best: {ranking.best.version}" if ranking.best else "no version qualifies"
    return data, "\n".join(
        [head, table(("rank", "version", "now", "cycles", "failed", "mean", "values"), rows), verdict]
    )


def cmd_plan(cmd: Command) -> Output:
    settings = cmd.settings
    current = plan_from_registry(settings)
    diff = plan_difference(current, read_cached_plan(settings))
    lines = [
        render_plan_doc(current, settings),
        f"Compared with the DAG Airflow last parsed ({settings.plan_cache_path}):",
    ]
    for key, items in diff.items():
        lines.append(f"  {key.replace('_', ' ')}: {', '.join(items) or 'none'}")
    return {"fingerprint": current.fingerprint, **diff}, "\n".join(lines)


def cmd_rows(cmd: Command) -> Output:
    cycle = datetime.fromisoformat(cmd.args.cycle)
    with cmd.conn.cursor() as cur:
        cur.execute(queries("registry/reports.sql")["rows_per_version"], {"cycle": cycle})
        rows = cur.fetchall()
    text = f"rows stored for cycle {cycle.isoformat()}:\n" + table(
        ("model", "version", "role", "output rows", "metrics"), rows
    )
    missing = [f"{row[0]}@{row[1]}" for row in rows if row[3] == 0]
    if missing:
        text += f"\nno rows for: {', '.join(missing)}"
    keys = ("model_id", "version", "role", "output_rows", "metrics")
    return [dict(zip(keys, row)) for row in rows], text


def _alert_figures(figures: dict[str, Any], width: int = 160) -> str:
    text = json.dumps(figures, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_alerts(cmd: Command) -> Output:
    """Output rows of one cycle with ``"alert": true``, from whichever models report one."""
    cycle = datetime.fromisoformat(cmd.args.cycle)
    with cmd.conn.cursor() as cur:
        cur.execute(queries("registry/reports.sql")["cycle_alerts"], {"cycle": cycle, "limit": cmd.args.limit})
        rows = cur.fetchall()
    total = rows[0][5] if rows else 0
    keys = ("model_id", "version", "role", "input_ref", "figures")
    data = {"cycle": cycle.isoformat(), "total": total, "alerts": [dict(zip(keys, row[:5])) for row in rows]}
    text = f"alerts of cycle {cycle.isoformat()}: {total}" + (
        f" (first {len(rows)} shown)" if total > len(rows) else ""
    )
    if rows:
        text += "\n" + table(
            ("model", "version", "role", "input", "figures"),
            [(m, v, r, json.dumps(ref, sort_keys=True), _alert_figures(fig)) for m, v, r, ref, fig, _ in rows],
        )
    return data, text


# ---- changing -------------------------------------------------------------------------------


def _model_version(args: argparse.Namespace) -> dict[str, str]:
    return {"model_id": args.model, "version": args.version}


def cmd_register(cmd: Command) -> Output:
    args = cmd.args
    try:
        params = json.loads(Path(args.params).read_text()) if args.params else {}
    except (OSError, ValueError) as exc:
        raise ModelRegistryError(f"cannot read params file {args.params}: {exc}") from None
    result = cmd.change(
        "register",
        {"model_id": args.model},
        {"version": args.version, "params": params, "description": args.description},
    )
    return (
        result,
        f"registered {args.model}@{args.version} (id {result['id']}) as DRAFT; "
        f"run it with `modelreg activate {args.model} {args.version} --role SHADOW`",
    )


def _state(cmd: Command, data: dict[str, Any] | None = None) -> Output:
    """The version's state now, as the command leaves it."""
    args = cmd.args
    (version,) = [v for v in cmd.registry.lifecycle.versions(args.model) if v.version == args.version]
    data = {
        "model_id": args.model,
        "version": args.version,
        "status": version.status,
        "role": version.role,
        **(data or {}),
    }
    text = f"{args.model}@{args.version} is now {version.status} {version.role}"
    return data, (_figures(data["checks"]) + "\n" + text) if data.get("checks") else text


def cmd_activate(cmd: Command) -> Output:
    args = cmd.args
    if args.check:
        return _check_report(cmd.registry.lifecycle.check_activation(args.model, args.version, args.role))
    checks = cmd.change("activate", _model_version(args), {"role": args.role, "reason": args.reason})
    return _state(cmd, {"checks": checks})


def _retire(name: str) -> Callable[[Command], Output]:
    def command(cmd: Command) -> Output:
        cmd.change(name, _model_version(cmd.args), {"reason": cmd.args.reason, "force": cmd.args.force})
        return _state(cmd)

    return command


def _figures(figures: list[dict[str, Any]]) -> str:
    """Stage checks and quality gates (as stored) in one table: what each needs, what was
    found, pass/FAIL; with an interval gate among them, its 95% interval and evidence too."""
    intervals = any(f.get("kind") == "interval" for f in figures)
    header = ("check", "threshold", "measured", *(("95% interval", "evidence") if intervals else ()), "result")
    return table(
        header,
        [
            (
                f["name"],
                f["threshold"],
                f"{f['actual']:.4g}" if isinstance(f["actual"], float) else f["actual"],
                *(_interval_cells(f) if intervals else ()),
                "pass" if f["passed"] else "FAIL",
            )
            for f in figures
        ],
    )


def _interval_cells(figure: dict[str, Any]) -> tuple[str, str]:
    """An interval gate's interval and evidence (``-`` for point gates and stage checks)."""
    if figure.get("kind") != "interval":
        return "-", "-"
    low_high = figure["interval"]
    shown = f"{low_high[0]:.4g} to {low_high[1]:.4g}" if low_high else "none yet"
    evidence = f"{figure['inputs']} inputs, {figure['cycles']} cycles"
    if not figure["passed"]:
        more = figure["more_cycles"]
        evidence += "; more would not pass" if more is None else f"; ~{more} more cycles"
    return shown, evidence


def _check_report(readiness: Readiness) -> Output:
    """A ``--check``: every figure and the verdict; raises RefusedByCheck when it would be refused."""
    data = readiness.as_json()
    lines = [_figures(readiness.figures_json())] if readiness.checks or readiness.gates else []
    lines += readiness.problems
    label = f"{readiness.model_id}@{readiness.version}"
    if not readiness.passed:
        lines.append(f"check FAILED: {readiness.action} of {label} would be refused; nothing was changed")
        raise RefusedByCheck((data, "\n".join(lines)))
    then = (
        " (its promotions need approval: promote makes a request)"
        if readiness.approval_required and readiness.action == "promote"
        else ""
    )
    lines.append(f"check passed: {readiness.action} of {label} would go ahead{then}; nothing was changed")
    return data, "\n".join(lines)


def cmd_promote(cmd: Command) -> Output:
    args = cmd.args
    if args.check:
        if args.force:
            raise ModelRegistryError("--check evaluates without --force: leave one of them out")
        return _check_report(
            cmd.registry.lifecycle.check_promotion(args.model, args.version, window=timedelta(hours=args.window))
        )
    result = cmd.change(
        "promote",
        _model_version(args),
        {
            "window_hours": args.window,
            "force": args.force,
            "reason": args.reason,
            "keep_previous_as_shadow": args.keep_previous_as_shadow,
        },
    )
    if result.get("request"):
        return (result, _request_made(result["request"], f"{args.model}'s promotions need approval"))
    return _promotion_output(result, args.reason)


def _request_made(request: dict[str, Any], why: str) -> str:
    figures = [*request["checks"], *request["gates"]]
    head = f"{_figures(figures)}\n" if figures else ""
    return (
        f"{head}{why}: made request #{request['id']}, pending until {request['expires_at']}. Other people "
        f"apply it with `modelreg approve {request['model_id']}`"
    )


def _promotion_output(result: dict[str, Any], reason: str | None) -> Output:
    text = (
        _figures([*result["checks"], *result["gates"]])
        + f"\n{result['model_id']}@{result['promoted']} is now the ACTIVE PRIMARY ({result['basis']})"
    )
    if result["previous"]:
        text += f"; {result['previous']} is now {result['previous_now']}"
    if result["forced"]:
        text += " (forced past failing checks" + (f": {reason})" if reason else ")")
    return result, text


def cmd_approve(cmd: Command) -> Output:
    args = cmd.args
    result = cmd.change(
        "approve",
        {"model_id": args.model},
        {"version": args.version, "request_id": args.request, "reason": args.reason},
    )
    if not result["applied"]:
        request = result["request"]
        return result, (f"approved {_request_line(request)}; it needs more approvals before it applies")
    if "values" in result:
        return result, f"approved: {args.model}'s guards changed to {json.dumps(result['values'], sort_keys=True)}"
    return result, _promotion_output(result["promotion"], args.reason)[1]


def cmd_reject(cmd: Command) -> Output:
    args = cmd.args
    request = cmd.change(
        "reject", {"model_id": args.model}, {"version": args.version, "request_id": args.request, "reason": args.reason}
    )
    return request, _request_line(request)


def guard_output(result: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> Output:
    """A guard change applied (its values, as ``text`` says them) or turned into a request."""
    if not result["applied"]:
        return result, _request_made(
            result["request"],
            f"{result['model_id']} is under approval, so a change of its {result['guard']} needs a second person",
        )
    return result, text(result["values"])


def cmd_approvals(cmd: Command) -> Output:
    args = cmd.args
    if args.approvals_action == "set":
        approvers = None if args.approvers is None else [a.strip() for a in args.approvers.split(",") if a.strip()]
        result = cmd.change(
            "approvals",
            {"model_id": args.model},
            {
                "required": None if args.state is None else args.state == "on",
                "approvers": approvers,
                "min_approvals": args.min_approvals,
                "reason": args.reason,
            },
        )
        return guard_output(result, lambda values: f"{args.model}: approvals {_approval_text(values)}")
    requests = [r.as_json() for r in cmd.registry.approvals.requests(args.model, include_decided=args.all)]
    return requests, "\n".join(_request_line(r) for r in requests) or "no requests"


def cmd_describe(cmd: Command) -> Output:
    args = cmd.args
    cmd.change("describe", _model_version(args), {"description": args.text, "reason": args.reason})
    return (
        {"model_id": args.model, "version": args.version, "description": args.text.strip() or None},
        f"{args.model}@{args.version}: description {'set' if args.text.strip() else 'removed'}",
    )


def cmd_tag(cmd: Command) -> Output:
    args = cmd.args
    return _tags_output(args, cmd.change("tag", _model_version(args), {"tags": args.tags, "reason": args.reason}))


def cmd_untag(cmd: Command) -> Output:
    args = cmd.args
    return _tags_output(args, cmd.change("untag", _model_version(args), {"keys": args.keys, "reason": args.reason}))


def _tags_output(args: argparse.Namespace, tags: dict[str, str]) -> Output:
    return (
        {"model_id": args.model, "version": args.version, "tags": tags},
        f"{args.model}@{args.version} tags: {', '.join(f'{k}={v}' for k, v in sorted(tags.items())) or 'none'}",
    )


def cmd_meta(cmd: Command) -> Output:
    args = cmd.args
    if args.file:
        cmd.change(
            "meta", _model_version(args), {"metadata": _read_json(args.file, "metadata file"), "reason": args.reason}
        )
    metadata = cmd.registry.annotations.metadata(args.model, args.version)
    return (
        {"model_id": args.model, "version": args.version, "metadata": metadata},
        json.dumps(metadata, indent=2, sort_keys=True),
    )


def _read_json(path: str, what: str) -> Any:
    """A JSON file, strictly: NaN and Infinity are not JSON and jsonb refuses them."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    try:
        return json.loads(Path(path).read_text(), parse_constant=refuse)
    except (OSError, ValueError) as exc:
        raise MetadataError(f"cannot read {what} {path}: {exc}") from None


def _checks_text(model_id: str, policy: dict[str, Any]) -> str:
    return (
        f"{model_id}: before SHADOW/CHALLENGER a version needs tags {', '.join(policy['required_tags']) or '(none)'}"
        f"; description {'required' if policy['require_description'] else 'not required'}; params valid against "
        "the class's params_schema, if it declares one"
    )


def cmd_checks(cmd: Command) -> Output:
    args = cmd.args
    tags = None if args.require_tags is None else [t.strip() for t in args.require_tags.split(",") if t.strip()]
    describe = None if args.require_description is None else args.require_description == "on"
    if tags is None and describe is None:
        policy = cmd.registry.guards.stage_checks(args.model)
        values = {"required_tags": list(policy.required_tags), "require_description": policy.require_description}
        return {"model_id": args.model, **values}, _checks_text(args.model, values)
    result = cmd.change(
        "checks",
        {"model_id": args.model},
        {"required_tags": tags, "require_description": describe, "reason": args.reason},
    )
    return guard_output(result, lambda values: _checks_text(args.model, values))


def cmd_gates(cmd: Command) -> Output:
    args = cmd.args
    thresholds = json_option(args.metric_thresholds, "--metric-thresholds")
    changes = {
        "min_cycles": args.min_cycles,
        "max_failure_rate": args.max_failure_rate,
        "min_agreement": args.min_agreement,
        "max_duration_ratio": args.max_duration_ratio,
        "max_score_difference": args.max_score_difference,
        "metric_thresholds": thresholds,
        "gate_kind": args.gate_kind,
        "min_backtest_cycles": args.min_backtest_cycles,
    }
    if all(v is None for v in changes.values()):
        gates = cmd.registry.evidence.gates(args.model)
        return gates, "\n".join(f"{key}: {json.dumps(value)}" for key, value in gates.items())
    result = cmd.change("gates", {"model_id": args.model}, {**changes, "reason": args.reason})
    return guard_output(
        result, lambda values: "\n".join(f"{key}: {json.dumps(value)}" for key, value in values.items())
    )


def json_option(text: str | None, option: str) -> Any:
    """An option's JSON value (None when not given), or an error naming the option."""
    try:
        return json.loads(text) if text else None
    except ValueError as exc:
        raise ModelRegistryError(f"{option} is not JSON ({exc}): {text!r}") from None


def cmd_rollback(cmd: Command) -> Output:
    args = cmd.args
    result = cmd.change("rollback", {"model_id": args.model}, {"reason": args.reason, "to": args.to})
    return (
        {"model_id": args.model, "restored": result["promoted"], "previous": result["previous"]},
        f"{args.model}@{result['promoted']} is the ACTIVE PRIMARY again"
        + (f"; {result['previous']} is now INACTIVE" if result["previous"] else ""),
    )


def cmd_deps(cmd: Command) -> Output:
    args = cmd.args
    cmd.change(f"deps_{args.deps_action}", {"model_id": args.model}, {"upstream": args.upstream})
    text = (
        f"{args.model} now depends on {args.upstream}"
        if args.deps_action == "add"
        else f"{args.model} no longer depends on {args.upstream} in the registry"
    )
    return {"model_id": args.model, "upstream": args.upstream, "action": args.deps_action}, text


# ---- the parser ---------------------------------------------------------------------------


def _common_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """``--json``, taken before the command or after it, as people type it; ``--actor`` is refused."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of text",
        **({"default": False} if defaults else {"default": argparse.SUPPRESS}),
    )
    parser.add_argument(
        "--actor", help=argparse.SUPPRESS, **({"default": None} if defaults else {"default": argparse.SUPPRESS})
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelreg",
        description="Detection-model registry commands. Changes are made as the person logged in "
        "(`modelreg login`) or, without a login, as a service account in direct "
        "database mode.",
    )
    _common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[Command], Output], help_text: str, *positionals: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        _common_options(p, defaults=False)
        for arg in positionals:
            p.add_argument(arg)
        p.set_defaults(func=func)
        return p

    p = add("login", cmd_login, "log in to the Airflow API server: your changes are then made as you")
    p.add_argument(
        "--url", help="the Airflow API server (default: [model_registry] api_url, else Airflow's [api] base_url)"
    )
    p.add_argument("--username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add("logout", cmd_logout, "forget the saved login (changes are then made in direct database mode)")
    add("whoami", cmd_whoami, "who your changes are made as, and with which permissions")
    add("migrate", cmd_migrate, "create or upgrade the registry schema (idempotent)").add_argument(
        "--seed-demo", action="store_true", help="also insert the demo registry when it has no versions"
    )
    tag_filter: dict[str, Any] = {
        "action": "append",
        "metavar": "KEY[=VALUE]",
        "help": "only versions with this tag (any value if none is given); repeat for several",
    }
    add("list", cmd_list, "models with their PRIMARY and active shadows").add_argument("--tag", **tag_filter)
    add(
        "show", cmd_show, "a model's versions, tags, metadata, latest metrics, dependencies, gates and checks", "model"
    ).add_argument("--tag", **tag_filter)
    p = add("register", cmd_register, "add a DRAFT version", "model", "version")
    p.add_argument("--params", help="JSON file with the version's params")
    p.add_argument("--description")
    p = add(
        "activate", cmd_activate, "run a version as SHADOW or CHALLENGER, behind the model's checks", "model", "version"
    )
    p.add_argument("--role", required=True, choices=["SHADOW", "CHALLENGER"])
    p.add_argument("--reason")
    p.add_argument(
        "--check", action="store_true", help="only evaluate the checks: exit 0 pass, 1 fail, nothing changed"
    )
    for name in ("deactivate", "archive"):
        p = add(name, _retire(name), f"{name} a version", "model", "version")
        p.add_argument("--reason")
        p.add_argument("--force", action="store_true", help="allow it for the ACTIVE PRIMARY (needs --reason)")
    p = add("promote", cmd_promote, "make a version the PRIMARY, behind the quality gates", "model", "version")
    p.add_argument("--force", action="store_true", help="promote even if gates fail (needs --reason)")
    p.add_argument("--reason")
    p.add_argument(
        "--keep-previous-as-shadow",
        action="store_true",
        help="the previous PRIMARY stays ACTIVE as a SHADOW instead of ARCHIVED",
    )
    p.add_argument("--window", type=float, default=168, help="hours of history the gates look at (default 168)")
    p.add_argument(
        "--check", action="store_true", help="only evaluate the checks and gates: exit 0 pass, 1 fail, nothing changed"
    )
    for name, func, what in (
        ("approve", cmd_approve, "approve the model's pending request (a person, not its maker)"),
        ("reject", cmd_reject, "turn the model's pending request down"),
    ):
        p = add(name, func, what, "model")
        p.add_argument("version", nargs="?", help="the version the request promotes (refused if it is another)")
        p.add_argument("--request", type=int, metavar="ID", help="the request's id (refused if another is waiting)")
        p.add_argument("--reason", required=name == "reject")
    p = add("approvals", cmd_approvals, "whether a model's promotions need approval; its requests")
    approvals = p.add_subparsers(dest="approvals_action", required=True)
    q = approvals.add_parser("set", help="approvals on or off for a model, its approvers, how many must approve")
    _common_options(q, defaults=False)
    q.add_argument("model")
    q.add_argument("state", nargs="?", choices=["on", "off"])
    q.add_argument("--approvers", metavar="ID,ID,...", help="Airflow user ids who may approve ('' for anyone)")
    q.add_argument("--min-approvals", type=int, metavar="N", help="approvals a request needs (besides its maker's)")
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
    p.add_argument("--file", help="JSON file with the whole metadata document (see docs/reference/modelreg.md)")
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
    p.add_argument(
        "--include-defaults",
        action="store_true",
        help="allow the framework's own metrics (cycle_duration_ms, output_count, eval_*)",
    )
    p = add(
        "rollback", cmd_rollback, "restore the previous PRIMARY (never one rolled back from), or --to VERSION", "model"
    )
    p.add_argument("--to", metavar="VERSION", help="restore this former PRIMARY")
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
    p.add_argument("--max-score-difference", type=float, help="the mean absolute score difference from the PRIMARY")
    p.add_argument("--metric-thresholds", help='JSON, e.g. {"flagged": {"max": 50}}')
    p.add_argument(
        "--min-backtest-cycles",
        type=int,
        help="backtested cycles required (detection_model_backtest); the evaluation gates must pass on them too",
    )
    p.add_argument(
        "--gate-kind",
        choices=GATE_KINDS,
        help="interval (the default): agreement, duration ratio and score difference pass on the bound "
        "of their 95%% interval; point: on the estimate",
    )
    p.add_argument("--reason", help="why the gates change (recorded in the history)")
    p = add("compare", cmd_compare, "two versions' figures side by side", "model", "first", "second")
    p.add_argument("--window", type=float, default=168, help="hours of history (default 168)")
    p = add(
        "backtest",
        cmd_backtest,
        "run a version over past cycles (the detection_model_backtest DAG), compared with the PRIMARY of each",
        "model",
        "version",
    )
    p.add_argument("--start", required=True, help="first cycle time, ISO-8601 (naive: UTC)")
    p.add_argument("--end", required=True, help="last cycle time, ISO-8601 (naive: UTC), in the past")
    p.add_argument("--check", action="store_true", help="only check the version and the range; start nothing")
    p = add("history", cmd_history, "every transition of a model", "model")
    p.add_argument("--at", help="ISO timestamp: which version was PRIMARY then")
    add("plan", cmd_plan, "the plan the registry describes now, against the DAG Airflow last parsed")
    add("rows", cmd_rows, "rows stored per ACTIVE version for one cycle").add_argument(
        "--cycle", required=True, help="the cycle's timestamp, ISO-8601 with offset"
    )
    p = add("alerts", cmd_alerts, 'output rows of one cycle whose outputs say "alert": true')
    p.add_argument("--cycle", required=True, help="the cycle's timestamp, ISO-8601 with offset")
    p.add_argument("--limit", type=int, default=50, help="rows shown at most (default 50)")
    self_healing_commands.add_commands(add, _common_options)
    webhook_commands.add_commands(add, _common_options)
    return parser


def _logs_to_stderr() -> None:
    """Airflow logs to stdout; stdout is for the command's result (``--json`` is parsed)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    logging.getLogger("models_core").setLevel(logging.WARNING)


def main(argv: list[str] | None = None, *, http: httpx.Client | None = None) -> int:
    """Run one command; ``http`` is the client for the Airflow API server (tests hand in Airflow's app)."""
    _logs_to_stderr()
    args = build_parser().parse_args(argv)
    if args.actor is not None:
        print(
            f"modelreg {args.command}: --actor is gone: a change is made as the person logged in to Airflow "
            "(`modelreg login`) or, without a login, as the database user in direct database mode",
            file=sys.stderr,
        )
        return 2
    cmd = Command(args, load_settings(), http)
    status = 0
    try:
        try:
            data, text = args.func(cmd)
        except RefusedByCheck as failed:
            (data, text), status = failed.output, 1
    except CommandError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (ModelRegistryError, ValueError, psycopg2.Error) as exc:
        print(error_line(args.command, exc), file=sys.stderr)
        return 1
    finally:
        cmd.close()
    print(json.dumps(data, indent=2, sort_keys=True, default=str) if args.json else text)
    return status
