"""The registry database restarted during a cycle.

Setup: the registry lives on a PostgreSQL server the suite started for this fault alone
(Airflow's metadata stays on the main server); a chain ``relay_a -> relay_b -> relay_c`` of
PRIMARY models, plus a SHADOW of ``relay_a``, each storing ``--restart-rows`` outputs in a
COPY paced to last about a second, run by a real scheduler (LocalExecutor), one triggered
cycle per trial. A first cycle without a fault measures how long a cycle takes here.

Injection: at a seeded random moment within that duration after the run starts, the server
is stopped (``fast``: clean shutdown, or ``immediate``: as in a crash, chosen at random),
kept down for a random 0.5-5 s (connections refused), and started again. The tasks running
at that moment are recorded.

Recovery: nothing but the product: no clear, no manual retry (default settings, ``retries = 0``).

Check (from the database and Airflow's metadata): the run ends ``success``; every version's
result set of that cycle is complete (rows 0..n-1, ``output_count`` equal, one PRIMARY
version), no result set anywhere is half-written or duplicated, and each downstream model saw
its upstream's complete result (the ``upstream_rows_*`` metrics it stored). Time to recover:
from the stop to the run's end.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from datetime import UTC, datetime

from faults import integrity
from faults.airflow_api import AirflowApi
from faults.airflow_metadata import dag_run, task_instances, wait_run_finished
from faults.environment import Suite, Workspace
from faults.report import FaultReport
from harness.airflow_processes import RunningAirflow, running_airflow
from harness.task_logs import task_errors, task_log_records

NAME = "db_restart"
RUN_TIMEOUT_S = 300
#: model_id, version, role, depends on
VERSIONS = [
    ("relay_a", "1.0.0", "PRIMARY"),
    ("relay_a", "1.1.0", "SHADOW"),
    ("relay_b", "1.0.0", "PRIMARY"),
    ("relay_c", "1.0.0", "PRIMARY"),
]
UPSTREAM = {"relay_b": "relay_a", "relay_c": "relay_b"}
TASKS = len(VERSIONS) + 1  # and cycle_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restart-trials", type=int, default=6, help=f"{NAME}: restarts, one per cycle (default 6)")
    parser.add_argument("--restart-rows", type=int, default=5_000, help=f"{NAME}: outputs per version")


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    server = suite.owned_server(NAME)
    with suite.workspace(NAME, models_package="faults.models.steady", registry_server=server) as ws:
        params = json.dumps({"rows": args.restart_rows, "pace_s": 1.0})
        for model_id, version, role in VERSIONS:
            ws.registry_rows(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
                " VALUES (%s, %s, 'ACTIVE', %s, %s)",
                (model_id, version, role, params),
            )
        with running_airflow(ws.env, ws.folder / "airflow_logs") as airflow:
            api = AirflowApi(airflow.base_url)
            api.wait_for_dag(TASKS, timeout=180)
            api.unpause()
            # The first cycle warms the processes up; the shorter of two sets the injection window.
            baseline = min(_cycle(ws, airflow, api, args, report, None) for _ in range(2))
            window = 0.9 * baseline
            report.note(
                f"a cycle without a fault took {baseline:.1f} s; restarts land in [0, {window:.1f} s] "
                "after the run starts"
            )
            attempts = 0
            while report.trials < args.restart_trials and attempts < 3 * args.restart_trials:
                attempts += 1
                _cycle(ws, airflow, api, args, report, (server, rng, window))
    report.passed = report.outcomes["recovered"] == report.trials >= args.restart_trials and report.data_intact


def _cycle(
    ws: Workspace,
    airflow: RunningAirflow,
    api: AirflowApi,
    args: argparse.Namespace,
    report: FaultReport,
    fault: tuple | None,
) -> float | None:
    """One cycle, with a restart when ``fault`` is (server, rng, window in seconds) and its checks;
    without one, its duration."""
    run_id = api.trigger()
    injected: dict = {}
    restarter = None
    if fault is not None:
        restarter = threading.Thread(target=_restart_during, args=(ws, run_id, *fault, injected))
        restarter.start()
    run = wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S)
    if restarter is not None:
        restarter.join()
    if fault is None:
        if run is None or run.state != "success":
            raise RuntimeError(f"the cycle without a fault ended {run.state if run else 'unfinished'}")
        return (run.end_date - run.start_date).total_seconds()
    _judge(ws, run_id, run, injected, args, report)
    return None


def _last_error(ws: Workspace, run_id: str, task_ids: list[str]) -> str:
    """The last exception the first failed task logged, as a lead for the reader."""
    for task_id in task_ids:
        errors = task_errors(task_log_records(ws.home, "detection_models", run_id, task_id))
        if errors:
            return f"{task_id}: {' '.join(errors[-1].split())[:300]}"
    return "no error logged"


def _restart_during(ws: Workspace, run_id: str, server, rng: random.Random, window: float, injected: dict) -> None:
    """Wait until the run started, then a random moment, then restart the registry's server."""
    while dag_run(ws, run_id).start_date is None:
        time.sleep(0.1)
    delay, mode, down_s = rng.uniform(0, window), rng.choice(["fast", "immediate"]), rng.uniform(0.5, 5.0)
    time.sleep(delay)
    injected["running"] = sorted(t.task_id for t in task_instances(ws, run_id).values() if t.state == "running")
    injected.update(at=datetime.now(UTC), delay=delay, mode=mode, down_s=down_s)
    server.restart(mode, down_s)


