"""A Celery worker lost (SIGKILLed with everything it started) while a model task stores its result.

Setup: the distributed topology: CeleryExecutor on a Redis broker (``MODEL_REGISTRY_FAULTS_REDIS``,
default redis://127.0.0.1:6379, a database index and a queue of this run's own), two Celery
workers of one slot each, ``--loss-writers`` PRIMARY models (``writer_N`` of
``faults.models.steady``) each producing ``--loss-rows`` outputs whose COPY lasts about
``--loss-pace`` s, one triggered cycle per round. The product's ``retries = 1`` (a Celery
deployment's choice: Airflow re-queues only a task with a try left) and Airflow's
``task_instance_heartbeat_timeout`` at 30 s instead of 300 s, so a round takes a minute,
not six.

Injection: a first cycle runs without a fault, to time the writers' COPY. Then, in each
cycle, one writer drawn at random: once its COPY shows in ``pg_stat_activity``, a seeded
random delay in [0, 1.2 x the longest COPY timed], then the worker whose process tree holds
that writer's task process (found by ancestry from the pid the model wrote) is SIGKILLed with
every process it started (pool, task supervisor, task), as when its machine dies, and
started again, as its machine's supervisor would. What the writer's connection was doing at
that instant is recorded.

Recovery: nothing but Airflow and the product: the task instance stops heartbeating, the
scheduler finds it after the timeout, and it is re-queued as a retry; no clear.

Check (from the database and Airflow's metadata): right after the kill, once the killed
session is gone, the writer's result set is absent or complete, never partial; after the
retry, the run ends ``success`` with the killed task retried (try 2) and every writer's
result set complete exactly once. Time to recover: the kill to the retried task's end.

Without a broker (no Redis, or no Celery provider) the fault raises, so ``make faults``
reports it as ERROR with the reason: it never passes without having run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from harness.celery_broker import DEFAULT_REDIS_URL, CeleryBroker

NAME = "worker_loss"
REDIS_ENV = "MODEL_REGISTRY_FAULTS_REDIS"
WORKERS = ("worker_a", "worker_b")
WORKER_SLOTS = 1
HEARTBEAT_TIMEOUT_S = 30
COPY_WAIT_S = 120
#: The heartbeat timeout, its detection, the 30 s retry delay and the retry itself fit well inside.
RUN_TIMEOUT_S = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loss-trials", type=int, default=4, help=f"{NAME}: worker kills, at least (default 4)")
    parser.add_argument("--loss-writers", type=int, default=2, help=f"{NAME}: writers per cycle (1-4)")
    parser.add_argument("--loss-rows", type=int, default=20_000, help=f"{NAME}: outputs per writer")
    parser.add_argument("--loss-pace", type=float, default=1.5, help=f"{NAME}: seconds one COPY of them lasts")


@dataclass
class Loss:
    """One round: the writer aimed at, the worker killed, and what the database held before and after."""

    model_id: str
    worker: str | None = None
    delay_s: float = 0.0
    phase: str = "not injected"
    killed_at: datetime | None = None
    before_retry: str = "-"
    landed: bool = False  # killed while Airflow still had the task running: a trial


def _session(conn, model_id: str) -> tuple[str, str] | None:
    """(state, query) of the writer's framework connection, or None when it has none."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (f"model:{model_id}",),
        )
        return cur.fetchone()


def _copying(conn, model_id: str) -> bool:
    session = _session(conn, model_id)
    return session is not None and session[0] == "active" and session[1].lstrip().upper().startswith("COPY")


def _phase(conn, model_id: str) -> str:
    """What the writer's connection is doing now, in words."""
    session = _session(conn, model_id)
    if session is None:
        return "no session (after the write)"
    state, query = session
    if state == "active":
        return "mid-COPY" if query.lstrip().upper().startswith("COPY") else f"running {query.split()[0].upper()}"
    return "idle in transaction" if state.startswith("idle in") else "idle (after commit)"


def _wait_for_copy(ws: Workspace, model_id: str) -> float | None:
    """Seconds until the writer's COPY starts being seen, or None after COPY_WAIT_S."""
    conn = ws.registry()
    try:
        started = time.monotonic()
        while not _copying(conn, model_id):
            if time.monotonic() - started > COPY_WAIT_S:
                return None
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        conn.close()


