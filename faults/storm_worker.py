"""One process of a lifecycle storm: random registry changes for a while, then a JSON tally.

``python -m faults.storm_worker KIND --dsn DSN --seed N --seconds S --actor NAME --models a,b,...``

- ``api``: the product's :class:`~models_core.registry.model_registry.ModelRegistry`, as the
  person NAME permitted to force and govern (promote,
  rollback, activate, deactivate, archive, register, deps add/remove, gates, description, tags);
- ``cli``: the ``modelreg`` CLI (``python -m models_core``, direct database mode: a service
  account) for the same kinds of change, checking that every refusal is one line on stderr
  with exit status 1;
- ``sql``: plain SQL as an operator might type it: params, descriptions, dependency input
  keys, dependency removals, gates, a promotion by hand; some sessions first set the API's
  audit context by hand (``models_core.action``/``actor``) or the old switch
  ``models_core.api = on``, which must not hide their change. It never adds a dependency:
  plain SQL may make a cycle, which the DAG survives but the storm checks never appear.

Refusals (the product saying no, a lock timeout, the one-PRIMARY index) are expected and
counted; anything else is counted as a crash with its message.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import psycopg2

VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0")
#: The database saying no, as it should under contention: the one-ACTIVE-PRIMARY index,
#: a lock not granted within lock_timeout, a deadlock, a serialization failure.
EXPECTED_DB_REFUSALS = ("23505", "55P03", "40P01", "40001")


def _connect(dsn: str):
    return psycopg2.connect(dsn, options="-c search_path=kcg,public -c lock_timeout=2s", connect_timeout=5)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.crashes: list[str] = []

    def done(self, what: str, outcome: str) -> None:
        self.counts[f"{what}:{outcome}"] += 1

    def crash(self, what: str, message: str) -> None:
        self.counts[f"{what}:crash"] += 1
        if len(self.crashes) < 5:
            self.crashes.append(f"{what}: {' '.join(message.split())[:300]}")


def api_worker(args: argparse.Namespace, rng: random.Random, tally: Tally) -> None:
    from models_core.errors import ModelRegistryError
    from models_core.registry.actors import Actor, ActorKind, person_permissions
    from models_core.registry.model_registry import ModelRegistry

    conn = _connect(args.dsn)
    registry = ModelRegistry(
        conn, Actor(args.actor, ActorKind.PERSON, person_permissions(may_edit=True, may_govern=True))
    )
    lifecycle = registry.lifecycle
    registered = 0
    while time.monotonic() < args.until:
        model, other = rng.sample(args.models, 2)
        version = rng.choice(VERSIONS)
        what = rng.choice(
            [
                "promote",
                "rollback",
                "rollback_to",
                "activate",
                "deactivate",
                "archive",
                "register",
                "deps_add",
                "deps_add",
                "deps_remove",
                "gates",
                "describe",
                "tags",
            ]
        )
        try:
            if what == "promote":
                lifecycle.promote(
                    model,
                    version,
                    window=timedelta(hours=1),
                    force=True,
                    reason="storm",
                    keep_previous_as_shadow=rng.random() < 0.5,
                )
            elif what == "rollback":
                lifecycle.rollback(model, reason="storm")
            elif what == "rollback_to":
                lifecycle.rollback(model, reason="storm", to=version)
            elif what == "activate":
                lifecycle.activate(model, version, rng.choice(["SHADOW", "CHALLENGER"]), reason="storm")
            elif what in ("deactivate", "archive"):
                getattr(lifecycle, what)(model, version, "storm", rng.random() < 0.2)
            elif what == "register":
                registered += 1
                lifecycle.register(model, f"{10 + args.index}.{registered}.0", {"storm": registered}, "storm")
            elif what == "deps_add":
                registry.dependencies.add(model, other, {})
            elif what == "deps_remove":
                registry.dependencies.remove(model, other)
            elif what == "describe":
                registry.annotations.describe(model, version, f"storm {rng.randint(0, 99)}", reason="storm")
            elif what == "tags":
                registry.annotations.set_tags(
                    model, version, {"validated": rng.choice(["true", "false"])}, reason="storm"
                )
            else:
                registry.guards.set_gates(model, reason="storm", min_cycles=rng.randint(0, 20))
            tally.done(what, "ok")
        except ModelRegistryError:
            tally.done(what, "refused")
        except psycopg2.Error as exc:
            conn.rollback()
            if exc.pgcode in EXPECTED_DB_REFUSALS:
                tally.done(what, "refused")
            else:
                tally.crash(what, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the storm reports it; it must not stop the other processes
            conn.rollback()
            tally.crash(what, f"{type(exc).__name__}: {exc}")
        time.sleep(rng.uniform(0, 0.02))


def cli_worker(args: argparse.Namespace, rng: random.Random, tally: Tally) -> None:
    while time.monotonic() < args.until:
        model, other = rng.sample(args.models, 2)
        version = rng.choice(VERSIONS)
        what, argv = rng.choice(
            [
                ("promote", ["promote", model, version, "--force", "--reason", "storm (cli)"]),
                ("rollback", ["rollback", model, "--reason", "storm (cli)"]),
                ("activate", ["activate", model, version, "--role", rng.choice(["SHADOW", "CHALLENGER"])]),
                ("deps_add", ["deps", "add", model, other]),
                ("deps_remove", ["deps", "remove", model, other]),
                ("gates", ["gates", model, "--min-cycles", str(rng.randint(0, 20))]),
            ]
        )
        done = subprocess.run([sys.executable, "-m", "models_core", *argv], capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            tally.done(f"cli_{what}", "ok")
        elif done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1:
            tally.done(f"cli_{what}", "refused")
        else:
            tally.crash(f"cli_{what}", f"exit {done.returncode}, stderr: {done.stderr.strip()[-500:]}")


def sql_worker(args: argparse.Namespace, rng: random.Random, tally: Tally) -> None:
    conn = _connect(args.dsn)
    while time.monotonic() < args.until:
        model = rng.choice(args.models)
        what = rng.choice(["params", "description", "tags", "input_key", "deps_remove", "gates", "promote_by_hand"])
        disguise = rng.choice([None, None, "action", "api_switch"])
        try:
            with conn, conn.cursor() as cur:
                if disguise == "action":  # pretending to be the API must not hide the change
                    cur.execute(
                        "SELECT set_config('models_core.action', 'promote', true),"
                        " set_config('models_core.actor', 'someone-else', true)"
                    )
                elif disguise == "api_switch":  # the switch that once turned the audit off
                    cur.execute("SELECT set_config('models_core.api', 'on', true)")
                _sql_change(cur, what, model, rng)
            tally.done(f"sql_{what}", "ok" if disguise is None else f"ok ({disguise} set)")
        except psycopg2.Error as exc:
            if exc.pgcode in EXPECTED_DB_REFUSALS:
                tally.done(f"sql_{what}", "refused")
            else:
                tally.crash(f"sql_{what}", str(exc))
        time.sleep(rng.uniform(0, 0.03))


def _sql_change(cur, what: str, model: str, rng: random.Random) -> None:
    if what == "params":
        cur.execute(
            "UPDATE detection_model_versions SET params = params || jsonb_build_object('knob', %s)"
            " WHERE model_id = %s AND version = %s",
            (rng.randint(0, 9), model, rng.choice(VERSIONS)),
        )
    elif what == "description":
        cur.execute(
            "UPDATE detection_model_versions SET description = %s WHERE model_id = %s AND version = %s",
            (f"edited by hand {rng.randint(0, 99)}", model, rng.choice(VERSIONS)),
        )
    elif what == "tags":
        cur.execute(
            "UPDATE detection_model_versions SET tags = tags || jsonb_build_object('owner', %s)"
            " WHERE model_id = %s AND version = %s",
            (f"team-{rng.randint(0, 3)}", model, rng.choice(VERSIONS)),
        )
    elif what == "input_key":
        cur.execute(
            "UPDATE detection_model_dependencies SET input_key = %s WHERE id = (SELECT id FROM"
            " detection_model_dependencies WHERE model_id = %s ORDER BY random() LIMIT 1)",
            (rng.choice([None, "tracks", "scores"]), model),
        )
    elif what == "deps_remove":
        cur.execute(
            "DELETE FROM detection_model_dependencies WHERE id = (SELECT id FROM"
            " detection_model_dependencies WHERE model_id = %s ORDER BY random() LIMIT 1)",
            (model,),
        )
    elif what == "gates":
        cur.execute(
            "INSERT INTO detection_model_quality_gates (model_id, min_cycles) VALUES (%s, %s)"
            " ON CONFLICT (model_id) DO UPDATE SET min_cycles = EXCLUDED.min_cycles, updated_at = now()",
            (model, rng.randint(0, 20)),
        )
    else:  # a promotion by hand: the current PRIMARY archived, another version made PRIMARY, one transaction
        cur.execute(
            "UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE model_id = %s"
            " AND status = 'ACTIVE' AND role = 'PRIMARY'",
            (model,),
        )
        cur.execute(
            "UPDATE detection_model_versions SET status = 'ACTIVE', role = 'PRIMARY' WHERE model_id = %s"
            " AND version = %s AND NOT (status = 'ACTIVE' AND role = 'PRIMARY')",
            (model, rng.choice(VERSIONS)),
        )


WORKERS = {"api": api_worker, "cli": cli_worker, "sql": sql_worker}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.storm_worker")
    parser.add_argument("kind", choices=sorted(WORKERS))
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--models", required=True, type=lambda text: text.split(","))
    args = parser.parse_args(argv)
    args.until = time.monotonic() + args.seconds
    tally = Tally()
    WORKERS[args.kind](args, random.Random(args.seed), tally)
    print(
        json.dumps(
            {
                "kind": args.kind,
                "actor": args.actor,
                "pid": os.getpid(),
                "counts": tally.counts,
                "crashes": tally.crashes,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
