"""A model-based test of the registry's governance: random steps by several actors, rules checked after each.

A Hypothesis ``RuleBasedStateMachine`` drives the registry through its public Python API
(:class:`~models_core.registry.model_registry.ModelRegistry`, as the registry API and
``modelreg`` do) with people (alice may govern; uma, bob and carol may request and
approve), a service account (direct database mode) and the self-healing review, on two
models: register, activate, deactivate, archive, promote (with and without force),
reactivate, rollback (plain and ``--to``), approvals on and off (approvers, N of M),
approve, reject, gates, cycles that succeed or fail, re-runs of a cycle, and the review.
Refusals are answers, not failures. After every step:

- at most one ACTIVE PRIMARY per model;
- every entry into ACTIVE PRIMARY has its basis on its audit row, and the basis holds: on a
  model under approval only an approved request (with as many distinct approvers as the
  model asked, none of them the requester, all of them people) or a restore of an earlier
  PRIMARY; a forced entry only by an actor permitted to force, with a reason; gated only
  when its gates passed then and no approval was required; never out of ERROR or ARCHIVED
  otherwise;
- ``primary_at(t)`` equals what the machine saw after each step, for every step's time;
- every change of a version has exactly one audit row, made by the step's actor (its id
  and kind), or by the database user for the setup's plain SQL.

``pytest`` runs it with a small budget (tests/integration/test_governance_machine.py);
``make faults`` runs many more examples as the ``governance_storm``
(``python -m harness.governance_machine``), in the fault's own databases.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg2.extensions import connection as PgConnection

from harness.sql import empty_tables
from models_core.errors import ModelRegistryError
from models_core.healing.review import review_cycle
from models_core.registry.actors import SYSTEM, Actor, ActorKind, person_permissions, service
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

MODELS = ("gov_a", "gov_b")
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0")
#: Versions as the rules pick them: the SHADOW and a DRAFT more often, so promotions get somewhere.
PICKS = st.sampled_from(("1.0.0", "1.1.0", "1.1.0", "1.1.0", "1.2.0", "2.0.0", "2.0.0"))
PEOPLE = {"alice": True, "uma": False, "bob": False, "carol": False}  # name -> may govern (force, guards alone)
WINDOW = timedelta(hours=168)


def person(name: str) -> Actor:
    return Actor(name, ActorKind.PERSON, person_permissions(may_edit=True, may_govern=PEOPLE[name]))


ACTORS = [*PEOPLE, "service"]


@dataclass
class Tally:
    """What a run of the machine did: steps by rule and outcome, examples, rows audited."""

    steps: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    examples: int = 0
    entries_into_primary: Counter = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "steps": sum(self.steps.values()),
            "accepted": sum(n for k, n in self.steps.items() if k.endswith(":ok")),
            "refused": sum(n for k, n in self.steps.items() if k.endswith(":refused")),
            "entries_into_primary": dict(self.entries_into_primary),
            "by_rule": dict(sorted(self.steps.items())),
            "refusals": dict(self.refusals.most_common(12)),
        }


TALLY = Tally()


def _gist(message: str) -> str:
    """A refusal without its names and figures, to count refusals by kind."""
    import re

    return re.sub(r"gov_[ab]|@[0-9.]+|[0-9]+(\.[0-9]+)*|#[0-9]+|'[^']*'", "_", message)[:90]


def reset_registry(conn: PgConnection) -> None:
    """Every registry table emptied (identities restarted): a fresh registry for one example."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition AND relname <> 'schema_migrations'"
        )
        empty_tables(cur, [name for (name,) in cur.fetchall()])


