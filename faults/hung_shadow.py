"""A SHADOW that hangs, every cycle, while the cycles run on their schedule.

Setup: ``detection_models`` on a one-minute schedule (``* * * * *``), run by a real scheduler
(LocalExecutor), with every other setting at its default (task timeout, ``max_active_runs``,
the shadow pool ``modelreg migrate`` creates). Models: ``beat`` (PRIMARY, quick), a SHADOW of
``beat`` that sleeps an hour, far past any timeout, and ``echo`` (PRIMARY, depends on ``beat``).

Injection: the hung SHADOW is in every cycle; the DAG is unpaused and left to run.

Check, from Airflow's metadata: for each of the ``--shadow-cycles`` cycles scheduled after
the unpause (the first run, catching up the interval before it, is not counted), ``beat``'s
PRIMARY task starts within ``--shadow-tolerance`` seconds of the cycle's scheduled time
(``dag_run.run_after``) and ``echo``'s PRIMARY succeeds; the hung SHADOWs end, failed, by
their timeout. The time column shows the PRIMARY start delays.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from faults.airflow_api import AirflowApi
from faults.airflow_metadata import dag_runs, task_instances
from faults.environment import Suite
from faults.report import FaultReport
from harness.airflow_processes import running_airflow

NAME = "hung_shadow"
PRIMARY_TASK = "beat.primary"
DOWNSTREAM_TASK = "echo.primary"
SHADOW_TASK = "beat.shadow_1_1_0"
HANG_S = 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shadow-cycles", type=int, default=3, help=f"{NAME}: scheduled one-minute cycles measured (default 3)"
    )
    parser.add_argument(
        "--shadow-tolerance",
        type=float,
        default=20.0,
        help=f"{NAME}: seconds a PRIMARY may start after its cycle's scheduled time (default 20)",
    )


def _next_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:  # noqa: ARG001
    with suite.workspace(
        NAME, models_package="faults.models.steady", settings={"AIRFLOW__MODEL_REGISTRY__SCHEDULE": "* * * * *"}
    ) as ws:
        for model_id, version, role, params in (
            ("beat", "1.0.0", "PRIMARY", "{}"),
            ("beat", "1.1.0", "SHADOW", f'{{"sleep_s": {HANG_S}}}'),
            ("echo", "1.0.0", "PRIMARY", "{}"),
        ):
            ws.registry_rows(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
                " VALUES (%s, %s, 'ACTIVE', %s, %s)",
                (model_id, version, role, params),
            )
        with running_airflow(ws.env, ws.folder / "airflow_logs") as airflow:
            api = AirflowApi(airflow.base_url)
            api.wait_for_dag(4, timeout=180)
            api.unpause()
            unpaused = datetime.now(UTC)
            scheduled = [_next_minute(unpaused) + timedelta(minutes=n) for n in range(args.shadow_cycles)]
            deadline = scheduled[-1] + timedelta(seconds=args.shadow_tolerance + 15)
            print(
                f"[faults] {NAME}: unpaused at {unpaused:%H:%M:%S}; measuring the cycles of "
                f"{', '.join(f'{s:%H:%M}' for s in scheduled)} until {deadline:%H:%M:%S}",
                flush=True,
            )
            while datetime.now(UTC) < deadline:
                airflow.check_alive()
                if _all_started(ws, scheduled):
                    break
                time.sleep(2)
            _judge(ws, scheduled, args.shadow_tolerance, report)


def _all_started(ws, scheduled: list[datetime]) -> bool:
    runs = {run.run_after: run for run in dag_runs(ws)}
    return all(
        when in runs
        and task_instances(ws, runs[when].run_id).get(DOWNSTREAM_TASK, None) is not None
        and task_instances(ws, runs[when].run_id)[DOWNSTREAM_TASK].state == "success"
        for when in scheduled
    )


def _judge(ws, scheduled: list[datetime], tolerance: float, report: FaultReport) -> None:
    runs = {run.run_after: run for run in dag_runs(ws)}
    shadows = []
    for when in scheduled:
        run = runs.get(when)
        tasks = task_instances(ws, run.run_id) if run else {}
        primary, downstream = tasks.get(PRIMARY_TASK), tasks.get(DOWNSTREAM_TASK)
        report.trials += 1
        if run is None or primary is None or primary.start_date is None:
            report.outcomes["PRIMARY not started"] += 1
            report.note(
                f"cycle {when:%H:%M}: {'no run' if run is None else 'run ' + run.state}; "
                f"{PRIMARY_TASK} had not started {tolerance:.0f}+ s after its scheduled time"
            )
            continue
        delay = (primary.start_date - when).total_seconds()
        report.recover_s.append(delay)
        if delay > tolerance:
            report.outcomes["PRIMARY late"] += 1
            report.note(f"cycle {when:%H:%M}: {PRIMARY_TASK} started {delay:.1f} s after its scheduled time")
        elif downstream is None or downstream.state != "success":
            report.outcomes["PRIMARY chain unfinished"] += 1
            report.note(f"cycle {when:%H:%M}: {DOWNSTREAM_TASK} is {downstream.state if downstream else 'missing'}")
        else:
            report.outcomes["on schedule"] += 1
    for run in dag_runs(ws):
        shadow = task_instances(ws, run.run_id).get(SHADOW_TASK)
        if shadow is not None and shadow.start_date is not None:
            ran = ((shadow.end_date or datetime.now(UTC)) - shadow.start_date).total_seconds()
            shadows.append(f"{run.run_after:%H:%M} {shadow.state} after {ran:.0f} s")
    report.note(
        f"PRIMARY start delays (s): {', '.join(f'{d:.1f}' for d in report.recover_s) or 'none'}; "
        f"the hung SHADOW per cycle: {'; '.join(shadows) or 'never started'}"
    )
    if any("success" in s for s in shadows):
        raise RuntimeError(f"the SHADOW that should hang succeeded: {shadows}")
    report.passed = report.outcomes["on schedule"] == report.trials
