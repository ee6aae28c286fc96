"""The docs' read-only commands, run as written: every ``bash`` block marked
``<!-- test: read-only -->`` runs against a demo registry (as `make run` seeds it), must end as
documented, print what its ``text`` block shows and change nothing in the registry
(docs/contributing.md, "Commands in the docs are tested")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from registry_helpers import ROOT

from docs_blocks import DocCommands, all_marked_commands, collapse
from models_core.registry.demo_registry import seed_demo_if_empty

COMMANDS = all_marked_commands()


def _environment() -> dict[str, str]:
    """The test session's Airflow home and registry, the example models, the venv first on PATH,
    never a login (so `modelreg` is in direct database mode) and a fixed width for --help."""
    env = dict(
        os.environ,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE="example_models",
        COLUMNS="80",
    )
    for name in ("AIRFLOW__MODEL_REGISTRY__API_TOKEN", "AIRFLOW__MODEL_REGISTRY__API_URL", "MAKEFLAGS", "MFLAGS"):
        env.pop(name, None)
    return env


def test_the_docs_mark_read_only_commands():
    pages = {command.page for command in COMMANDS}
    assert {"tutorial/first-run.md", "reference/modelreg.md", "how-to/airflow-cli.md"} <= pages, pages


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_documented_read_only_command_runs_as_shown(registry, command: DocCommands):
    seed_demo_if_empty(registry.conn)
    before = registry.snapshot()
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", command.script],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == command.exit_status, (
        f"{command}: exit {done.returncode}, documented {command.exit_status}\n{printed}"
    )
    lines = [collapse(line) for line in printed.splitlines()]
    missing = [shown for shown in command.output if not any(shown in line for line in lines)]
    assert not missing, f"{command}: documented output not printed: {missing}\nprinted:\n{printed}"
    assert registry.snapshot() == before, f"{command}: a command marked read-only changed the registry"
