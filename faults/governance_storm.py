"""The governance storm: the registry's lifecycle state machine, many random examples long.

Setup: a workspace of its own (fresh registry database, migrated).

Injection: ``python -m harness.governance_machine`` (the Hypothesis state machine the tests
run with a small budget) runs ``--governance-examples`` random examples of up to
``--governance-steps`` steps each: people (one may govern, three may request and approve),
a service account in direct database mode and the self-healing review register, activate,
deactivate, archive, promote (forced or not), reactivate, roll back, switch approvals and
their approvers, approve, reject, set gates, run and re-run cycles that succeed or fail, and
review them, on two models (one under approval from the start).

Check, after every step of every example: one ACTIVE PRIMARY per model; every entry into
PRIMARY on a basis that holds (its gates with no approval required; an approved request
with enough distinct approvers, none the requester; a restore of an earlier PRIMARY; a
permitted actor's reasoned force); ``primary_at(t)`` equal to what was seen after each step;
one audit row per changed version, by the step's actor. Trials are examples; outcomes count
the entries into PRIMARY by basis, and the steps accepted and refused.
"""

from __future__ import annotations

import argparse
import json
import random

from faults.environment import PYTHON, Suite
from faults.report import FaultReport

NAME = "governance_storm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--governance-examples",
        type=int,
        default=300,
        help=f"{NAME}: random examples of the lifecycle state machine (default 300)",
    )
    parser.add_argument(
        "--governance-steps", type=int, default=50, help=f"{NAME}: steps per example at most (default 50)"
    )


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:  # noqa: ARG001
    with suite.workspace(NAME, models_package="faults.models.steady") as ws:
        done = ws.run(
            [
                PYTHON,
                "-m",
                "harness.governance_machine",
                "--examples",
                str(args.governance_examples),
                "--steps",
                str(args.governance_steps),
            ],
            check=False,
            timeout=60 + 2.0 * args.governance_examples * args.governance_steps,
        )
    if not done.stdout.strip():
        raise RuntimeError(f"the state machine printed nothing (exit {done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    report.trials = result["examples"]
    report.outcomes.update({f"into PRIMARY {basis}": n for basis, n in result["entries_into_primary"].items()})
    report.note(
        f"{result['steps']} steps: {result['accepted']} accepted, {result['refused']} refused"
        + (f" in {result['seconds']:.0f} s" if "seconds" in result else "")
    )
    report.note("refused most often: " + "; ".join(f"{why} ({n})" for why, n in list(result["refusals"].items())[:3]))
    if not result["passed"]:
        report.note(f"VIOLATION: {result['violation']}")
        report.note(f"the falsifying steps are in the machine's output: {done.stderr.strip()[-1500:]}")
    report.passed = result["passed"] and done.returncode == 0 and result["examples"] > 0