def _judge(ws: Workspace, run_id: str, run, injected: dict, args: argparse.Namespace, report: FaultReport) -> None:
    rows = args.restart_rows
    cycle = dag_run(ws, run_id).run_after
    scan = integrity.scan(ws)
    half_written = [s for s in scan.half_written if s.cycle == cycle]
    double_primary = [item for item in scan.double_primary if cycle.isoformat() in item]
    wrong = [f"{s.label}: {s.stored} rows, output_count {s.output_count}" for s in half_written]
    wrong += [f"two PRIMARY row sets: {item}" for item in double_primary]
    missing = []  # failed without damage: the version's result of this cycle is not there
    for model_id, _version, role in VERSIONS:
        found = scan.find(cycle, model_id, role)
        report.rows_lost += scan.lost_rows(cycle, model_id, role, rows)
        if len(found) > 1:
            wrong.append(f"{model_id} {role}: {len(found)} result sets for the cycle")
        elif not found:
            state = task_instances(ws, run_id).get(f"{model_id}.{'primary' if role == 'PRIMARY' else 'shadow_1_1_0'}")
            missing.append(f"{model_id} {role} stored nothing (task {state.state if state else 'missing'})")
    for model_id, upstream in UPSTREAM.items():
        seen = ws.registry_rows(
            "SELECT metric_value FROM detection_model_metrics WHERE model_id = %s AND role = "
            "'PRIMARY' AND cycle_started_at = %s AND metric_key = %s",
            (model_id, cycle, f"upstream_rows_{upstream}"),
        )
        if run is not None and run.state == "success" and [r[0] for r in seen] != [rows]:
            wrong.append(f"{model_id} saw {[r[0] for r in seen]} rows of {upstream}, not {rows}")
    report.rows_duplicated += sum(s.duplicated for s in scan.sets if s.cycle == cycle)
    report.half_written += len(half_written) + len(double_primary)
    retried = sorted(
        task_id
        for task_id in task_instances(ws, run_id)
        if any(
            "transient database error" in str(r.get("event"))
            for r in task_log_records(ws.home, "detection_models", run_id, task_id)
        )
    )
    what = (
        f"{injected['mode']} restart +{injected['delay']:.1f} s into the run, down {injected['down_s']:.1f} s, "
        f"running: {', '.join(injected['running']) or 'no task'}; retried in the task: {', '.join(retried) or 'none'}"
    )
    landed = run is None or run.end_date is None or run.end_date > injected["at"]
    if landed:
        report.trials += 1
    if wrong:
        outcome = "wrong"
        report.note(f"{run_id}: {what}: " + "; ".join(wrong))
    elif not landed:  # the run had ended: nothing to recover from, but its rows were checked all the same
        outcome = "restart after the run ended"
    elif run is None or run.state != "success" or missing:
        outcome = "failed-clean"
        failed = sorted(t.task_id for t in task_instances(ws, run_id).values() if t.state != "success")
        report.note(
            f"{run_id}: {what}: run {run.state if run else 'unfinished'}, tasks not successful: "
            f"{', '.join(failed) or 'none'}; {'; '.join(missing)}; {_last_error(ws, run_id, failed)}"
        )
    else:
        outcome = "recovered"
        report.recover_s.append((run.end_date - injected["at"]).total_seconds())
    report.outcomes[outcome] += 1
    print(f"[faults] {NAME}: {run_id}: {what}: {outcome}", flush=True)
