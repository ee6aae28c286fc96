"""`make run` as a new user runs it: nothing configured, on the port Airflow's own config names.

The test gives `make run` a fresh AIRFLOW_HOME and none of the test session's Airflow settings,
so it starts its own embedded PostgreSQL with the demo registry, and `AIRFLOW__API__PORT` set to
a free port: the UI and API must answer there, the printed URL must be that one, and a
triggered cycle must succeed (its tasks reach the Execution API on that port, not on 8080).
Ctrl-C (SIGINT to the process group, as a terminal sends it) in the middle of a second cycle must
stop everything, the task processes too (Airflow runs each in a process group of its own).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from deployment.distributed_stack import free_port
from harness.airflow_processes import ended

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


class _Output:
    """The lines a process prints, collected on a thread so the test can wait for one."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, process: subprocess.Popen, timeout_s: float) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if process.poll() is not None:
                break
            time.sleep(0.5)
        pytest.fail(f"`make run` never printed {pattern!r}; it printed:\n" + "\n".join(self.lines[-40:]))


def _fresh_user_environment(home: Path, port: int) -> dict[str, str]:
    """The caller's environment without any Airflow or registry setting, as on a new laptop."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "MODEL_REGISTRY", "PYTHONPATH"))
    }
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__API__PORT": str(port)})
    return env


def _wait_for_run(client: httpx.Client, dag_id: str, run_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = "none"
    while time.monotonic() < deadline:
        state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    return f"still {state} after {timeout_s:g} s"


def test_make_run_serves_on_airflows_own_port_and_its_cycle_runs_there(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=_fresh_user_environment(tmp_path / "airflow", port),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = _Output(process)
    try:
        output.wait_for(rf"Airflow is up: http://127\.0\.0\.1:{port}\b", process, timeout_s=240)
        user, password = output.wait_for(r"login: (\S+) / (\S+)", process, timeout_s=10).groups()
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=10).json()[
            "access_token"
        ]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            deadline = time.monotonic() + 120
            while client.get("/api/v2/dags/detection_models").status_code != 200:
                assert time.monotonic() < deadline, "detection_models was never parsed"
                time.sleep(2)
            run = client.post("/api/v2/dags/detection_models/dagRuns", json={"logical_date": None})
            assert run.status_code == 200, run.text
            state = _wait_for_run(client, "detection_models", run.json()["dag_run_id"], timeout_s=240)
            tasks = client.get(f"/api/v2/dags/detection_models/dagRuns/{run.json()['dag_run_id']}/taskInstances")
            assert state == "success", json.dumps(
                {ti["task_id"]: ti["state"] for ti in tasks.json()["task_instances"]}, indent=1
            )
            # Ctrl-C in the middle of a cycle: its task processes run in process groups of their own.
            second = client.post("/api/v2/dags/detection_models/dagRuns", json={"logical_date": None}).json()
            started = _processes_while_a_task_runs(client, process, second["dag_run_id"], timeout_s=120)
            # Frozen, they stand for tasks that do not end on SIGTERM (a task process calls on_kill
            # and carries on): only a SIGKILL, from their supervisor or from `make run`, ends them.
            for pid in _task_processes(started, process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Everything `make run` started is gone with it: its own process group, which it stops, and
    # the task processes that were running, each in a group of its own.
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    assert _task_processes(started, process.pid), f"no task process was running at Ctrl-C: {started}"
    left = {pid: line for pid, line in started.items() if not ended(pid, timeout_s=10)}
    assert not left, f"still running after `make run` stopped: {left}"
    # Nor anything started after that look: no process left with this AIRFLOW_HOME.
    home = str(tmp_path / "airflow")
    strays = [pid for pid in _processes_with_airflow_home(home) if not ended(pid, timeout_s=10)]
    assert not strays, f"still running with AIRFLOW_HOME={home}: {strays}"


def _processes_while_a_task_runs(
    client: httpx.Client, make: subprocess.Popen, run_id: str, timeout_s: float
) -> dict[int, tuple[int, str]]:
    """Every process under ``make`` (id -> process group, command line) once a task of ``run_id`` runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tasks = client.get(f"/api/v2/dags/detection_models/dagRuns/{run_id}/taskInstances").json()
        if any(ti["state"] == "running" for ti in tasks["task_instances"]):
            started = {}
            for child in psutil.Process(make.pid).children(recursive=True):
                with suppress(psutil.Error, ProcessLookupError):
                    started[child.pid] = (os.getpgid(child.pid), " ".join(child.cmdline()))
            return started
        time.sleep(0.25)
    pytest.fail(f"no task of {run_id} was running within {timeout_s:g} s")


def _processes_with_airflow_home(home: str) -> list[int]:
    found = []
    for candidate in psutil.process_iter():
        with suppress(psutil.Error):
            if candidate.environ().get("AIRFLOW_HOME") == home:
                found.append(candidate.pid)
    return found


def _task_processes(started: dict[int, tuple[int, str]], make_group: int) -> list[int]:
    """The processes in a group of their own below ``airflow standalone``'s: Airflow's task processes."""
    standalone = next(pid for pid, (_, line) in started.items() if line.endswith("airflow standalone"))
    return [pid for pid, (group, _) in started.items() if group not in (make_group, standalone)]
