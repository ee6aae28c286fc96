"""A real Airflow for the benchmarks: api-server, scheduler, dag-processor and, for the
CeleryExecutor, Celery workers, all in one process group stopped at the end, on failure
and on SIGTERM alike (started by :mod:`harness.airflow_processes`, which ``make faults``
shares); plus triggering a DAG run and timing it from its DAG run record.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from bench.environment import BenchEnv
from harness.airflow_processes import running_airflow

START_TIMEOUT_S = 300
RUN_TIMEOUT_S = 1800
REDIS_ENV = "MODEL_REGISTRY_BENCH_REDIS"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


@dataclass(frozen=True)
class Executor:
    """How tasks run: ``LocalExecutor``, or ``CeleryExecutor`` with ``workers`` workers of ``concurrency`` slots."""

    name: str
    workers: int = 0
    concurrency: int = 0

    @property
    def label(self) -> str:
        if not self.workers:
            return self.name
        return f"{self.name}, {self.workers} workers x {self.concurrency}"


LOCAL = Executor("LocalExecutor")


def celery(workers: int = 2, concurrency: int = 4) -> Executor:
    return Executor("CeleryExecutor", workers, concurrency)


def celery_unavailable() -> str | None:
    """Why a Celery run cannot happen here (no Redis broker), or None."""
    import redis

    try:
        redis.Redis.from_url(os.environ.get(REDIS_ENV, DEFAULT_REDIS), socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"no Redis broker at {os.environ.get(REDIS_ENV, DEFAULT_REDIS)} ({exc}); set {REDIS_ENV}"
    return None


@dataclass
class Stack:
    """The running processes; ``cpu_seconds`` sums the CPU time of all of them and their children."""

    processes: list[subprocess.Popen]

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process of the stack and of every child they reaped."""
        total = 0.0
        for process in self.processes:
            with suppress(psutil.Error):
                root = psutil.Process(process.pid)
                for proc in [root, *root.children(recursive=True)]:
                    with suppress(psutil.Error):
                        times = proc.cpu_times()
                        total += times.user + times.system + times.children_user + times.children_system
        return total


def _celery_env(env: BenchEnv) -> dict[str, str]:
    """A Redis database index and a queue of this run's own, so concurrent runs never share tasks."""
    suffix = uuid.uuid4().hex[:8]
    broker = f"{os.environ.get(REDIS_ENV, DEFAULT_REDIS).rstrip('/')}/{1 + int(suffix, 16) % 15}"
    metadata = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    return {
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"bench_{suffix}",
    }


@contextmanager
def airflow_components(
    env: BenchEnv, executor: Executor = LOCAL, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """The Airflow processes for the ``with`` block, in one process group (:mod:`harness.airflow_processes`)."""
    child_env = {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": executor.name,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **(extra_env or {}),
    }
    workers: dict[str, list[str]] = {}
    if executor.workers:
        child_env.update(_celery_env(env))
        queue = child_env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
        workers = {
            f"celery-worker-{n}": [
                "celery",
                "worker",
                "--celery-hostname",
                f"bench-{n}-{queue}@%h",
                "--concurrency",
                str(executor.concurrency),
                "--queues",
                queue,
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
            for n in range(1, executor.workers + 1)
        }
    with running_airflow(child_env, env.tmp / "airflow_logs", workers) as running:
        yield Stack(running.processes)


def wait_parsed(task_counts: dict[str, int], timeout_s: float = START_TIMEOUT_S) -> None:
    """Until the dag-processor has stored each DAG with that many tasks; then unpause them."""
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    deadline = time.monotonic() + timeout_s
    while True:
        with create_session() as session:
            stored = {dag_id: SerializedDagModel.get_dag(dag_id, session=session) for dag_id in task_counts}
            if all(dag is not None and len(dag.task_dict) == task_counts[dag_id] for dag_id, dag in stored.items()):
                session.execute(update(DagModel).where(DagModel.dag_id.in_(list(task_counts))).values(is_paused=False))
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dag-processor did not store {task_counts} within {timeout_s:.0f} s")
        time.sleep(1)


def run_seconds(
    dag_id: str, run_ids: list[str], logical_date: datetime | None = None, conf: dict[str, Any] | None = None
) -> float:
    """Trigger one run (at ``logical_date``, else now; with ``conf``), wait for it to end, return its start -> end."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    now = datetime.now(UTC)
    run_id = f"bench__{now:%Y%m%dT%H%M%S%f}"
    trigger_dag(
        dag_id,
        triggered_by=DagRunTriggeredByType.CLI,
        run_id=run_id,
        logical_date=logical_date or now,
        replace_microseconds=False,
        conf=conf,
    )
    run_ids.append(run_id)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with create_session() as session:
            state, start, end = session.execute(
                select(DagRun.state, DagRun.start_date, DagRun.end_date).where(
                    DagRun.dag_id == dag_id, DagRun.run_id == run_id
                )
            ).one()
        if state == "success" and start and end:
            return (end - start).total_seconds()
        if state == "failed":
            raise RuntimeError(f"{dag_id} run {run_id} failed; see the task logs")
    raise RuntimeError(f"{dag_id} run {run_id} did not finish within {RUN_TIMEOUT_S} s")


def median_task_seconds(dag_id: str, run_ids: list[str], task_id: str | None = None) -> float:
    """Median start -> end of the task instances of these runs (of ``task_id`` only, if given):
    where a cycle's extra time goes."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        spans = session.execute(
            select(TaskInstance.start_date, TaskInstance.end_date).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id.in_(run_ids),
                *([TaskInstance.task_id == task_id] if task_id else []),
            )
        ).all()
    if not spans:
        raise RuntimeError(f"no task instance {task_id or ''} in the runs {run_ids} of {dag_id}")
    return statistics.median((end - start).total_seconds() for start, end in spans)
