"""A real Airflow (api-server, scheduler, dag-processor, and Celery workers if asked) for a ``with`` block.

The components share one process group, stopped at the end, on failure and on SIGTERM
alike, with every process they started (task processes too). Nothing is stopped by name.
A fault may kill one component with everything it started (a worker machine lost) and
start it again.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from models_core.devstack import stop_group

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RunningAirflow:
    """The started components (by name, in start order), the API port, and where they log."""

    port: int
    components: dict[str, subprocess.Popen]
    logs: Path
    commands: dict[str, list[str]]  # ``airflow`` arguments of each component
    env: dict[str, str]
    group: int  # the process group every component is in

    @property
    def processes(self) -> list[subprocess.Popen]:
        return list(self.components.values())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_alive(self) -> None:
        """Raise if a component exited: everything measured after that would be wrong."""
        for name, process in self.components.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}; see {self.logs / name}.log")

    def component_of(self, pid: int) -> str | None:
        """The component that started process ``pid`` (a task process, say), or None."""
        by_pid = {process.pid: name for name, process in self.components.items()}
        try:
            chain = [pid, *(parent.pid for parent in psutil.Process(pid).parents())]
        except psutil.Error:
            return None
        return next((by_pid[p] for p in chain if p in by_pid), None)

    def kill(self, name: str) -> list[int]:
        """SIGKILL component ``name`` and every process it started, at once, as when its machine dies.

        Task processes run in process groups of their own, so they are found by ancestry.
        Returns the ids killed; the component stays down until :meth:`restart`.
        """
        process = self.components[name]
        try:
            root = psutil.Process(process.pid)
            doomed = [root, *root.children(recursive=True)]
        except psutil.Error:
            doomed = []
        for victim in doomed:
            with suppress(psutil.Error):
                victim.kill()
        process.wait()
        return [victim.pid for victim in doomed]

    def restart(self, name: str) -> None:
        """Start component ``name`` again, with its command, environment and process group."""
        self.components[name] = _start(self.commands[name], self.env, self.logs / f"{name}.log", self.group)

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` was started by these components (a task process of ours, say).

        Airflow's task supervisor puts each task process in a process group of its own, so
        this follows the parent chain rather than the group.
        """
        ours = {process.pid for process in self.processes}
        try:
            return any(parent.pid in ours for parent in psutil.Process(pid).parents())
        except psutil.Error:
            return False


def ended(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` ends within ``timeout_s`` (a zombie counts: dead, not yet reaped by init)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _start(command: list[str], env: dict[str, str], log_path: Path, group: int) -> subprocess.Popen:
    """``airflow <command>`` logging to ``log_path`` (appended), in process group ``group`` (0: its own)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [AIRFLOW, *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=group,
        )


def _wait_healthy(running: RunningAirflow) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        running.check_alive()
        try:
            with urllib.request.urlopen(f"{running.base_url}/api/v2/monitor/health", timeout=2) as response:
                health = json.load(response)
            if all(
                health.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            ):
                return
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow was not healthy after {START_TIMEOUT_S} s; see the logs in {running.logs}")


@contextmanager
def running_airflow(
    env: dict[str, str], logs: Path, extra: dict[str, list[str]] | None = None
) -> Iterator[RunningAirflow]:
    """Start api-server, scheduler and dag-processor with ``env``, wait until they are healthy.

    ``extra`` adds components, name -> ``airflow`` arguments (Celery workers, say). The
    executor is ``env``'s ``AIRFLOW__CORE__EXECUTOR``, LocalExecutor when it names none; the
    API address is set here. Each component logs to ``logs/<name>.log`` (appended).
    """
    port = free_port()
    # A deployment has byte code for its modules; without it every task process would compile
    # models_core (and generated files) from source again.
    child_env = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        **{key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"},
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.environ.get("PATH", ""))]),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
    }
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        **(extra or {}),
    }
    components: dict[str, subprocess.Popen] = {}
    group = 0  # the first component's process group, which every other one joins
    try:
        for name, command in commands.items():
            components[name] = _start(command, child_env, logs / f"{name}.log", group)
            group = group or components[name].pid
        running = RunningAirflow(port, components, logs, commands, child_env, group)
        _wait_healthy(running)
        yield running
    finally:
        if components:
            stop_group(group, list(components.values()), STOP_TIMEOUT_S)
