"""kill -9 of a model task while it stores its result, then the retry.

Setup: ``--kill-writers`` PRIMARY models (``writer_N`` of ``faults.models.steady``), each
producing ``--kill-rows`` outputs at a pace that makes their COPY last ``--kill-pace`` s, run
by a real scheduler with the LocalExecutor, one triggered cycle per round.

Injection: a first cycle runs without a fault, to time the writers' COPY on this machine.
Then, in each cycle, a watcher per writer polls ``pg_stat_activity`` for that model's COPY
(application_name ``model:<model_id>``); once it is seen, the watcher waits a seeded random
delay in [0, 1.2 x the longest COPY timed] (so most kills land mid-COPY, some in the
metrics INSERT, the commit or after it) and sends SIGKILL to the task process, whose id the
model wrote when it started, after checking that Airflow processes this fault started are
its ancestors. What the model's connection was doing at that instant is recorded.

Recovery: the killed tasks fail; the run's failed tasks are cleared through the REST API
(as an operator does) and the scheduler runs them again.

Check (independent, from the database): right after the kill, once the killed session has
gone, the writer's result set for the cycle is either absent or complete (never partial);
after the retry it is complete, exactly once: ``--kill-rows`` rows with output_seq
0..n-1, an ``output_count`` metric equal to it, one PRIMARY version. Time to recover:
the kill to the retried task's end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from faults import integrity
from faults.airflow_api import AirflowApi
from faults.airflow_metadata import DagRunRecord, TaskRecord, dag_run, task_instances, wait_run_finished
from faults.environment import Suite, Workspace
from faults.report import FaultReport, count_text
from harness.airflow_processes import RunningAirflow, running_airflow

NAME = "kill_persist"
COPY_WAIT_S = 120
RUN_TIMEOUT_S = 240


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kill-trials", type=int, default=20, help=f"{NAME}: kills, at least (default 20)")
    parser.add_argument("--kill-writers", type=int, default=4, help=f"{NAME}: writers killed per cycle (1-4)")
    parser.add_argument("--kill-rows", type=int, default=20_000, help=f"{NAME}: outputs per writer")
    parser.add_argument("--kill-pace", type=float, default=1.5, help=f"{NAME}: seconds one COPY of them lasts")


@dataclass
class Kill:
    """One trial: where the kill landed and what the database held before and after the retry."""

    model_id: str
    delay_s: float = 0.0
    phase: str = "not injected"
    killed_at: datetime | None = None
    before_retry: str = "-"
    landed: bool = False  # killed while Airflow still had the task running: a trial


def _copy_seen(conn, model_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
            " AND state = 'active' AND query ILIKE 'COPY%%'",
            (f"model:{model_id}",),
        )
        return cur.fetchone() is not None


def _phase(conn, model_id: str) -> str:
    """What the model's framework connection is doing now, in words."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (f"model:{model_id}",),
        )
        row = cur.fetchone()
    if row is None:
        return "no session (after the write)"
    state, query = row
    if state == "active":
        return "mid-COPY" if query.lstrip().upper().startswith("COPY") else f"running {query.split()[0].upper()}"
    return "idle in transaction" if state.startswith("idle in") else "idle (after commit)"


def _time_copy(ws: Workspace, model_id: str, seconds: list[float]) -> None:
    """Append how long the writer's next COPY lasts, as pg_stat_activity shows it."""
    conn = ws.registry()
    try:
        deadline = time.monotonic() + COPY_WAIT_S
        while not _copy_seen(conn, model_id):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no COPY of {model_id} seen within {COPY_WAIT_S} s")
            time.sleep(0.02)
        started = time.monotonic()
        while _copy_seen(conn, model_id):
            time.sleep(0.02)
        seconds.append(time.monotonic() - started)
    finally:
        conn.close()


def _warm_up(ws: Workspace, airflow: RunningAirflow, api: AirflowApi, writers: list[str]) -> float:
    """One cycle without a fault; the longest COPY of its writers, in seconds."""
    seconds: list[float] = []
    run_id = api.trigger()
    watchers = [threading.Thread(target=_time_copy, args=(ws, model_id, seconds)) for model_id in writers]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        watcher.join()
    run = wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S)
    if run is None or run.state != "success" or len(seconds) != len(writers):
        raise RuntimeError(
            f"the cycle without a fault ended {run.state if run else 'unfinished'}; "
            f"COPY timed for {len(seconds)} of {len(writers)} writers"
        )
    return max(seconds)


