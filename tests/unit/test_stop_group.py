"""Stopping ``make run`` (and the test harness's Airflow) leaves no task process behind.

Airflow's task supervisor starts each task process in a process group of its own, and a task
process answers SIGTERM by calling ``on_kill`` and carrying on. Stopping the process group of
``airflow standalone`` alone left such processes running, re-parented to init. Real processes,
no Airflow: a supervisor that starts such tasks, in the ways an attack review found to escape.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from harness.airflow_processes import ended
from models_core.devstack import hurry_on_signal, stop_group

# A task process: a session of its own, deaf to SIGTERM; with "spawn" it starts, on SIGTERM,
# a child in yet another session (as BashOperator's subprocess does), deaf to SIGTERM too.
TASK = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    def on_term(signum, frame):
        if "spawn" in sys.argv:
            child = subprocess.Popen(
                [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                 "time.sleep(600)"],
                start_new_session=True,
            )
            print(f"child {child.pid}", flush=True)
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    while True:
        time.sleep(600)
    """
)

# A supervisor: starts a task and prints its id. On SIGTERM it passes the signal on to its
# tasks' groups, as Airflow's does, then exits; with "linger" 3 s later, and with "slow" it
# starts one more task and carries on for 10 s (a LocalExecutor worker draining its queue).
SUPERVISOR = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    tasks = []
    def start_task():
        tasks.append(subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], start_new_session=True))
        return tasks[-1].pid
    def on_term(signum, frame):
        for task in tasks:
            os.killpg(task.pid, signal.SIGTERM)
        if "slow" in sys.argv:
            print(f"late {start_task()}", flush=True)
            time.sleep(10)
        elif "linger" in sys.argv:
            time.sleep(3)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    print(f"task {start_task()}", flush=True)
    while True:
        time.sleep(600)
    """
)


class Tree:
    """A supervisor in a process group of its own, and the ids of every process below it."""

    def __init__(self, *flags: str) -> None:
        self.supervisor = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, TASK, *flags], start_new_session=True, stdout=subprocess.PIPE, text=True
        )
        self.pids: list[int] = []
        self.ready = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_until(1)

    def _read(self) -> None:
        for line in self.supervisor.stdout:
            word, _, pid = line.strip().partition(" ")
            if word == "ready":
                self.ready += 1
            elif pid:
                self.pids.append(int(pid))

    def wait_until(self, started: int, timeout_s: float = 10) -> None:
        """Until ``started`` processes below the supervisor have printed their ids (and tasks are ready)."""
        deadline = time.monotonic() + timeout_s
        while len(self.pids) < started or self.ready < 1:
            assert time.monotonic() < deadline, f"only {self.pids} started"
            time.sleep(0.02)

    def survivors(self) -> list[int]:
        return [pid for pid in self.pids if not ended(pid, timeout_s=5)]

    def clean(self) -> None:
        for pid in self.pids:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        self.supervisor.stdout.close()


@pytest.fixture
def tree(request):
    trees: list[Tree] = []
    yield lambda *flags: trees.append(Tree(*flags)) or trees[-1]
    for made in trees:
        made.clean()


def test_a_task_process_that_left_the_group_and_ignores_sigterm_is_ended(tree):
    made = tree()
    task = psutil.Process(made.pids[0])
    assert task.ppid() == made.supervisor.pid and os.getpgid(task.pid) == task.pid

    stop_group(made.supervisor.pid, [made.supervisor], timeout_s=5)

    assert made.supervisor.returncode is not None
    assert not made.survivors()


def test_a_task_started_during_the_grace_and_a_child_a_task_starts_on_sigterm_are_ended(tree):
    made = tree("slow", "spawn")

    stop_group(made.supervisor.pid, [made.supervisor], timeout_s=5)

    made.wait_until(3)  # the task, its child (started on SIGTERM) and the late task
    assert not made.survivors()


def test_a_child_a_task_starts_after_its_supervisor_is_gone_is_ended(tree):
    made = tree("linger", "spawn")

    stop_group(made.supervisor.pid, [made.supervisor], timeout_s=10)

    made.wait_until(2)  # the task, re-parented to init, and its child
    assert not made.survivors()


def test_a_second_ctrl_c_during_the_stop_hurries_it_and_does_not_abandon_it(tree):
    made = tree("slow")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    hurry = threading.Event()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    try:
        hurry_on_signal(hurry)  # as `make run` does once the first Ctrl-C has come
        timer.start()
        started = time.monotonic()

        stop_group(made.supervisor.pid, [made.supervisor], timeout_s=30, hurry=hurry)  # no KeyboardInterrupt

        assert hurry.is_set()
        assert time.monotonic() - started < 10, "the second signal did not cut the 30 s grace short"
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    made.wait_until(2)
    assert not made.survivors()


def test_members_of_the_group_get_their_grace_when_its_leader_is_gone(tmp_path):
    # The leader dies at once on SIGTERM; a member of its group takes 1 s to stop, then says so.
    stopped = tmp_path / "stopped"
    member = (
        "import pathlib, signal, sys, time\n"
        "def on_term(signum, frame):\n"
        f"    time.sleep(1); pathlib.Path({str(stopped)!r}).write_text('cleanly'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, on_term); print('ready', flush=True); time.sleep(600)"
    )
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', {member!r}]); "
            "print(p.pid, flush=True); time.sleep(600)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = {leader.stdout.readline().strip(), leader.stdout.readline().strip()}  # its id, and "ready"
    member_process = psutil.Process(int((lines - {"ready"}).pop()))

    stop_group(leader.pid, [leader], timeout_s=10)

    assert ended(member_process.pid, timeout_s=5)
    assert stopped.exists(), "the member was killed, not given its grace"
    leader.stdout.close()


def test_a_group_already_gone_is_not_an_error():
    finished = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    finished.wait()

    stop_group(finished.pid, [finished], timeout_s=1)

    assert finished.returncode == 0


@pytest.mark.parametrize("group", [0, 1, os.getpgrp()])
def test_it_refuses_the_group_of_init_or_of_the_caller(group):
    with pytest.raises(ValueError, match=f"process group {group}"):
        stop_group(group, [], timeout_s=1)
