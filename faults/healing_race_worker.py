"""The process of the ``healing_race`` fault: self-healing reviews racing people and each other.

``python -m faults.healing_race_worker --trials N --seed S`` runs N trials on the registry the
environment names and prints one JSON line: outcomes by kind of interference, and the
violations (human changes undone, double actions, models left without a PRIMARY silently).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from models_core.errors import ModelRegistryError
from models_core.healing.review import review_cycle
from models_core.registry.actors import Actor, ActorKind, person_permissions
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries

INTERFERENCES = ("promote", "deactivate", "lock", "second_review", "none")
OPS = Actor("ops", ActorKind.PERSON, person_permissions(may_edit=True, may_govern=True))
#: Reviews after the first one, at most, that may be needed before the review acts.
RETRIES = 3


def _rows(statement: str, params: tuple = ()) -> list[tuple]:
    with registry_connection(load_settings()) as conn:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []


def _failure(model: str, version_id: int, cycle: datetime) -> str:
    run_id = f"race__{model}__{cycle.isoformat()}"
    _rows(
        "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at, model_id, version_id,"
        " role, state, reason) VALUES (%s, %s, %s, %s, %s, 'PRIMARY', 'failed', 'told to fail')",
        (run_id, f"{model}.primary", cycle, model, version_id),
    )
    return run_id


def _setup(model: str) -> dict[str, int]:
    """1.0.0 then 2.0.0 PRIMARY (2.0.0 now), 3.0.0 a SHADOW; a rollback policy; 2.0.0 failing."""
    _rows(
        "INSERT INTO detection_model_versions (model_id, version, status, role) VALUES (%s, '1.0.0', 'ACTIVE',"
        " 'PRIMARY')",
        (model,),
    )
    with registry_connection(load_settings()) as conn:
        registry = ModelRegistry(conn, OPS)
        ids = {version: registry.lifecycle.register(model, version, {}) for version in ("2.0.0", "3.0.0")}
        for version in ids:
            registry.lifecycle.activate(model, version, "SHADOW")
        registry.lifecycle.promote(model, "2.0.0", window=timedelta(hours=1), force=True, reason="the new one")
        registry.guards.set_healing_policy(
            model, on_primary_error="rollback", error_after_failures=2, cooldown_minutes=0
        )
    return ids


def _interfere(
    kind: str, model: str, rng: random.Random, runs: list[str], cycle: datetime, done: dict[str, Any]
) -> None:
    time.sleep(rng.uniform(0, 0.04))
    try:
        if kind in ("promote", "deactivate"):
            with registry_connection(load_settings()) as conn:
                lifecycle = ModelRegistry(conn, OPS).lifecycle
                if kind == "promote":
                    lifecycle.promote(model, "3.0.0", window=timedelta(hours=1), force=True, reason="a person's fix")
                else:
                    lifecycle.deactivate(model, "2.0.0", "a person stops it", force=True)
            done["person"] = "committed"
        elif kind == "lock":
            with registry_connection(load_settings()) as conn:
                with conn.cursor() as cur:
                    cur.execute(queries("registry/session.sql")["try_lock_model"], {"model_id": model})
                    time.sleep(rng.uniform(0, 0.3))
                conn.rollback()
        elif kind == "second_review":
            done["second"] = review_cycle(load_settings(), runs[0], cycle - timedelta(minutes=5), {})
    except ModelRegistryError as exc:  # the person was refused (the model was locked by the review): an answer
        done["person"] = f"refused: {exc}"


def trial(index: int, rng: random.Random) -> tuple[str, list[str]]:
    """One race; returns (outcome, violations)."""
    model = f"race_{index}"
    ids = _setup(model)
    kind = rng.choice(INTERFERENCES)
    start = datetime.now(UTC) - timedelta(minutes=30)
    runs = [_failure(model, ids["2.0.0"], start + timedelta(minutes=5 * i)) for i in range(2)]
    done: dict[str, Any] = {}
    reviewer = threading.Thread(
        target=lambda: done.update(first=review_cycle(load_settings(), runs[-1], start + timedelta(minutes=5), {}))
    )
    meddler = threading.Thread(target=_interfere, args=(kind, model, rng, runs, start + timedelta(minutes=5), done))
    for thread in rng.sample([reviewer, meddler], 2):
        thread.start()
    for thread in (reviewer, meddler):
        thread.join(timeout=120)
    acted_late = 0
    for retry in range(RETRIES):  # the model still runs its failing PRIMARY: the next cycle's review acts
        if (
            _rows(
                "SELECT 1 FROM detection_model_versions WHERE id = %s AND status = 'ACTIVE' AND role = 'PRIMARY'",
                (ids["2.0.0"],),
            )
            == []
        ):
            break
        cycle = start + timedelta(minutes=10 + 5 * retry)
        review_cycle(load_settings(), _failure(model, ids["2.0.0"], cycle), cycle, {})
        acted_late += 1
    return _judge(model, ids, kind, done, acted_late)


def _judge(model: str, ids: dict[str, int], kind: str, done: dict[str, Any], acted_late: int) -> tuple[str, list[str]]:
    violations = []
    state = dict(
        _rows("SELECT version, status || ' ' || role FROM detection_model_versions WHERE model_id = %s", (model,))
    )
    primary = [v for v, s in state.items() if s == "ACTIVE PRIMARY"]
    system = _rows(
        "SELECT version, action, to_status, to_role FROM detection_model_transitions WHERE model_id = %s"
        " AND actor = 'system' ORDER BY id",
        (model,),
    )
    person_committed = done.get("person") == "committed"
    if kind == "promote" and person_committed and primary != ["3.0.0"]:
        violations.append(f"{model}: a person's promotion of 3.0.0 was undone (now {state})")
    if kind == "deactivate" and person_committed and state["2.0.0"].startswith("ACTIVE"):
        violations.append(f"{model}: a person's deactivation of 2.0.0 was undone (now {state})")
    entries = [row for row in system if row[2:] == ("ACTIVE", "PRIMARY")]
    if len(entries) > 1:
        violations.append(f"{model}: the review restored a PRIMARY {len(entries)} times: {entries}")
    errors = [row for row in system if row[2] == "ERROR"]
    if len(errors) > 1:
        violations.append(f"{model}: the review put a version in ERROR {len(errors)} times")
    alerted = _rows("SELECT 1 FROM detection_model_healing_events WHERE model_id = %s AND kind = 'alert'", (model,))
    if not primary and not (kind == "deactivate" and person_committed) and not alerted:
        violations.append(f"{model}: left without an ACTIVE PRIMARY and nobody told (now {state})")
    failed = [a for a in done.get("first", []) + done.get("second", []) if a["kind"] == "review_failed"]
    if failed:
        violations.append(f"{model}: the review failed: {failed[0]['message']}")
    outcome = f"{kind}: " + (
        "person first"
        if person_committed and not entries
        else "review acted" + (" on a later cycle" if acted_late else "")
        if entries
        else "no rollback" + (", alerted" if alerted else "")
    )
    return outcome, violations


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.healing_race_worker")
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    violations: list[str] = []
    for index in range(args.trials):
        outcome, found = trial(index, rng)
        outcomes[outcome] += 1
        violations += found
    print(json.dumps({"outcomes": outcomes, "violations": violations}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
