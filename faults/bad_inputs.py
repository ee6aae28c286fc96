"""Bad input of every kind, beside healthy models: one clear error each, nobody else harmed.

Setup: one registry holding healthy models (``steady_root`` with a SHADOW, ``steady_leaf``
downstream of it, ``cycle_a``, ``cycle_b``) and, beside them, one bad row or model per kind
(``faults.models.bad``), run by a real scheduler (LocalExecutor) with ``task_timeout`` 30 s.

Each kind enters where it would in real life and is judged where its error belongs:

- **task**: a model that misbehaves when it runs (returns None, raises, hangs, NaN/inf/huge
  or text metrics, outputs JSON cannot or jsonb will not hold, not pairs, a result claiming
  another model/version/role, params that are not an object in a row from before the
  database refused them) must fail its own task with exactly one error (its causes
  chained to it), naming what is wrong (the metric key, the pair's index, the field);
  the ones that are not errors (a million outputs, a leaked connection, an over-long metric
  key) must be stored whole, the last with a warning naming the key;
- **plan**: a row without a class, a module that fails to import, a class whose model_id is
  too long, a dependency on a model nobody declares: the DAG's docs name the offender, the
  DAG still loads, and the others run; a dependency cycle made with plain SQL (a second
  cycle) must leave the DAG on its last-known-good plan, say why in the first line of its
  docs and of the model tasks' log, and in the cycle's summary row;
- **cli** (``modelreg``): exit status 1, one error line on stderr naming the offender (before
  it only the one-line warnings naming the package's modules that fail to import), registry
  unchanged;
- **sql** (plain SQL an operator types): refused by the database with an error naming the
  bad value or the rule, registry unchanged.

Check: every kind's verdict, plus the healthy models' result sets complete in both cycles
(rows lost), and no half-written or duplicated result set anywhere.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2

from faults import integrity
from faults.airflow_api import DAG_ID, AirflowApi
from faults.airflow_metadata import dag_run, task_instances, wait_run_finished
from faults.environment import Suite, Workspace
from faults.report import FaultReport, count_text
from harness.airflow_processes import RunningAirflow, running_airflow
from harness.task_logs import after_startup_parse, skip_reasons, task_errors, task_log_records

NAME = "bad_inputs"
HEALTHY_ROWS = 50
TASK_TIMEOUT_S = 30
RUN_TIMEOUT_S = 360
PARSE_TIMEOUT_S = 90
LONG_ID = "model_id_too_long_" + "x" * 60
#: model_id, version, role: the healthy versions, with HEALTHY_ROWS outputs each.
HEALTHY = [
    ("steady_root", "1.0.0", "PRIMARY"),
    ("steady_root", "1.1.0", "SHADOW"),
    ("steady_leaf", "1.0.0", "PRIMARY"),
    ("cycle_a", "1.0.0", "PRIMARY"),
    ("cycle_b", "1.0.0", "PRIMARY"),
]


@dataclass(frozen=True)
class TaskKind:
    """A model whose task must end ``expect``; ``mentions`` must all be in its one error (or warning)."""

    kind: str
    model_id: str
    expect: str = "failed"
    mentions: tuple[str, ...] = ()
    params: str = "{}"
    rows: int = 0  # for expect == "success": outputs that must be stored


TASK_KINDS = [
    TaskKind("run() returns None", "returns_none", mentions=("returned NoneType",)),
    TaskKind("run() raises", "raises", mentions=("sensor feed offline",)),
    TaskKind("run() hangs", "hangs", mentions=("timeout",)),
    TaskKind("NaN metric", "nan_metric", mentions=("'precision'", "nan")),
    TaskKind("inf metric", "inf_metric", mentions=("'recall'", "inf")),
    TaskKind("huge metric (10**400)", "huge_metric", mentions=("'flagged'",)),
    TaskKind("text metric", "text_metric", mentions=("'verdict'",)),
    TaskKind("output JSON cannot hold (a set)", "non_json_output", mentions=("outputs_per_input[4]", "JSON")),
    TaskKind("NUL character in an output", "nul_in_output", mentions=("outputs_per_input[2]", "NUL")),
    TaskKind("output that is not a pair", "not_pairs", mentions=("outputs_per_input[2]", "pair")),
    TaskKind("result claims another model", "claims_other_model", mentions=("model_id", "steady_root")),
    TaskKind("result claims another version", "claims_other_version", mentions=("version_id",)),
    TaskKind("result claims another role", "claims_other_role", mentions=("role", "SHADOW")),
    TaskKind("params a JSON array (a row from before 0007)", "params_array", mentions=("params",), params="[1, 2, 3]"),
    TaskKind("1,000,000 outputs", "million_rows", expect="success", rows=1_000_000),
    TaskKind("model leaks its connection", "leaks_connection", expect="success", rows=5),
    TaskKind("metric key over 64 characters", "long_metric_key", expect="success", rows=3, mentions=("k" * 70,)),
]


@dataclass(frozen=True)
class Verdict:
    kind: str
    channel: str
    ok: bool
    evidence: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bad-kinds", help=f"{NAME}: only kinds whose name contains this text (default: all)")


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:  # noqa: ARG001
    kinds = [k for k in TASK_KINDS if not args.bad_kinds or args.bad_kinds in k.kind]
    settings = {
        "AIRFLOW__MODEL_REGISTRY__TASK_TIMEOUT": str(TASK_TIMEOUT_S),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "2",
    }
    verdicts: list[Verdict] = []
    with suite.workspace(NAME, models_package="faults.models.bad", settings=settings) as ws:
        _seed(ws, kinds)
        verdicts += _entry_kinds(ws, args)
        with running_airflow(ws.env, ws.folder / "airflow_logs") as airflow:
            api = AirflowApi(airflow.base_url)
            # every version's task, orphan's (blocked, still shown) and cycle_summary
            api.wait_for_dag(len(HEALTHY) + len(kinds) + 2, timeout=180)
            api.unpause()
            first = _cycle(ws, airflow, api)
            verdicts += _task_verdicts(ws, first, kinds)
            parse_errors = task_errors(task_log_records(ws.home, DAG_ID, first, "steady_root.primary"))
            if parse_errors:
                report.note(
                    f"not counted against a kind: every task's log opens with the {len(parse_errors)} "
                    "error(s) its worker's parse of the DAG file logs about broken model modules, "
                    f"e.g. {parse_errors[0][:120]}"
                )
            verdicts += _plan_verdicts(ws, api, first)
            _healthy(ws, first, report)
            if not args.bad_kinds or args.bad_kinds in "dependency cycle":
                verdicts.append(_cycle_kind(ws, airflow, api, report))
        scan = integrity.scan(ws)
    report.rows_duplicated += scan.duplicated_rows
    report.half_written += len(scan.half_written) + len(scan.double_primary)
    for problem in scan.problems()[:5]:
        report.note(problem)
    report.trials = len(verdicts)
    for verdict in verdicts:
        report.outcomes["clear" if verdict.ok else "WRONG"] += 1
        print(
            f"[faults] {NAME}: {'ok   ' if verdict.ok else 'WRONG'} [{verdict.channel}] {verdict.kind}: "
            f"{verdict.evidence[:300]}",
            flush=True,
        )
        if not verdict.ok:
            report.note(f"[{verdict.channel}] {verdict.kind}: {verdict.evidence[:400]}")
    report.note(f"{len(verdicts)} kinds: {count_text(v.channel for v in verdicts)}")
    report.passed = all(v.ok for v in verdicts) and report.data_intact


def _insert_version(ws: Workspace, model_id: str, version: str, role: str, params: str = "{}") -> None:
    ws.registry_rows(
        "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
        " VALUES (%s, %s, 'ACTIVE', %s, %s)",
        (model_id, version, role, params),
    )


def _insert_legacy_version(ws: Workspace, model_id: str, version: str, role: str, params: str) -> None:
    """A row written before migration 0007 refused params that are not an object: the check
    (a trigger since 0008) is off for this one INSERT, in one transaction."""
    ws.registry_rows(
        "ALTER TABLE detection_model_versions DISABLE TRIGGER detection_model_versions_params_object;"
        " INSERT INTO detection_model_versions (model_id, version, status, role, params)"
        " VALUES (%s, %s, 'ACTIVE', %s, %s);"
        " ALTER TABLE detection_model_versions ENABLE TRIGGER detection_model_versions_params_object",
        (model_id, version, role, params),
    )


def _seed(ws: Workspace, kinds: list[TaskKind]) -> None:
    for model_id, version, role in HEALTHY:
        _insert_version(ws, model_id, version, role, json.dumps({"rows": HEALTHY_ROWS}))
    for kind in kinds:
        insert = _insert_legacy_version if not isinstance(json.loads(kind.params), dict) else _insert_version
        insert(ws, kind.model_id, "1.0.0", "PRIMARY", kind.params)
    _insert_version(ws, "ghost_model", "1.0.0", "PRIMARY")  # no class declares it
    _insert_version(ws, "orphan", "1.0.0", "PRIMARY", json.dumps({"rows": HEALTHY_ROWS}))
    ws.registry_rows("INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('orphan', 'nowhere')")


def _cycle(ws: Workspace, airflow: RunningAirflow, api: AirflowApi) -> str:
    run_id = api.trigger()
    if wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S) is None:
        stuck = sorted(
            t.task_id for t in task_instances(ws, run_id).values() if t.state not in ("success", "failed", "skipped")
        )
        raise RuntimeError(f"cycle {run_id} still running after {RUN_TIMEOUT_S} s: {stuck}")
    return run_id


def _mentions_all(text: str, mentions: tuple[str, ...]) -> list[str]:
    """The mentions missing from ``text`` (case-insensitive)."""
    return [m for m in mentions if m.lower() not in text.lower()]


def _task_verdicts(ws: Workspace, run_id: str, kinds: list[TaskKind]) -> list[Verdict]:
    cycle = dag_run(ws, run_id).run_after
    tasks = task_instances(ws, run_id)
    scan = integrity.scan(ws)
    verdicts = []
    for kind in kinds:
        task_id = f"{kind.model_id}.primary"
        state = tasks[task_id].state if task_id in tasks else "missing"
        records = after_startup_parse(task_log_records(ws.home, DAG_ID, run_id, task_id))
        errors = sorted(set(task_errors(records)))
        stored = scan.find(cycle, kind.model_id, "PRIMARY")
        if kind.expect == "failed":
            missing = _mentions_all(errors[0], kind.mentions) if len(errors) == 1 else list(kind.mentions)
            ok = state == "failed" and len(errors) == 1 and not missing and not stored
            evidence = f"task {state}; {len(errors)} error(s): {' | '.join(errors)[:300] or 'none'}"
            if missing:
                evidence += f"; not named: {missing}"
            if stored:
                evidence += f"; {stored[0].stored} rows stored anyway"
        else:
            warnings = " ".join(str(r.get("event")) for r in records if r.get("level") == "warning")
            missing = _mentions_all(warnings, kind.mentions)
            rows = max((s.distinct_seq for s in stored), default=0)
            ok = state == "success" and rows == kind.rows and not errors and not missing
            evidence = f"task {state}; {rows:,} of {kind.rows:,} rows stored; errors: {errors or 'none'}"
            if kind.mentions:
                evidence += f"; warning {'names' if not missing else 'does not name'} the key"
            if kind.model_id == "leaks_connection":
                left = _wait_sessions_gone(ws, "%leaks_connection%")
                ok = ok and not left
                evidence += f"; sessions left after the task: {left or 'none'}"
        verdicts.append(Verdict(kind.kind, "task", ok, evidence))
    return verdicts


def _wait_sessions_gone(ws: Workspace, pattern: str, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = [
            row[0]
            for row in ws.registry_rows(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s", (pattern,)
            )
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _plan_verdicts(ws: Workspace, api: AirflowApi, run_id: str) -> list[Verdict]:
    doc = api.dag_details().get("doc_md") or ""
    errors = api.import_errors()
    tasks = task_instances(ws, run_id)
    loads = f"DAG loads ({'no import errors' if not errors else f'{len(errors)} import errors'})"
    checks = [
        ("version row without a model class", ("ghost_model",)),
        ("module that fails to import", ("faults.models.bad.broken_import", "broken on purpose")),
        ("class model_id over 64 characters", ("faults.models.bad.long_model_id", "64")),
        ("dependency on a model nobody declares", ("orphan", "nowhere")),
    ]
    verdicts = []
    for kind, mentions in checks:
        missing = _mentions_all(doc, mentions)
        evidence = f"{loads}; docs {'name' if not missing else 'do not name'} {', '.join(mentions)}"
        ok = not missing and not errors
        if kind.startswith("version row"):
            ok = ok and not any(task_id.startswith("ghost_model.") for task_id in tasks)
        if kind.startswith("dependency"):
            reasons = skip_reasons(task_log_records(ws.home, DAG_ID, run_id, "orphan.primary"))
            state = tasks["orphan.primary"].state if "orphan.primary" in tasks else "missing"
            ok = ok and state == "skipped" and any("nowhere" in r for r in reasons)
            evidence += f"; orphan.primary {state}: {reasons[:1] or 'no reason logged'}"
        verdicts.append(Verdict(kind, "plan", ok, evidence))
    return verdicts


def _healthy(ws: Workspace, run_id: str, report: FaultReport) -> None:
    """Rows lost by the healthy models in this cycle, and whether steady_leaf saw all of steady_root's."""
    cycle = dag_run(ws, run_id).run_after
    scan = integrity.scan(ws)
    for model_id, _version, role in HEALTHY:
        lost = scan.lost_rows(cycle, model_id, role, HEALTHY_ROWS)
        report.rows_lost += lost
        if lost:
            report.note(f"healthy {model_id} {role} lost {lost} of {HEALTHY_ROWS} rows in {run_id}")
    seen = ws.registry_rows(
        "SELECT metric_value FROM detection_model_metrics WHERE model_id = 'steady_leaf' AND"
        " cycle_started_at = %s AND metric_key = 'upstream_rows_steady_root'",
        (cycle,),
    )
    if [row[0] for row in seen] != [HEALTHY_ROWS]:
        report.rows_lost += HEALTHY_ROWS
        report.note(f"steady_leaf saw {seen} rows of steady_root in {run_id}, not {HEALTHY_ROWS}")


