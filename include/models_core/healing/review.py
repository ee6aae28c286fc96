"""After each cycle: ERROR for a version that keeps failing, rollback or alert for a broken PRIMARY.

The cycle summary calls :func:`review_cycle` once it has stored the cycle's outcomes, so the
review sees every task's final state and the version each task ran. For each model that ran
in the cycle, under its policy (``modelreg policy``):

1. **ERROR**: a version whose last K cycles since it last became ACTIVE all failed (K =
   the policy's ``error_after_failures``, else the setting, default 3; a cycle run again
   counts once, by its latest attempt) is moved to ERROR, audited with the ``system`` actor
   and the failures' messages. It no longer runs (the plan reads ACTIVE versions only), so a
   SHADOW in ERROR costs nothing more; ``modelreg reactivate`` brings it back with a fresh count.
2. **A broken PRIMARY**: one that fails K cycles in a row, or one that, over the policy's
   window ending with this cycle and after at least ``min_cycles`` cycles, breaks a
   degradation rule (failure rate, a metric's mean outside its bounds: the quality gates'
   vocabulary). With ``on_primary_error = rollback`` the previous PRIMARY is restored (a
   failing one's ERROR and the rollback in one transaction) carrying the figures. It never
   flaps: the rollback never restores a version rolled back from or in ERROR, and a
   degradation rollback waits ``cooldown_minutes`` after the PRIMARY last changed (a tag or
   description edit is no change). When it cannot roll back, and with ``alert``, it sends an
   alert instead (at most one per version per cool-down).
3. **It acts on what it judged**: every change is a compare-and-set in one transaction with
   what the review read when it judged: the version's state and its latest audit row (for
   a rollback, the judged version still the PRIMARY, unchanged since); any change of it in
   between, even one that leaves the same state behind, means the review does not act. A
   person's change in between wins: the review changes nothing, says so, and the next
   cycle's review judges again. The same holds for two reviews of one model at once
   (``max_active_runs = 2``): one acts, the other finds the state changed. A review that
   finds the model locked by another change says so and changes nothing, so the next
   review tries again.
4. Every action is recorded once per cycle run in ``detection_model_healing_events`` and
   sent through the configured notifier, so a summary run again acts and notifies once.

One model's trouble is logged naming it and the next model is reviewed; the review never
decides the run's colour.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from psycopg2.extensions import connection as PgConnection

from models_core.healing.notifier import notify
from models_core.model import Role
from models_core.registry.actors import SYSTEM
from models_core.registry.guards import DEFAULT_POLICY
from models_core.registry.lifecycle import Judgment, StaleJudgment
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.session import ChangeInProgress, LifecycleError
from models_core.settings import Settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import VersionRecord, read_version
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

#: The window ends just after the cycle's timestamp, so the cycle itself is in it.
_INCLUDE_CYCLE = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Ran:
    """A version that ran in this cycle run, with its state now."""

    model_id: str
    version_id: int
    version: str
    role: str
    state: str
    status_now: str
    role_now: str
    last_transition: int | None

    @property
    def is_still_active_primary(self) -> bool:
        return self.role == Role.PRIMARY.value and self.status_now == "ACTIVE" and self.role_now == Role.PRIMARY.value

    @property
    def judgment(self) -> Judgment:
        """What the review read when it judged: what it acts on, and only on."""
        return Judgment(self.version_id, self.status_now, self.role_now, self.last_transition)


def review_cycle(
    settings: Settings, dag_run_id: str, cycle: datetime, context: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Review every model that ran in the cycle run; return what was done (also logged)."""
    try:
        with registry_connection(settings, application_name="models_core:review") as conn:
            review = _Review(conn, settings, dag_run_id, cycle, context)
            ran = review.ran()
            policies = review.registry.guards.healing_policies()
            actions: list[dict[str, Any]] = []
            for model_id in sorted({r.model_id for r in ran}):
                try:
                    actions += review.model(
                        model_id,
                        [r for r in ran if r.model_id == model_id],
                        policies.get(model_id, dict(DEFAULT_POLICY)),
                    )
                except Exception as exc:  # one model's trouble must not stop the others' review
                    log.exception("self-healing review of %s failed; the other models are still reviewed", model_id)
                    conn.rollback()
                    actions.append(
                        {"kind": "review_failed", "model_id": model_id, "message": f"{type(exc).__name__}: {exc}"}
                    )
            return actions
    except psycopg2.Error as exc:
        log.error(
            "self-healing review of cycle %s not done: the registry could not be read (%s)",
            cycle.isoformat(),
            " ".join(str(exc).split()),
        )
        return [{"kind": "review_failed", "model_id": None, "message": str(exc)}]


