"""Lifecycle storms: several processes changing the registry at random, all at once.

Setup: five models (``storm_a`` .. ``storm_e``), each with a PRIMARY, a SHADOW, a DRAFT and an
INACTIVE version, and a dependency chain, inserted with plain SQL. Before anything else, the
fault installs its own capture triggers (``audit_capture.sql``, in a schema of its own) that
record every row change of the versions, dependencies and gates tables, and every audit row,
with the id of the transaction that made it, whatever the session sets.

Injection: for ``--storm-seconds``, ``--storm-api`` processes drive the product's lifecycle
API, ``--storm-cli`` processes the ``modelreg`` CLI and ``--storm-sql`` processes plain SQL
(some disguised as the API, some flipping the audit switch of old), each at random
(:mod:`faults.storm_worker`). Meanwhile a sampler, in a session of its own, reads the
registry in one snapshot every 50 ms.

Check:
- in every snapshot, at most one ACTIVE PRIMARY per model and no dependency cycle (the
  models declare no depends_on in code, so the registry's edges are the whole graph);
- every change of state (a row inserted or deleted, or updated in any column but its
  timestamps) has exactly one audit row in ``detection_model_transitions`` written by the
  same transaction for the same version, dependency or model's gates, with the new status
  and role for a version; no audit row is written for something that did not change;
- every process ran to the end; a refusal is an answer (the CLI's: one line, exit 1), any
  other error is not.
Trials are the changes of state committed; outcomes say how each was audited.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg2

from faults.environment import Suite, Workspace
from faults.report import FaultReport
from models_core.plan import find_cycles

NAME = "lifecycle_storm"
MODELS = ["storm_a", "storm_b", "storm_c", "storm_d", "storm_e"]
SAMPLE_S = 0.05
#: Columns that are bookkeeping, not state: changing only these is not a change.
_TIMESTAMPS = {"updated_at", "created_at"}
_SEED_VERSIONS = [
    ("1.0.0", "ACTIVE", "PRIMARY"),
    ("1.1.0", "ACTIVE", "SHADOW"),
    ("1.2.0", "DRAFT", "SHADOW"),
    ("2.0.0", "INACTIVE", "CHALLENGER"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storm-seconds", type=float, default=60, help=f"{NAME}: how long the storm lasts (default 60)"
    )
    parser.add_argument("--storm-api", type=int, default=3, help=f"{NAME}: processes using the lifecycle API")
    parser.add_argument("--storm-cli", type=int, default=1, help=f"{NAME}: processes using the modelreg CLI")
    parser.add_argument("--storm-sql", type=int, default=1, help=f"{NAME}: processes using plain SQL")


class InvariantSampler(threading.Thread):
    """Checks one ACTIVE PRIMARY per model and an acyclic graph in one snapshot, every SAMPLE_S."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(name="storm-sampler", daemon=True)
        self.ws = ws
        self.samples = 0
        self.two_primaries: list[str] = []
        self.cycles: list[str] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        conn = self.ws.registry()
        conn.autocommit = False
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        try:
            while not self._halt.wait(SAMPLE_S):
                try:
                    self._sample(conn)
                except psycopg2.Error as exc:
                    conn.rollback()
                    self.errors.append(str(exc).strip())
        finally:
            conn.close()

    def _sample(self, conn) -> None:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT model_id, array_agg(version ORDER BY version) FROM detection_model_versions"
                " WHERE status = 'ACTIVE' AND role = 'PRIMARY' GROUP BY model_id HAVING count(*) > 1"
            )
            doubles = cur.fetchall()
            cur.execute("SELECT model_id, depends_on FROM detection_model_dependencies")
            graph: dict[str, set[str]] = {}
            for model_id, depends_on in cur.fetchall():
                graph.setdefault(model_id, set()).add(depends_on)
                graph.setdefault(depends_on, set())
        self.samples += 1
        self.two_primaries += [f"{model_id}: ACTIVE PRIMARY {versions}" for model_id, versions in doubles]
        self.cycles += [f"cycle among {cycle}" for cycle in find_cycles(graph)]

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    with suite.workspace(NAME, models_package="faults.models.steady") as ws:
        ws.registry_rows((Path(__file__).with_name("audit_capture.sql")).read_text())
        _seed(ws)
        sampler = InvariantSampler(ws)
        sampler.start()
        try:
            tallies = _storm(ws, args, rng)
        finally:
            sampler.stop()
        audit = _audit(ws)
    crashes = [crash for tally in tallies for crash in tally["crashes"]]
    counts: Counter[str] = Counter()
    for tally in tallies:
        counts.update(tally["counts"])
    done = sum(n for key, n in counts.items() if ":ok" in key)
    refused = sum(n for key, n in counts.items() if key.endswith(":refused"))
    report.trials = sum(audit["outcomes"].values())
    report.outcomes.update(audit["outcomes"])
    report.note(
        f"{len(tallies)} processes, {args.storm_seconds:.0f} s: {done} changes made, {refused} refused, "
        f"{len(crashes)} crashed; {sampler.samples} snapshots: {len(sampler.two_primaries)} with two ACTIVE "
        f"PRIMARY, {len(sampler.cycles)} with a dependency cycle"
    )
    report.note("made: " + ", ".join(f"{key} {n}" for key, n in sorted(counts.items()) if ":ok" in key))
    for line in (
        crashes[:3]
        + sampler.two_primaries[:3]
        + sampler.cycles[:3]
        + audit["examples"][:6]
        + [f"sampler error: {e}" for e in sampler.errors[:2]]
    ):
        report.note(line)
    report.passed = (
        not crashes
        and not sampler.two_primaries
        and not sampler.cycles
        and report.trials > 0
        and set(audit["outcomes"]) == {"audited once"}
        and sampler.samples > 0
    )


