"""``make run`` and ``make cycle``: the product on one machine with nothing configured.

Starts the embedded PostgreSQL (unless ``AIRFLOW_CONN_REGISTRY_DB`` points elsewhere),
prepares Airflow's metadata database and the registry, then either runs
``airflow standalone`` until Ctrl-C or runs one cycle with ``airflow dags test``.
Every process it starts is in one process group that it stops on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from models_core.store import embedded_postgres

if TYPE_CHECKING:
    from models_core.settings import Settings

PROJECT = Path(__file__).resolve().parents[2]


def _airflow_home() -> Path:
    return Path(os.environ["AIRFLOW_HOME"])


def _settings() -> Settings:
    """``[model_registry]`` as the Airflow processes started from here will read it."""
    from models_core.settings import load_settings  # imports Airflow, which reads AIRFLOW_HOME

    return load_settings()


def _api_url() -> str:
    """Where the API server listens: Airflow's own ``[api] base_url``, or 127.0.0.1 and ``[api] port``."""
    from models_core.settings import airflow_api_url

    return airflow_api_url()


def local_environment() -> tuple[dict[str, str], object | None]:
    """Environment for Airflow and modelreg; starts the embedded server when needed."""
    env = dict(os.environ)
    home = _airflow_home()
    env["AIRFLOW_HOME"] = str(home)
    # `airflow standalone` starts its components as `airflow ...`: the venv's bin must be first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
    # Without [api] base_url, Airflow sends tasks to the Execution API on port 8080 whatever
    # [api] port says; point them at the port the API server is started on.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{_api_url()}/execution/")
    server = None
    needs_registry = "AIRFLOW_CONN_REGISTRY_DB" not in env
    needs_metadata = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
    if needs_registry or needs_metadata:
        pgdata = _settings().embedded_pgdata
        server = embedded_postgres.start(pgdata, stop_at_exit=True)
        sockets = embedded_postgres.socket_dir(server)
        print(f"embedded PostgreSQL running (data in {pgdata}, socket in {sockets})")
        if needs_registry:
            embedded_postgres.ensure_database(server, embedded_postgres.REGISTRY_DATABASE)
            env["AIRFLOW_CONN_REGISTRY_DB"] = json.dumps(
                {
                    "conn_type": "postgres",
                    "host": sockets,
                    "login": "postgres",
                    "schema": embedded_postgres.REGISTRY_DATABASE,
                    "extra": {"connect_timeout": 3},
                }
            )
        if needs_metadata:
            embedded_postgres.ensure_database(server, embedded_postgres.AIRFLOW_DATABASE)
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
                f"postgresql+psycopg2://postgres@/{embedded_postgres.AIRFLOW_DATABASE}?host={sockets}"
            )
    return env, server


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _prepare(env: dict[str, str]) -> None:
    """Airflow metadata, then the registry schema with the demo models and the shadow pool."""
    subprocess.run([_bin("airflow"), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "models_core", "migrate", "--seed-demo"], env=env, check=True)


def _wait_healthy(process: subprocess.Popen, timeout_s: float = 180) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _exited(process):
        try:
            with urllib.request.urlopen(f"{_api_url()}/api/v2/monitor/health", timeout=2) as response:
                health = json.load(response)
            if all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler")):
                return True
        except (OSError, ValueError):
            pass
        time.sleep(1)
    return False


def _exited(process: subprocess.Popen) -> bool:
    """Whether ``process`` has exited, without reaping it.

    Until it is reaped, its id (and its process group's) cannot be given to another process,
    so what :func:`stop_group` signals by those ids is still ours.
    """
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _in_group(group: int) -> list[psutil.Process]:
    """The processes of process group ``group`` that have not ended (zombies left out)."""
    members = []
    for candidate in psutil.process_iter(["status"]):
        with suppress(psutil.Error, OSError):
            if candidate.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(candidate.pid) == group:
                members.append(candidate)
    return members


def _tree(group: int, processes: list[subprocess.Popen]) -> list[psutil.Process]:
    """The members of process group ``group``, the running ``processes`` and all their descendants."""
    roots = _in_group(group)
    for process in processes:
        if process.returncode is None:  # once waited for, its id may be another process's
            with suppress(psutil.Error):
                roots.append(psutil.Process(process.pid))
    found: dict[int, psutil.Process] = {}
    for root in roots:
        with suppress(psutil.Error):
            for member in [root, *root.children(recursive=True)]:
                found.setdefault(member.pid, member)
    return list(found.values())


def _kill_with_its_own(leftover: psutil.Process) -> None:
    """SIGKILL a process still running, its process group if it leads one, and its descendants."""
    try:
        if not leftover.is_running():  # psutil compares start times: a reused id is not ours
            return
        children = leftover.children(recursive=True)
    except psutil.Error:
        return
    with suppress(OSError):  # gone, or another user's (a task run as one)
        if os.getpgid(leftover.pid) == leftover.pid:  # a task process: children of its own in its group
            os.killpg(leftover.pid, signal.SIGKILL)
    for victim in (leftover, *children):
        with suppress(psutil.Error):
            victim.kill()


def _signal_group(group: int, sig: signal.Signals) -> None:
    with suppress(OSError):  # gone, or a member another user's
        os.killpg(group, sig)