class _Review:
    """One cycle run's review, on one connection."""

    def __init__(
        self, conn: PgConnection, settings: Settings, dag_run_id: str, cycle: datetime, context: Mapping[str, Any]
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.dag_run_id = dag_run_id
        self.cycle = cycle
        self.context = context
        self.registry = ModelRegistry(conn, SYSTEM)

    def ran(self) -> list[_Ran]:
        return [_Ran(*row) for row in self._fetch("ran_this_run", {"dag_run_id": self.dag_run_id})]

    def model(self, model_id: str, ran: list[_Ran], policy: dict[str, Any]) -> list[dict[str, Any]]:
        """Review one model: ERROR for its failing versions (with a rollback for a failing
        PRIMARY, as the policy says), then its PRIMARY's degradation.

        A model with no failure in this run and no degradation rule costs no query.
        """
        actions: list[dict[str, Any]] = []
        k = policy["error_after_failures"] or self.settings.error_after_failures
        for version in (r for r in ran if r.state == "failed" and r.status_now == "ACTIVE"):
            failing = self._failing(version, k)
            if failing is None:
                continue
            if version.role_now == Role.PRIMARY.value and policy["on_primary_error"] == "rollback":
                actions += self._error_and_rollback(version, policy, *failing)
                return actions
            actions += self._error(version, *failing)
        primary = next((r for r in ran if r.is_still_active_primary), None)
        if primary is not None and (policy["max_failure_rate"] is not None or policy["metric_thresholds"]):
            broken = self._broken_rules(primary, policy)
            if broken:
                message, figures = broken
                actions += self._degraded(primary, policy, message, figures)
        return actions

    # ---- 1. ERROR ---------------------------------------------------------------------

    def _failing(self, version: _Ran, k: int) -> tuple[str, dict[str, Any]] | None:
        """(reason, figures) when the version's last ``k`` cycles all failed, else None."""
        recent = self._fetch("recent_outcomes", {"version_id": version.version_id, "limit": k})
        if len(recent) < k or any(state != "failed" for _, state, _ in recent):
            return None
        failures = [
            {"cycle": cycle.isoformat(), "error": reason or "failed without a recorded message"}
            for cycle, _, reason in reversed(recent)
        ]
        reason = f"failed {k} cycles in a row: " + "; ".join(f"{f['cycle']}: {f['error']}" for f in failures)
        return reason, {"rule": "error_after_failures", "k": k, "failures": failures}

    def _error(self, version: _Ran, reason: str, figures: dict[str, Any]) -> list[dict[str, Any]]:
        """Move ``version`` to ERROR if it is still in the state judged; the action, if any."""
        try:
            before = self.registry.lifecycle.mark_error(
                version.model_id, version.version, reason, figures, judged=version.judgment
            )
        except LifecycleError as exc:
            return self._cannot_act(version, "put it in ERROR", exc)
        if before is None:
            return self._cannot_act(version, "put it in ERROR", None)
        message = (
            f"{version.model_id}@{version.version} ({before.role}) is now in ERROR and does not run until "
            f"`modelreg reactivate {version.model_id} {version.version}`: {reason}"
        )
        action = self._record("error", version, message, figures)
        return [action] if action else []

    def _error_and_rollback(
        self, primary: _Ran, policy: dict[str, Any], reason: str, figures: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """A failing PRIMARY's ERROR and the rollback it triggers, in one transaction."""
        message = f"{primary.model_id}@{primary.version} (PRIMARY) {reason}"
        try:
            before, rolled = self.registry.lifecycle.error_and_rollback(
                primary.model_id, primary.version, primary.judgment, reason, figures, f"automatic rollback: {message}"
            )
        except LifecycleError as exc:
            return self._cannot_act(primary, "put it in ERROR and roll back", exc)
        if before is None or rolled is None:  # both None: the version changed since it was judged
            return self._cannot_act(primary, "put it in ERROR and roll back", None)
        actions = [
            a
            for a in [
                self._record(
                    "error",
                    primary,
                    (
                        f"{primary.model_id}@{primary.version} (PRIMARY) is now in ERROR and does not run until "
                        f"`modelreg reactivate {primary.model_id} {primary.version}`: {reason}"
                    ),
                    figures,
                )
            ]
            if a
        ]
        if isinstance(rolled, LifecycleError):
            return actions + self._alert(
                primary,
                policy,
                f"{message}. No automatic rollback: {rolled}. {primary.model_id} has no ACTIVE PRIMARY now",
                figures,
            )
        text = (
            f"{primary.model_id}: PRIMARY {primary.version} automatically rolled back to {rolled.promoted} "
            f"({primary.version} is now in ERROR): {message}"
        )
        action = self._record("rollback", primary, text, {**figures, "restored": rolled.promoted})
        return actions + ([action] if action else [])

    def _cannot_act(self, version: _Ran, what: str, exc: LifecycleError | None) -> list[dict[str, Any]]:
        """Say why the review did not act; the next cycle's review judges again."""
        why = (
            str(exc)
            if exc is not None
            else (f"it changed after the review judged it (it was {version.status_now} {version.role_now})")
        )
        log.warning(
            "self-healing did not %s for %s@%s: %s; the next review judges again",
            what,
            version.model_id,
            version.version,
            why,
        )
        return [
            {
                "kind": "not_acted",
                "model_id": version.model_id,
                "version": version.version,
                "message": f"did not {what}: {why}",
            }
        ]

    # ---- 2. a broken PRIMARY ----------------------------------------------------------

    def _broken_rules(self, primary: _Ran, policy: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(message, figures) when the PRIMARY breaks a degradation rule over the window, else None."""
        rules = {
            "min_cycles": policy["min_cycles"],
            "max_failure_rate": policy["max_failure_rate"],
            "metric_thresholds": policy["metric_thresholds"],
        }
        window = timedelta(hours=policy["window_hours"])
        checks = self.registry.evidence.check_rules(
            rules, self._record_of(primary), window, self.cycle + _INCLUDE_CYCLE
        )
        if not all(c.passed for c in checks if c.name == "min_cycles"):
            return None  # too few cycles in the window to judge
        broken = [c for c in checks if c.name != "min_cycles" and not c.passed and c.actual is not None]
        if not broken:
            return None
        message = (
            f"{primary.model_id}@{primary.version} (PRIMARY) breaks its degradation rules over the "
            f"{policy['window_hours']:g} h up to cycle {self.cycle.isoformat()}: "
            + "; ".join(f"{c.name} needs {c.threshold}, measured {c.actual:.4g}" for c in broken)
        )
        return message, {
            "rule": "degradation",
            "window_hours": policy["window_hours"],
            "checks": [asdict(c) for c in checks],
        }

    def _degraded(
        self, primary: _Ran, policy: dict[str, Any], message: str, figures: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Roll back a degraded PRIMARY, or alert, as the policy says and the cool-down allows."""
        if policy["on_primary_error"] != "rollback":
            return self._alert(primary, policy, f"{message}. Policy on_primary_error = alert: no rollback", figures)
        cooling_until = self._cooling_until(primary.model_id, policy)
        if cooling_until is not None:
            return self._alert(
                primary,
                policy,
                f"{message}. No automatic rollback before "
                f"{cooling_until.isoformat(timespec='seconds')} (cool-down after the last "
                "PRIMARY change)",
                figures,
            )
        try:
            rolled = self.registry.lifecycle.rollback(
                primary.model_id, reason=f"automatic rollback: {message}", figures=figures, judged=primary.judgment
            )
        except (StaleJudgment, ChangeInProgress) as exc:
            return self._cannot_act(primary, "roll back", exc)
        except LifecycleError as exc:
            return self._alert(primary, policy, f"{message}. No automatic rollback: {exc}", figures)
        text = (
            f"{primary.model_id}: PRIMARY {primary.version} automatically rolled back to {rolled.promoted} "
            f"({primary.version} is now INACTIVE): {message}"
        )
        action = self._record("rollback", primary, text, {**figures, "restored": rolled.promoted})
        return [action] if action else []

    def _cooling_until(self, model_id: str, policy: dict[str, Any]) -> datetime | None:
        ((changed_at,),) = self._fetch("last_primary_change", {"model_id": model_id})
        until = changed_at + timedelta(minutes=policy["cooldown_minutes"]) if changed_at else None
        return until if until and until > datetime.now(UTC) else None

    def _alert(
        self, version: _Ran, policy: dict[str, Any], message: str, figures: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """An alert, unless one was sent for this version within the cool-down."""
        ((last,),) = self._fetch(
            "last_event", {"model_id": version.model_id, "kind": "alert", "version_id": version.version_id}
        )
        if last and datetime.now(UTC) - last < timedelta(minutes=policy["cooldown_minutes"]):
            log.info("%s@%s: alert not repeated within the cool-down: %s", version.model_id, version.version, message)
            return []
        action = self._record("alert", version, message, figures)
        return [action] if action else []

    # ---- 3. record and notify ---------------------------------------------------------

    def _record(self, kind: str, version: _Ran, message: str, figures: dict[str, Any]) -> dict[str, Any] | None:
        """Record the action once for this run and notify it; None when this run already had it."""
        event = {
            "kind": kind,
            "model_id": version.model_id,
            "version": version.version,
            "version_id": version.version_id,
            "message": message,
            "figures": figures,
            "dag_run_id": self.dag_run_id,
            "cycle": self.cycle.isoformat(),
        }
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                queries("healing/healing.sql")["insert_event"],
                {**event, "cycle": self.cycle, "figures": json.dumps(figures, default=str)},
            )
            if cur.fetchone() is None:
                return None
        log.warning("self-healing %s: %s", kind, message)
        event["notified"] = notify(self.settings, self.context, event)
        return event

    def _record_of(self, version: _Ran) -> VersionRecord:
        record = read_version(self.conn, version.model_id, version.version)
        if record is None:
            raise LifecycleError(f"{version.model_id}@{version.version} was deleted during the review")
        return record

    def _fetch(self, name: str, params: dict[str, Any]) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(queries("healing/healing.sql")[name], params)
            rows = cur.fetchall()
        self.conn.rollback()
        return rows