def _cycle_kind(ws: Workspace, airflow: RunningAirflow, api: AirflowApi, report: FaultReport) -> Verdict:
    """A dependency cycle added with plain SQL: the DAG keeps its last-known-good plan and says why."""
    ws.registry_rows(
        "UPDATE detection_model_versions SET status = 'INACTIVE' WHERE model_id <> ALL(%s)",
        ([m for m, _v, _r in HEALTHY],),
    )  # a short second cycle: the healthy models only
    expected_tasks = sorted(
        {f"{m}.{'primary' if r == 'PRIMARY' else 'shadow_1_1_0'}" for m, _v, r in HEALTHY} | {"cycle_summary"}
    )
    _wait_until(lambda: api.task_ids() == expected_tasks, "the DAG to drop the deactivated versions")
    ws.registry_rows(
        "INSERT INTO detection_model_dependencies (model_id, depends_on)"
        " VALUES ('cycle_a', 'cycle_b'), ('cycle_b', 'cycle_a')"
    )

    def first_line() -> str:
        return (api.dag_details().get("doc_md") or "").strip().splitlines()[0]

    said = _wait_until(
        lambda: "cycle" in first_line().lower() and first_line(), "the docs to report the cycle", raise_on_timeout=False
    )
    run_id = _cycle(ws, airflow, api)
    _healthy(ws, run_id, report)
    tasks = task_instances(ws, run_id)
    try:
        summary = ws.registry_rows(
            "SELECT plan_stale_reason FROM detection_model_cycle_summaries WHERE dag_run_id = %s", (run_id,)
        )
    except psycopg2.errors.UndefinedColumn:  # a registry schema from before the summary recorded it
        summary = []
    stale = summary[0][0] if summary else None
    task_line = _first_model_line(ws, run_id, "steady_root.primary")
    problems = []
    if not said or not all(m in said for m in ("cycle_a", "cycle_b")):
        problems.append(f"docs' first line: {first_line()[:200]!r}")
    if api.import_errors() or api.dag() is None:
        problems.append("the DAG has an import error or is gone")
    if api.task_ids() != expected_tasks or any(tasks[t].state != "success" for t in expected_tasks if t in tasks):
        problems.append(f"tasks of the second cycle: {sorted((t, r.state) for t, r in tasks.items())}")
    if not stale or "cycle" not in stale:
        problems.append(f"summary plan_stale_reason: {stale!r}")
    if "cycle" not in task_line:
        problems.append(f"first line of steady_root.primary's log: {task_line[:200]!r}")
    evidence = "; ".join(problems) or f"DAG kept its plan; docs: {said[:150]}; summary and task log say why"
    return Verdict("dependency cycle made with plain SQL", "plan", not problems, evidence)