def stop_group(
    group: int, processes: list[subprocess.Popen], timeout_s: float = 30, hurry: threading.Event | None = None
) -> None:
    """SIGTERM process group ``group`` and ``processes``, SIGKILL them after ``timeout_s`` (at once
    when ``hurry`` is set), then every process found below them that is still running.

    Airflow's task supervisor puts each task process in a process group of its own, and a task
    process answers SIGTERM by calling ``on_kill`` and carrying on: once its supervisor is gone
    it runs on, re-parented to init. So what runs below the group is looked for by ancestry
    before anything is signalled and again, the group stopped (SIGSTOP: it starts nothing more),
    before the SIGKILL, and killed by id, with the group and the children of each, if it
    outlives the group. ``processes`` should not have been reaped (see :func:`_exited`).
    """
    if group <= 1 or group == os.getpgrp():
        raise ValueError(f"refusing to stop process group {group}: it is init's or this process's own")
    found = {member.pid: member for member in _tree(group, processes)}
    _signal_group(group, signal.SIGTERM)
    for process in processes:
        with suppress(OSError):
            process.terminate()  # one that left the group too; nothing once it has been waited for
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (hurry and hurry.is_set()):
        if all(_exited(process) for process in processes) and not _in_group(group):
            break
        time.sleep(0.1)
    _signal_group(group, signal.SIGSTOP)
    for member in _tree(group, processes):
        found.setdefault(member.pid, member)
    _signal_group(group, signal.SIGKILL)
    for process in processes:
        with suppress(OSError):
            process.kill()
        process.wait()
    for leftover in found.values():
        _kill_with_its_own(leftover)


def hurry_on_signal(hurry: threading.Event) -> None:
    """From here on SIGINT and SIGTERM set ``hurry`` ("stop now") instead of raising.

    A second Ctrl-C while stopping is what an impatient user sends; raising from the handler
    there would abandon the stop and leave the task processes running.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: hurry.set())


def run() -> int:
    """Start Airflow with the project's DAGs on ``[api] port`` (8080 by default) until Ctrl-C."""
    env, _server = local_environment()
    _prepare(env)
    hurry = threading.Event()

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        hurry_on_signal(hurry)  # before raising: the next signal must not interrupt the stop
        raise KeyboardInterrupt

    # Set both explicitly: a shell that starts us in the background may have SIGINT ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    process: subprocess.Popen | None = None
    code: int | None = None  # None: Airflow's own exit code
    try:
        process = subprocess.Popen(
            [_bin("airflow"), "standalone"],
            env=env,
            start_new_session=True,
            stdout=open(_airflow_home() / "standalone.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        print(f"starting Airflow (log: {_airflow_home() / 'standalone.log'}) ...", flush=True)
        if not _wait_healthy(process):
            print(f"Airflow did not become healthy; see {_airflow_home() / 'standalone.log'}", file=sys.stderr)
            code = 1
        else:
            passwords = _airflow_home() / "simple_auth_manager_passwords.json.generated"
            login = json.loads(passwords.read_text()) if passwords.exists() else {}
            print(f"\nAirflow is up: {_api_url()}")
            for user, password in login.items():
                print(f"  login: {user} / {password}")
            print("  DAGs: detection_models (every 5 minutes). Ctrl-C stops everything.\n", flush=True)
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # until it exits, not reaped: see _exited
    except KeyboardInterrupt:
        print("\nstopping Airflow ...", flush=True)
        code = 0
    finally:
        hurry_on_signal(hurry)
        if process is not None:
            stop_group(process.pid, [process], hurry=hurry)
    if code is not None or process is None:
        return code or 0
    return process.returncode  # Airflow exited by itself


def _dags_test(env: dict[str, str], dag_id: str, moment: str) -> int:
    """``airflow dags test`` with its log in AIRFLOW_HOME; returns the exit code."""
    log_path = _airflow_home() / f"{dag_id}.test.log"
    print(f"airflow dags test {dag_id} {moment} ...", flush=True)
    with open(log_path, "w") as log_file:
        test = subprocess.run(
            [_bin("airflow"), "dags", "test", dag_id, moment], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    print(f"  exited {test.returncode} (log: {log_path})")
    return test.returncode


def cycle() -> int:
    """Run one cycle through ``airflow dags test`` and show the rows and alerts it stored."""
    env, _server = local_environment()
    _prepare(env)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    moment = now.replace(minute=now.minute - now.minute % 5).isoformat()
    failed = _dags_test(env, "detection_models", moment)
    rows = subprocess.run([sys.executable, "-m", "models_core", "rows", "--cycle", moment], env=env)
    alerts = subprocess.run([sys.executable, "-m", "models_core", "alerts", "--cycle", moment], env=env)
    return failed or rows.returncode or alerts.returncode


def maintenance() -> int:
    """Run partition maintenance and a (diagnostic) snapshot through ``airflow dags test``."""
    env, _server = local_environment()
    _prepare(env)
    moment = datetime.now(UTC).replace(microsecond=0).isoformat()
    failed = _dags_test(env, "detection_model_partitions", moment)
    failed = _dags_test(env, "detection_model_snapshots", moment) or failed
    reports = sorted(_settings().reports_dir.glob("snapshot_*.md"), key=lambda path: path.stat().st_mtime)
    if reports:
        print(f"\nlatest snapshot report: {reports[-1]}\n")
        print(reports[-1].read_text())
    return failed


def main() -> int:
    os.environ.setdefault("AIRFLOW_HOME", str(PROJECT / ".airflow"))
    parser = argparse.ArgumentParser(prog="python -m models_core.devstack")
    parser.add_argument("command", choices=["run", "cycle", "maintenance"])
    command = parser.parse_args().command
    return {"run": run, "cycle": cycle, "maintenance": maintenance}[command]()


if __name__ == "__main__":
    raise SystemExit(main())