def _kill_during_copy(ws: Workspace, airflow: RunningAirflow, kill: Kill, pid_file: Path, delay_s: float) -> None:
    """Wait for the writer's COPY, wait ``delay_s``, SIGKILL its task process; record where it landed."""
    conn = ws.registry()
    try:
        deadline = time.monotonic() + COPY_WAIT_S
        while not _copy_seen(conn, kill.model_id):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        time.sleep(delay_s)
        kill.delay_s = delay_s
        pid = int(pid_file.read_text())
        if not airflow.owns(pid):  # ended already (its pid may even be reused), or never ours
            kill.phase = "task process already ended: not killed"
            return
        kill.phase = _phase(conn, kill.model_id)
        os.kill(pid, signal.SIGKILL)
        kill.killed_at = datetime.now(UTC)
    except ProcessLookupError:
        kill.phase = "task process already ended: not killed"
    finally:
        conn.close()


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    writers = [f"writer_{n}" for n in range(1, max(1, min(4, args.kill_writers)) + 1)]
    with suite.workspace(NAME, models_package="faults.models.steady") as ws:
        signals = ws.folder / "signals"
        signals.mkdir()
        params = {"rows": args.kill_rows, "pace_s": args.kill_pace, "signal_dir": str(signals)}
        for model_id in writers:
            ws.registry_rows(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
                " VALUES (%s, '1.0.0', 'ACTIVE', 'PRIMARY', %s)",
                (model_id, json.dumps(params)),
            )
        with running_airflow(ws.env, ws.folder / "airflow_logs") as airflow:
            api = AirflowApi(airflow.base_url)
            api.wait_for_dag(len(writers) + 1, timeout=180)
            api.unpause()
            window_s = 1.2 * _warm_up(ws, airflow, api, writers)
            report.note(
                f"kill moments drawn from [0, {window_s:.2f} s] after the COPY starts "
                f"(1.2 x the longest COPY of a cycle without a fault)"
            )
            kills: list[Kill] = []
            rounds = 0
            while sum(k.landed for k in kills) < args.kill_trials and rounds < 2 * args.kill_trials:
                rounds += 1
                kills += _round(ws, airflow, api, writers, args, window_s, rng, report)
    report.trials = sum(k.landed for k in kills)
    report.note(
        f"{len(kills)} kills in {rounds} cycles of {len(writers)} writers x {args.kill_rows} rows; "
        f"where they landed: {count_text(k.phase for k in kills)}"
    )
    report.note(f"before the retry: {count_text(k.before_retry for k in kills)}")
    report.passed = (
        report.has_only("recovered", "kill too late") and report.trials >= args.kill_trials and report.data_intact
    )


def _round(
    ws: Workspace,
    airflow: RunningAirflow,
    api: AirflowApi,
    writers: list[str],
    args: argparse.Namespace,
    window_s: float,
    rng: random.Random,
    report: FaultReport,
) -> list[Kill]:
    """One cycle: every writer killed at its own random moment, then the retry and the checks."""
    for stale in ws.folder.glob("signals/*.pid"):
        stale.unlink()
    kills = [Kill(model_id) for model_id in writers]
    delays = [rng.uniform(0, window_s) for _ in writers]
    run_id = api.trigger()
    watchers = [
        threading.Thread(
            target=_kill_during_copy, args=(ws, airflow, kill, ws.folder / "signals" / f"{kill.model_id}.pid", delay)
        )
        for kill, delay in zip(kills, delays)
    ]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        watcher.join()
    first = wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S)
    if first is None:
        raise RuntimeError(f"run {run_id} did not finish within {RUN_TIMEOUT_S} s after the kills")
    cycle = dag_run(ws, run_id).run_after
    for kill in kills:
        integrity.wait_session_gone(ws, kill.model_id)
    before = integrity.scan(ws)
    for kill in kills:
        kill.before_retry = integrity.state_of(before.find(cycle, kill.model_id, "PRIMARY"), args.kill_rows)
    if first.state == "failed":
        api.clear_failed(run_id)
    final = wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S)
    after = integrity.scan(ws)
    tasks = task_instances(ws, run_id)
    for kill in kills:
        _judge(kill, after, cycle, tasks.get(f"{kill.model_id}.primary"), final, run_id, args.kill_rows, report)
    print(
        f"[faults] {NAME}: {run_id}: " + ", ".join(f"{k.model_id} {k.phase} (+{k.delay_s:.2f} s)" for k in kills),
        flush=True,
    )
    return kills


def _judge(
    kill: Kill,
    after: integrity.Scan,
    cycle: datetime,
    task: TaskRecord | None,
    final: DagRunRecord | None,
    run_id: str,
    rows: int,
    report: FaultReport,
) -> None:
    """One trial's outcome, from the writer's result set after the retry and its task's record."""
    found = after.find(cycle, kill.model_id, "PRIMARY")
    lost = after.lost_rows(cycle, kill.model_id, "PRIMARY", rows)
    duplicated = sum(s.duplicated for s in found)
    half = sum(s.half_written for s in found) + kill.before_retry.startswith("partial")
    report.rows_lost += lost
    report.rows_duplicated += duplicated
    report.half_written += half
    # A kill after Airflow recorded the task's success (its process was still exiting) harms nothing.
    kill.landed = kill.killed_at is not None and not (
        task is not None and task.try_number == 1 and task.end_date is not None and task.end_date <= kill.killed_at
    )
    if not kill.landed:  # no process to kill, or nothing left to harm: its rows are still checked
        outcome = "not injected" if kill.phase == "not injected" else "kill too late"
        if outcome == "kill too late" and (lost or duplicated or half):
            outcome = "wrong"
    elif lost or duplicated or half or len(found) != 1:
        outcome = "wrong"
        report.note(
            f"{run_id} {kill.model_id}: killed {kill.phase}; before retry {kill.before_retry}; "
            f"after: {integrity.state_of(found, rows)}"
        )
    elif final is None or final.state != "success" or task is None or task.state != "success":
        outcome = "not recovered"
        report.note(
            f"{run_id} {kill.model_id}: run {final.state if final else 'still running'}, "
            f"task {task.state if task else 'missing'} after the retry"
        )
    else:
        outcome = "recovered"
        report.recover_s.append((task.end_date - kill.killed_at).total_seconds())
    report.outcomes[outcome] += 1