class GovernanceMachine(RuleBasedStateMachine):
    """The registry's lifecycle under random steps; see the module docstring for what is checked."""

    def __init__(self) -> None:
        super().__init__()
        TALLY.examples += 1
        self._opened = registry_connection(load_settings(), application_name="governance_machine")
        self.conn = self._opened.__enter__()
        reset_registry(self.conn)
        with self.conn.cursor() as cur:
            cur.execute("SELECT session_user::text")
            ((self.db_user,),) = cur.fetchall()
        self.conn.rollback()
        self.clock = datetime.now(UTC) - timedelta(hours=48)
        self.cycle_no = 0
        self.last_run: dict[str, tuple[str, datetime]] = {}
        self.seen: list[tuple[datetime, dict[str, str | None]]] = []  # (after a step, model -> PRIMARY)
        self.approval: dict[str, tuple[bool, tuple[str, ...], int]] = {m: (False, (), 1) for m in MODELS}
        self.versions: dict[int, tuple] = {}  # id -> the row as last seen, to tell what a step changed
        self.last_audit_id = 0
        self.step_actors: list[Actor] = []  # who may have made this step's audit rows (none: plain SQL)
        self.guard_changes = 0

    def teardown(self) -> None:
        """At the end of an example, ``primary_at`` once more for every step's time."""
        try:
            self._check_primary_at(self.seen)
        finally:
            self._opened.__exit__(None, None, None)

    # ---- helpers ----------------------------------------------------------------------

    def _actor(self, name: str) -> Actor:
        return service(self.db_user) if name == "service" else person(name)

    def _do(self, rule_name: str, actor: Actor, change: Callable[[ModelRegistry], Any]) -> Any:
        self.step_actors.append(actor)
        try:
            result = change(ModelRegistry(self.conn, actor))
        except ModelRegistryError as exc:
            self.conn.rollback()
            TALLY.steps[f"{rule_name}:refused"] += 1
            TALLY.refusals[f"{rule_name}: {_gist(str(exc))}"] += 1
            return None
        TALLY.steps[f"{rule_name}:ok"] += 1
        return result

    def _query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall()
        self.conn.rollback()
        return rows

    # ---- setup ------------------------------------------------------------------------

    @initialize(under_approval=st.sampled_from([(False, True), (True, True), (True, False)]))
    def seed(self, under_approval: tuple[bool, bool]) -> None:
        """Each model: 1.0.0 its PRIMARY (inserted with plain SQL, as operators do), 1.1.0 a SHADOW,
        1.2.0 and 2.0.0 DRAFT; gates of one cycle, so that promotions can pass them; one model's
        promotions, or both, need one approval from the start."""
        with self.conn, self.conn.cursor() as cur:
            for model in MODELS:
                for version, status, role in (
                    ("1.0.0", "ACTIVE", "PRIMARY"),
                    ("1.1.0", "ACTIVE", "SHADOW"),
                    ("1.2.0", "DRAFT", "SHADOW"),
                    ("2.0.0", "DRAFT", "CHALLENGER"),
                ):
                    cur.execute(
                        "INSERT INTO detection_model_versions (model_id, version, status, role)"
                        " VALUES (%s, %s, %s, %s)",
                        (model, version, status, role),
                    )
                cur.execute(
                    "INSERT INTO detection_model_quality_gates (model_id, min_cycles, max_failure_rate)"
                    " VALUES (%s, 1, 0.5)",
                    (model,),
                )
            for model in (m for m, required in zip(MODELS, under_approval) if required):
                cur.execute(
                    "INSERT INTO detection_model_approval_settings (model_id, required) VALUES (%s, true)", (model,)
                )
                self.approval[model] = (True, (), 1)
        self.step_actors = []

    # ---- rules ------------------------------------------------------------------------

    @rule(
        who=st.sampled_from(ACTORS),
        model=st.sampled_from(MODELS),
        version=PICKS,
        role=st.sampled_from(["SHADOW", "CHALLENGER"]),
    )
    def activate(self, who: str, model: str, version: str, role: str) -> None:
        self._do("activate", self._actor(who), lambda r: r.lifecycle.activate(model, version, role))

    @rule(
        who=st.sampled_from(ACTORS),
        model=st.sampled_from(MODELS),
        version=PICKS,
        archive=st.booleans(),
        force=st.booleans(),
    )
    def retire(self, who: str, model: str, version: str, archive: bool, force: bool) -> None:
        action = "archive" if archive else "deactivate"
        self._do(
            action,
            self._actor(who),
            lambda r: getattr(r.lifecycle, action)(model, version, "storm" if force else None, force),
        )

    @rule(
        who=st.sampled_from(ACTORS),
        model=st.sampled_from(MODELS),
        version=PICKS,
        force=st.booleans(),
        reason=st.sampled_from([None, "", "incident"]),
        keep=st.booleans(),
    )
    def promote(self, who: str, model: str, version: str, force: bool, reason: str | None, keep: bool) -> None:
        self._do(
            "promote",
            self._actor(who),
            lambda r: r.lifecycle.promote(
                model, version, window=WINDOW, force=force, reason=reason, keep_previous_as_shadow=keep
            ),
        )

    @rule(
        who=st.sampled_from(ACTORS),
        model=st.sampled_from(MODELS),
        version=PICKS,
        role=st.sampled_from([None, "PRIMARY", "SHADOW"]),
        force=st.booleans(),
    )
    def reactivate(self, who: str, model: str, version: str, role: str | None, force: bool) -> None:
        self._do(
            "reactivate",
            self._actor(who),
            lambda r: r.lifecycle.reactivate(
                model, version, "back" if force else None, role, window=WINDOW, force=force
            ),
        )

    @rule(who=st.sampled_from(ACTORS), model=st.sampled_from(MODELS), to=st.sampled_from([None, *VERSIONS]))
    def rollback(self, who: str, model: str, to: str | None) -> None:
        self._do("rollback", self._actor(who), lambda r: r.lifecycle.rollback(model, "storm", to=to))

    @precondition(lambda self: self.guard_changes < 3)  # a few per example, so promotions are not always blocked
    @rule(
        who=st.sampled_from(ACTORS),
        model=st.sampled_from(MODELS),
        gates=st.booleans(),
        required=st.booleans(),
        approvers=st.sampled_from([[], ["bob", "carol"], ["uma", "bob", "carol"], ["alice", "bob"]]),
        number=st.integers(0, 3),
    )
    def change_guards(
        self, who: str, model: str, gates: bool, required: bool, approvers: list[str], number: int
    ) -> None:
        """The gates (min_cycles = ``number``) or the approval setting (N = ``number``, at least 1)."""
        self.guard_changes += 1
        if gates:
            self._do(
                "gates", self._actor(who), lambda r: r.guards.set_gates(model, min_cycles=number, max_failure_rate=0.5)
            )
            return
        min_approvals = max(1, min(number, len(approvers) or number))
        outcome = self._do(
            "approvals",
            self._actor(who),
            lambda r: r.guards.set_approval(model, required=required, approvers=approvers, min_approvals=min_approvals),
        )
        if isinstance(outcome, dict):
            self.approval[model] = (outcome["required"], tuple(outcome["approvers"]), outcome["min_approvals"])

    def _pending(self) -> list[str]:
        return [
            m
            for (m,) in self._query(
                "SELECT model_id FROM detection_model_approval_requests WHERE status = 'PENDING' ORDER BY model_id"
            )
        ]

    @precondition(lambda self: bool(self._pending()))
    @rule(
        who=st.sampled_from(ACTORS),
        pick=st.integers(0, 1),
        decision=st.sampled_from(["approve", "approve", "approve", "reject"]),
    )
    def decide(self, who: str, pick: int, decision: str) -> None:
        """Approve (most often) or reject a pending request, whatever it asks."""
        pending = self._pending()
        model = pending[pick % len(pending)]
        if decision == "reject":
            self._do("reject", self._actor(who), lambda r: r.approvals.reject(model, None, "no"))
            return
        outcome = self._do("approve", self._actor(who), lambda r: r.approvals.approve(model, reason="ok"))
        if isinstance(outcome, dict):  # a guard change applied
            setting = self._query(
                "SELECT required, approvers, min_approvals FROM detection_model_approval_settings WHERE model_id = %s",
                (model,),
            )
            if setting:
                self.approval[model] = (setting[0][0], tuple(setting[0][1]), setting[0][2])

    @rule(model=st.sampled_from(MODELS), failing=st.sets(st.sampled_from(VERSIONS), max_size=2))
    def cycle(self, model: str, failing: set[str]) -> None:
        """A cycle of the model's ACTIVE versions, as the cycle summary records it."""
        self.cycle_no += 1
        moment = self.clock + timedelta(minutes=5 * self.cycle_no)
        run_id = f"scheduled__{moment.isoformat()}"
        self._record_cycle(model, run_id, moment, failing)
        TALLY.steps["cycle:ok"] += 1

    @rule(model=st.sampled_from(MODELS), failing=st.sets(st.sampled_from(VERSIONS)))
    def rerun_cycle(self, model: str, failing: set[str]) -> None:
        """The model's last cycle run again (a clear, `airflow dags test` again): a new run, the same cycle."""
        if model not in self.last_run:
            return
        _, moment = self.last_run[model]
        self._record_cycle(model, f"manual__{moment.isoformat()}_{self.cycle_no}_{len(failing)}", moment, failing)
        TALLY.steps["rerun_cycle:ok"] += 1

    def _record_cycle(self, model: str, run_id: str, moment: datetime, failing: set[str]) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT id, version, role FROM detection_model_versions WHERE model_id = %s AND status = 'ACTIVE'",
                (model,),
            )
            for version_id, version, role in cur.fetchall():
                cur.execute(
                    "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at,"
                    " model_id, version_id, role, state, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (
                        run_id,
                        f"{model}.{version}",
                        moment,
                        model,
                        version_id,
                        role,
                        "failed" if version in failing else "success",
                        "told to fail" if version in failing else None,
                    ),
                )
        self.last_run[model] = (run_id, moment)

    @rule(model=st.sampled_from(MODELS), rollback=st.booleans())
    def review(self, model: str, rollback: bool) -> None:
        """The self-healing review of the model's last run, with its policy as given (set as a governor)."""
        if model not in self.last_run:
            return
        self._do(
            "policy",
            person("alice"),
            lambda r: r.guards.set_healing_policy(
                model,
                on_primary_error="rollback" if rollback else "alert",
                error_after_failures=2,
                max_failure_rate=0.5,
                min_cycles=2,
                window_hours=48,
                cooldown_minutes=0,
            ),
        )
        run_id, moment = self.last_run[model]
        self.step_actors.append(SYSTEM)
        review_cycle(load_settings(), run_id, moment, {})
        TALLY.steps["review:ok"] += 1

    # ---- invariants -------------------------------------------------------------------

    @invariant()
    def one_active_primary_per_model(self) -> None:
        counts = self._query(
            "SELECT model_id, count(*) FROM detection_model_versions WHERE status = 'ACTIVE'"
            " AND role = 'PRIMARY' GROUP BY model_id"
        )
        assert all(n <= 1 for _, n in counts), counts

    @invariant()
    def every_change_has_one_audit_row_by_its_actor(self) -> None:
        rows = self._query(
            "SELECT id, model_id, version_id, action, actor, actor_kind, source, from_status, to_status,"
            " from_role, to_role, basis, request_id, reason, at FROM detection_model_transitions"
            " WHERE id > %s ORDER BY id",
            (self.last_audit_id,),
        )
        actors, self.step_actors = {(a.id, str(a.kind)): a for a in self.step_actors}, []
        if rows:
            self.last_audit_id = rows[-1][0]
        for (
            _id,
            model,
            version_id,
            action,
            who,
            kind,
            source,
            from_status,
            to_status,
            from_role,
            to_role,
            basis,
            request_id,
            reason,
            _at,
        ) in rows:
            if not actors:  # the setup's plain SQL
                assert (source, who, kind) == ("sql", self.db_user, "sql"), (action, who, kind)
                continue
            assert source == "api" and (who, kind) in actors, (action, who, kind, sorted(actors))
            if to_status == "ACTIVE" and to_role == "PRIMARY" and (from_status, from_role) != ("ACTIVE", "PRIMARY"):
                self._check_entry(
                    model, version_id, action, basis, request_id, reason, from_status, actors[(who, kind)]
                )
        now = {
            row[0]: row[1:]
            for row in self._query(
                "SELECT id, model_id, version, status, role, params::text, description, tags::text, metadata::text"
                " FROM detection_model_versions"
            )
        }
        changed = {i for i in now.keys() | self.versions.keys() if now.get(i) != self.versions.get(i)}
        audited = Counter(r[2] for r in rows if r[2] is not None and (r[7] is not None or r[8] is not None))
        assert set(audited) == changed and all(n == 1 for n in audited.values()), (sorted(changed), audited)
        self.versions = now
        self._remember_primaries()

    def _check_entry(
        self,
        model: str,
        version_id: int,
        action: str,
        basis: str | None,
        request_id: int | None,
        reason: str | None,
        from_status: str | None,
        actor: Actor,
    ) -> None:
        """An entry into ACTIVE PRIMARY: its basis is recorded, and it holds."""
        TALLY.entries_into_primary[basis or "none"] += 1
        required, approvers, min_approvals = self.approval[model]
        assert basis in ("gated", "approved", "restore", "forced"), (model, action, basis)
        if basis == "restore":
            earlier = self._query(
                "SELECT count(*) FROM detection_model_transitions WHERE version_id = %s"
                " AND to_status = 'ACTIVE' AND to_role = 'PRIMARY' AND id < (SELECT max(id) FROM"
                " detection_model_transitions WHERE version_id = %s)",
                (version_id, version_id),
            )
            assert earlier[0][0] >= 1, (model, version_id, action, "restored but never PRIMARY before")
            return
        assert from_status not in ("ERROR",), (model, version_id, action, basis)
        if required:
            assert basis == "approved", (model, action, basis, "under approval")
        if basis == "approved":
            requester, votes = self._query(
                "SELECT r.requested_by, array(SELECT approver FROM detection_model_approval_votes v"
                " WHERE v.request_id = r.id) FROM detection_model_approval_requests r WHERE r.id = %s",
                (request_id,),
            )[0]
            counted = set(votes) & set(approvers) if approvers else set(votes)
            assert len(counted) >= min_approvals and requester not in votes, (requester, votes, min_approvals)
            assert all(v in PEOPLE for v in votes), votes
        elif basis == "forced":
            assert actor.may("force") and (reason or "").strip(), (actor, reason)  # type: ignore[arg-type]
        else:
            assert not required and from_status != "ARCHIVED", (model, action, from_status)

    def _remember_primaries(self) -> None:
        now = self._query("SELECT clock_timestamp()")[0][0]
        primaries = dict(
            self._query(
                "SELECT model_id, version FROM detection_model_versions WHERE status = 'ACTIVE' AND role = 'PRIMARY'"
            )
        )
        self.seen.append((now, {m: primaries.get(m) for m in MODELS}))

    @invariant()
    def primary_at_equals_what_was_seen(self) -> None:
        self._check_primary_at(self.seen[-2:])  # every step's time is checked again at the example's end

    def _check_primary_at(self, seen: list[tuple[datetime, dict[str, str | None]]]) -> None:
        lifecycle = ModelRegistry(self.conn, SYSTEM).lifecycle
        for at, primaries in seen:
            for model, primary in primaries.items():
                assert lifecycle.primary_at(model, at) == primary, (model, at, primary)


def run(examples: int, steps: int) -> dict[str, Any]:
    """Run the machine on ``examples`` random examples; returns the tally (raises on the first
    violation, with the shortest sequence of steps Hypothesis found for it)."""
    started = time.monotonic()
    run_state_machine_as_test(
        GovernanceMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    return {**TALLY.as_json(), "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str]) -> int:
    """The governance storm's process: one JSON line with the tally (and the violation, if any)."""
    parser = argparse.ArgumentParser(prog="python -m harness.governance_machine")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    try:
        print(json.dumps({"passed": True, **run(args.examples, args.steps)}))
    except AssertionError as exc:
        print(json.dumps({"passed": False, "violation": " ".join(str(exc).split())[:2000], **TALLY.as_json()}))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