def _copy_seconds(ws: Workspace, model_id: str) -> float:
    """How long the writer's next COPY lasts, as pg_stat_activity shows it."""
    if _wait_for_copy(ws, model_id) is None:
        raise RuntimeError(f"no COPY of {model_id} seen within {COPY_WAIT_S} s")
    conn = ws.registry()
    try:
        started = time.monotonic()
        while _copying(conn, model_id):
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        conn.close()


def _warm_up(ws: Workspace, airflow: RunningAirflow, api: AirflowApi, writer: str) -> float:
    """One cycle without a fault; how long ``writer``'s COPY lasted, in seconds (the writers are alike)."""
    run_id = api.trigger()
    seconds = _copy_seconds(ws, writer)
    run = wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S)
    if run is None or run.state != "success":
        raise RuntimeError(f"the cycle without a fault ended {run.state if run else 'unfinished'}")
    return seconds


def _lose_worker(ws: Workspace, airflow: RunningAirflow, loss: Loss, pid_file: Path) -> None:
    """Wait ``loss.delay_s`` into the writer's COPY, then kill the worker running it and start it again."""
    if _wait_for_copy(ws, loss.model_id) is None:
        return
    time.sleep(loss.delay_s)
    conn = ws.registry()
    try:
        pid = int(pid_file.read_text())
        worker = airflow.component_of(pid)
        if worker not in WORKERS:  # ended already (its pid may even be reused), or never a worker's
            loss.phase = "task process already ended: not killed"
            return
        loss.phase = _phase(conn, loss.model_id)
        killed = airflow.kill(worker)
        loss.killed_at = datetime.now(UTC)
        loss.worker = worker
        airflow.restart(worker)
        if pid not in killed:
            loss.phase = "task process ended as the worker was killed"
    finally:
        conn.close()


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    broker = CeleryBroker.for_run(os.environ.get(REDIS_ENV, DEFAULT_REDIS_URL), suite.suffix)
    reason = broker.unavailable_reason()
    if reason:
        raise RuntimeError(
            f"{NAME} needs a Celery broker and could not run: {reason} "
            f"(start Redis at {DEFAULT_REDIS_URL} or name one in {REDIS_ENV})"
        )
    writers = [f"writer_{n}" for n in range(1, max(1, min(4, args.loss_writers)) + 1)]
    with suite.workspace(NAME, models_package="faults.models.steady") as ws:
        ws.env.update(
            {
                **broker.settings(ws.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], WORKER_SLOTS),
                "AIRFLOW__MODEL_REGISTRY__RETRIES": "1",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            }
        )
        signals = ws.folder / "signals"
        signals.mkdir()
        params = {"rows": args.loss_rows, "pace_s": args.loss_pace, "signal_dir": str(signals)}
        for model_id in writers:
            ws.registry_rows(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
                " VALUES (%s, '1.0.0', 'ACTIVE', 'PRIMARY', %s)",
                (model_id, json.dumps(params)),
            )
        workers = {name: broker.worker_command(name, WORKER_SLOTS) for name in WORKERS}
        try:
            with running_airflow(ws.env, ws.folder / "airflow_logs", extra=workers) as airflow:
                api = AirflowApi(airflow.base_url)
                api.wait_for_dag(len(writers) + 1, timeout=180)
                api.unpause()
                window_s = 1.2 * _warm_up(ws, airflow, api, writers[0])
                report.note(
                    f"kill moments drawn from [0, {window_s:.2f} s] after the COPY starts "
                    f"(1.2 x the COPY of a cycle without a fault); {len(WORKERS)} workers of "
                    f"{WORKER_SLOTS} slot, broker {broker.url}, queue {broker.queue}"
                )
                losses: list[Loss] = []
                rounds = 0
                while sum(loss.landed for loss in losses) < args.loss_trials and rounds < 2 * args.loss_trials:
                    rounds += 1
                    losses.append(_round(ws, airflow, api, writers, args, window_s, rng, report))
        finally:
            problem = broker.clean()
            if problem:
                report.note(problem)
    report.trials = sum(loss.landed for loss in losses)
    report.note(
        f"{len(losses)} worker kills in {rounds} cycles of {len(writers)} writers x {args.loss_rows} rows; "
        f"where they landed: {count_text(loss.phase for loss in losses)}"
    )
    report.note(f"before the retry: {count_text(loss.before_retry for loss in losses)}")
    report.passed = (
        report.has_only("re-queued", "kill too late") and report.trials >= args.loss_trials and report.data_intact
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
) -> Loss:
    """One cycle: the worker running one writer killed mid-COPY, Airflow's re-queue, then the checks."""
    for stale in ws.folder.glob("signals/*.pid"):
        stale.unlink()
    loss = Loss(rng.choice(writers), delay_s=rng.uniform(0, window_s))
    run_id = api.trigger()
    cycle = dag_run(ws, run_id).run_after
    _lose_worker(ws, airflow, loss, ws.folder / "signals" / f"{loss.model_id}.pid")
    if loss.killed_at is not None:
        integrity.wait_session_gone(ws, loss.model_id)
        loss.before_retry = integrity.state_of(integrity.scan(ws).find(cycle, loss.model_id, "PRIMARY"), args.loss_rows)
    final = wait_run_finished(ws, airflow, run_id, RUN_TIMEOUT_S)
    if final is None:
        raise RuntimeError(f"run {run_id} did not finish within {RUN_TIMEOUT_S} s after the worker was lost")
    after = integrity.scan(ws)
    tasks = task_instances(ws, run_id)
    for model_id in writers:  # every writer's rows, the killed one's and its neighbour's
        found = after.find(cycle, model_id, "PRIMARY")
        report.rows_lost += after.lost_rows(cycle, model_id, "PRIMARY", args.loss_rows)
        report.rows_duplicated += sum(s.duplicated for s in found)
        report.half_written += sum(s.half_written for s in found) + (len(found) > 1)
    report.half_written += loss.before_retry.startswith("partial")
    _judge(loss, after, cycle, tasks.get(f"{loss.model_id}.primary"), final, run_id, args.loss_rows, report)
    print(
        f"[faults] {NAME}: {run_id}: {loss.model_id} on {loss.worker or '-'}: {loss.phase} "
        f"(+{loss.delay_s:.2f} s), before retry {loss.before_retry}",
        flush=True,
    )
    return loss


