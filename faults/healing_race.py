"""Self-healing reviews racing people, locks and each other.

Setup: a workspace of its own. Each trial is a model of its own: 1.0.0 was its PRIMARY, then
2.0.0 (now), 3.0.0 a SHADOW; its policy rolls a failing PRIMARY back after 2 failed cycles,
and 2.0.0 has just failed two.

Injection (``faults.healing_race_worker``, in a process of its own): the review of the last
cycle and, at a random moment around it, one of: a person's forced promotion of 3.0.0, a
person's forced deactivation of 2.0.0, another change holding the model's lock for up to
0.3 s, a second review of the earlier cycle (``max_active_runs = 2``), or nothing. While
2.0.0 is still the ACTIVE PRIMARY afterwards, the next cycle fails and is reviewed (up to 3).

Check: 0 human changes undone (a committed promotion of 3.0.0 leaves 3.0.0 the PRIMARY; a
committed deactivation of 2.0.0 is never reversed), 0 double actions (one ERROR and one
restored PRIMARY at most), 0 models left without an ACTIVE PRIMARY silently (unless a person
deactivated it, an alert says so), no review that failed.
"""

from __future__ import annotations

import argparse
import json
import random

from faults.environment import PYTHON, Suite
from faults.report import FaultReport

NAME = "healing_race"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--race-trials", type=int, default=40, help=f"{NAME}: races run (default 40)")


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    with suite.workspace(NAME, models_package="faults.models.steady") as ws:
        done = ws.run(
            [
                PYTHON,
                "-m",
                "faults.healing_race_worker",
                "--trials",
                str(args.race_trials),
                "--seed",
                str(rng.getrandbits(32)),
            ],
            timeout=120 + 20 * args.race_trials,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    report.trials = sum(result["outcomes"].values())
    report.outcomes.update(result["outcomes"])
    violations = result["violations"]
    report.note(
        f"{len(violations)} violations: human changes undone, double actions, models left without a "
        "PRIMARY silently, reviews that failed"
    )
    for line in violations[:6]:
        report.note(line)
    report.passed = report.trials == args.race_trials and not violations
