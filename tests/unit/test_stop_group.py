"""Stopping ``make run`` (and the test harness's Airflow) leaves no task process behind.

Airflow's task supervisor starts each task process in a process group of its own, and a task
process answers SIGTERM by calling ``on_kill`` and carrying on. Stopping the process group of
``airflow standalone`` alone left such processes running, re-parented to init. Real processes,
no Airflow: a parent that starts one such child, as a supervisor does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil

from models_core.devstack import stop_group

# A supervisor: starts a task process in a session of its own that ignores SIGTERM, prints its
# id, then waits. It leaves its own group on SIGTERM at once, as `airflow standalone` does.
SUPERVISOR = textwrap.dedent(
    """
    import subprocess, sys, time
    task = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(600)"],
        start_new_session=True, stdout=subprocess.PIPE, text=True,
    )
    task.stdout.readline()  # the task ignores SIGTERM from here on
    print(task.pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int, timeout_s: float) -> bool:
    """Whether ``pid`` ends (or is only a zombie, dead but not reaped by init) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_stopping_the_group_ends_a_task_process_that_left_it_and_ignores_sigterm():
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    task_pid = int(supervisor.stdout.readline())
    task = psutil.Process(task_pid)
    try:
        assert task.pid != supervisor.pid and psutil.Process(task_pid).ppid() == supervisor.pid
        assert task.is_running()

        stop_group(supervisor.pid, [supervisor], timeout_s=5)

        assert supervisor.returncode is not None
        assert _gone(task_pid, timeout_s=5), f"task process {task_pid} outlived stop_group"
    finally:
        if task.is_running() and task.status() != psutil.STATUS_ZOMBIE:
            task.kill()
        supervisor.stdout.close()


def test_a_group_already_gone_is_not_an_error():
    finished = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    finished.wait()

    stop_group(finished.pid, [finished], timeout_s=1)

    assert finished.returncode == 0