def _judge(
    loss: Loss,
    after: integrity.Scan,
    cycle: datetime,
    task: TaskRecord | None,
    final: DagRunRecord | None,
    run_id: str,
    rows: int,
    report: FaultReport,
) -> None:
    """The round's outcome, from the writer's result set after the retry and its task's record."""
    found = after.find(cycle, loss.model_id, "PRIMARY")
    intact = (
        len(found) == 1
        and integrity.state_of(found, rows) == "complete"
        and not loss.before_retry.startswith("partial")
    )
    # A kill after Airflow recorded the task's end (its process was still exiting) harms nothing.
    loss.landed = loss.killed_at is not None and not (
        task is not None and task.try_number == 1 and task.end_date is not None and task.end_date <= loss.killed_at
    )
    if not loss.landed:
        outcome = "not injected" if loss.phase == "not injected" else "kill too late"  # as kill_persist counts it
        if not intact:
            outcome = "wrong"
    elif not intact:
        outcome = "wrong"
        report.note(
            f"{run_id} {loss.model_id}: killed {loss.phase}; before retry {loss.before_retry}; "
            f"after: {integrity.state_of(found, rows)}"
        )
    elif final is None or final.state != "success" or task is None or task.state != "success" or task.try_number < 2:
        outcome = "not re-queued"
        report.note(
            f"{run_id} {loss.model_id}: run {final.state if final else 'still running'}, task "
            f"{task.state if task else 'missing'} at try {task.try_number if task else '-'}"
        )
    else:
        outcome = "re-queued"
        report.recover_s.append((task.end_date - loss.killed_at).total_seconds())
    report.outcomes[outcome] += 1