def _first_model_line(ws: Workspace, run_id: str, task_id: str) -> str:
    """The first line the product logged in the task (Airflow's own lines before it are skipped)."""
    for record in task_log_records(ws.home, DAG_ID, run_id, task_id):
        if str(record.get("logger", "")).startswith("models_core.cycle"):
            return str(record.get("event"))
    return ""


def _wait_until(probe: Callable[[], object], what: str, raise_on_timeout: bool = True):
    deadline = time.monotonic() + PARSE_TIMEOUT_S
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            if not value and raise_on_timeout:
                raise RuntimeError(f"timed out after {PARSE_TIMEOUT_S} s waiting for {what}")
            return value
        time.sleep(1)


def _registry_state(ws: Workspace) -> list[tuple]:
    return ws.registry_rows(
        "SELECT 'v', model_id, version, status, role, params::text FROM detection_model_versions"
        " UNION ALL SELECT 'd', model_id, depends_on, input_key, '', '' FROM"
        " detection_model_dependencies ORDER BY 1, 2, 3"
    )


def _entry_kinds(ws: Workspace, args: argparse.Namespace) -> list[Verdict]:
    """Bad input refused at the door, by ``modelreg`` or by the database."""
    (ws.folder / "bad.json").write_text('{"threshold": 0.7,,}')
    (ws.folder / "list.json").write_text("[0.7, 0.9]")
    cli = [
        (
            "malformed params JSON",
            ["register", "steady_root", "9.0.0", "--params", str(ws.folder / "bad.json")],
            ("bad.json",),
        ),
        (
            "params JSON not an object",
            ["register", "steady_root", "9.0.1", "--params", str(ws.folder / "list.json")],
            ("JSON object",),
        ),
        ("version not MAJOR.MINOR.PATCH", ["register", "steady_root", "1.0"], ("'1.0'", "MAJOR.MINOR.PATCH")),
        ("model_id over 64 characters", ["register", LONG_ID, "1.0.0"], (LONG_ID[:30],)),
        ("dependency on an unknown model", ["deps", "add", "steady_leaf", "nowhere_else"], ("nowhere_else",)),
        (
            "promotion of an unknown version",
            ["promote", "steady_root", "7.7.7", "--force", "--reason", "x"],
            ("7.7.7",),
        ),
    ]
    sql = [
        (
            "unknown role",
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('steady_root', '5.0.0', 'ACTIVE', 'BOSS')",
            ("role", "BOSS"),
        ),
        (
            "version not MAJOR.MINOR.PATCH",
            "INSERT INTO detection_model_versions (model_id, version) VALUES ('steady_root', 'v2')",
            ("version", "v2"),
        ),
        (
            "empty model_id",
            "INSERT INTO detection_model_versions (model_id, version) VALUES ('', '1.0.0')",
            ("model_id",),
        ),
        (
            "malformed params JSON",
            "INSERT INTO detection_model_versions (model_id, version, params)"
            " VALUES ('steady_root', '5.0.1', '{\"threshold\": }')",
            ("json",),
        ),
        (
            "params JSON not an object",
            "INSERT INTO detection_model_versions (model_id, version, params)"
            " VALUES ('steady_root', '5.0.3', '[0.7, 0.9]')",
            ("params_object",),
        ),
        (
            "second ACTIVE PRIMARY",
            "INSERT INTO detection_model_versions (model_id, version, status, role)"
            " VALUES ('steady_root', '5.0.2', 'ACTIVE', 'PRIMARY')",
            ("steady_root",),
        ),
        (
            "dependency of a model on itself",
            "INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('steady_leaf', 'steady_leaf')",
            ("no_self",),
        ),
    ]
    verdicts = []
    for kind, argv, mentions in cli:
        if args.bad_kinds and args.bad_kinds not in kind:
            continue
        before = _registry_state(ws)
        done = ws.modelreg(*argv, check=False)
        lines = done.stderr.strip().splitlines()
        # The error is the last line; before it only the one-line warnings naming each model
        # module of the package that fails to import (this package has two), no traceback.
        noise = [line for line in lines[:-1] if "cannot import model module" not in line]
        missing = _mentions_all(lines[-1] if lines else "", mentions)
        unchanged = _registry_state(ws) == before
        ok = done.returncode == 1 and bool(lines) and not noise and not missing and unchanged
        shown = " / ".join(lines) if len(lines) < 3 else f"{lines[0][:120]} / ... / {lines[-1]}"
        verdicts.append(
            Verdict(
                kind,
                "cli",
                ok,
                f"exit {done.returncode}, {len(lines)} line(s) on stderr: "
                f"{shown[:300]}{'' if unchanged else '; the registry changed'}"
                f"{f'; not named: {missing}' if missing else ''}",
            )
        )
    for kind, statement, mentions in sql:
        if args.bad_kinds and args.bad_kinds not in kind:
            continue
        before = _registry_state(ws)
        try:
            ws.registry_rows(statement)
            text, refused = "accepted", False
        except psycopg2.Error as exc:
            text, refused = " ".join(f"{exc.pgerror or exc} {exc.diag.message_detail or ''}".split()), True
        missing = _mentions_all(text, mentions)
        unchanged = _registry_state(ws) == before
        verdicts.append(
            Verdict(
                kind,
                "sql",
                refused and not missing and unchanged,
                f"{text[:250]}{'' if unchanged else '; the registry changed'}"
                f"{f'; not named: {missing}' if missing else ''}",
            )
        )
    return verdicts