def _seed(ws: Workspace) -> None:
    for model_id in MODELS:
        for version, status, role in _SEED_VERSIONS:
            ws.registry_rows(
                "INSERT INTO detection_model_versions (model_id, version, status, role) VALUES (%s, %s, %s, %s)",
                (model_id, version, status, role),
            )
    for model_id, depends_on in zip(MODELS[1:3], MODELS[:2]):
        ws.registry_rows(
            "INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES (%s, %s)", (model_id, depends_on)
        )


def _storm(ws: Workspace, args: argparse.Namespace, rng: random.Random) -> list[dict[str, Any]]:
    """Start every worker process, wait for them all, return their tallies."""
    kinds = ["api"] * args.storm_api + ["cli"] * args.storm_cli + ["sql"] * args.storm_sql
    processes = []
    for index, kind in enumerate(kinds):
        argv = [
            sys.executable,
            "-m",
            "faults.storm_worker",
            kind,
            "--dsn",
            ws.registry_dsn,
            "--seed",
            str(rng.getrandbits(32)),
            "--seconds",
            str(args.storm_seconds),
            "--actor",
            f"storm-{kind}-{index}",
            "--index",
            str(index),
            "--models",
            ",".join(MODELS),
        ]
        processes.append(
            subprocess.Popen(
                argv,
                env=ws.env,
                cwd=ws.folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
    tallies = []
    deadline = time.monotonic() + args.storm_seconds + 180
    try:
        for process in processes:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if process.returncode:
                raise RuntimeError(f"a storm worker exited {process.returncode}: {err[-2000:]}")
            tallies.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return tallies


def _state(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {k: v for k, v in row.items() if k not in _TIMESTAMPS}


def _audit(ws: Workspace) -> dict[str, Any]:
    """Match every captured change of state with the audit rows of its transaction."""
    changes: dict[tuple, list[dict[str, Any] | None]] = {}  # the new row of each change, in order
    audits: dict[tuple, list[dict[str, Any]]] = {}
    for txid, table, op, old, new in ws.registry_rows(
        "SELECT txid, tbl, op, old, new FROM faults_capture.changes ORDER BY id"
    ):
        if table == "detection_model_transitions":
            audits.setdefault(_audited_key(txid, new), []).append(new)
            continue
        if op == "UPDATE" and _state(old) == _state(new):
            continue  # only a timestamp moved: not a change
        row = new or old
        if table == "detection_model_versions":
            key = (txid, "version", row["id"])
        elif table == "detection_model_dependencies":
            key = (txid, "dependency", row["model_id"], row["depends_on"])
        else:
            key = (txid, "gates", row["model_id"])
        changes.setdefault(key, []).append(new)
    outcomes: Counter[str] = Counter()
    examples = []
    for key, news in changes.items():
        rows = audits.get(key, [])
        for index, new in enumerate(news):  # a row changed twice in one transaction: two changes, in order
            if index >= len(rows):
                outcome = "unaudited"
            elif (
                key[1] == "version"
                and new
                and (rows[index]["to_status"], rows[index]["to_role"]) != (new["status"], new["role"])
            ):
                outcome = "audit row with the wrong state"
            else:
                outcome = "audited once"
            outcomes[outcome] += 1
            if outcome != "audited once" and len(examples) < 6:
                examples.append(
                    f"{outcome}: transaction {key[0]}, {key[1]} {key[2:]}: {json.dumps(new, default=str)[:200]}"
                )
        if len(rows) > len(news):
            outcomes["audited twice or more"] += len(rows) - len(news)
            if len(examples) < 6:
                examples.append(f"audited twice or more: transaction {key[0]}, {key[1]} {key[2:]}")
    for key, rows in audits.items():
        if key not in changes:
            outcomes["audit row without a change"] += len(rows)
            if len(examples) < 6:
                examples.append(f"audit row without a change: {json.dumps(rows[0], default=str)[:200]}")
    return {"outcomes": outcomes, "examples": examples}


def _audited_key(txid: int, audit: dict[str, Any]) -> tuple:
    """What an audit row is about: a version, a dependency or a model's gates (from its columns)."""
    if audit.get("version_id") is not None:
        return (txid, "version", audit["version_id"])
    details = audit.get("details") or {}
    depends_on = (
        details.get("depends_on")
        or (details.get("after") or {}).get("depends_on")
        or (details.get("before") or {}).get("depends_on")
    )
    reason = audit.get("reason") or ""
    if depends_on is None and reason.startswith("depends on "):  # audit rows that carry no details
        depends_on = reason.removeprefix("depends on ").split(" ", 1)[0]
    if depends_on is not None and "min_cycles" not in (details.get("after") or details.get("before") or {}):
        return (txid, "dependency", audit["model_id"], depends_on)
    return (txid, "gates", audit["model_id"])
