"""What guards a model, and who may change it: quality gates, stage checks, approvals, healing policy.

A model's guards decide which versions may run and which may become its PRIMARY, so changing
them is guarded too: on a model whose promotions need approval, a change of any guard needs
a second person (it becomes a request another person approves, see :mod:`approvals`),
unless the actor may govern (the ``governors`` setting, or the auth manager's configuration
rights). Every value is checked, naming the field, before it is applied or requested; a
guard of a model that has no version is refused (it would be stored and never applied).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from psycopg2.extensions import cursor as PgCursor

from models_core.registry.approvals import ApprovalRequest
from models_core.registry.evidence import GATE_KEYS, GATE_KINDS
from models_core.registry.metadata import TAG_VALUE_MAX_LEN, check_tag_key, check_text
from models_core.registry.session import LifecycleError
from models_core.registry.stage_checks import StageCheckPolicy
from models_core.registry.transitions import decide_guard_change
from models_core.store.sql_files import queries

if TYPE_CHECKING:
    from models_core.registry.model_registry import ModelRegistry

_SQL = "registry/guards.sql"
#: The guards, by the name requests and the audit trail use for them.
GUARDS = ("gates", "checks", "approvals", "policy")

#: A model's self-healing policy: K failed cycles in a row before ERROR (None: the setting
#: error_after_failures), what a broken PRIMARY triggers, and the degradation rules in the
#: gates' vocabulary, judged over window_hours once min_cycles were seen; cooldown_minutes
#: after a PRIMARY change before an automatic rollback may follow it.
POLICY_KEYS = (
    "error_after_failures",
    "on_primary_error",
    "max_failure_rate",
    "metric_thresholds",
    "min_cycles",
    "window_hours",
    "cooldown_minutes",
)
DEFAULT_POLICY: dict[str, Any] = {
    "error_after_failures": None,
    "on_primary_error": "alert",
    "max_failure_rate": None,
    "metric_thresholds": {},
    "min_cycles": 3,
    "window_hours": 1.0,
    "cooldown_minutes": 60.0,
}
ON_PRIMARY_ERROR = ("alert", "rollback")
#: The longest window a rule may look back over (and a cool-down last): a year, as the gates' --window.
MAX_WINDOW_HOURS = 8760


@dataclass(frozen=True)
class ApprovalSetting:
    """Whether a model's promotions need approval, by whom (Airflow user ids; none: any editor) and how many."""

    required: bool = False
    approvers: tuple[str, ...] = ()
    min_approvals: int = 1

    def as_json(self) -> dict[str, Any]:
        return {"required": self.required, "approvers": list(self.approvers), "min_approvals": self.min_approvals}


class Guards:
    """Reads and guarded changes of what guards each model."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.session = registry.session

    # ---- reading ---------------------------------------------------------------------------

    def stage_checks(self, model_id: str) -> StageCheckPolicy:
        """What a version of the model needs before it may run as SHADOW/CHALLENGER."""
        rows = self.session.fetch("stage_checks", {"model_id": model_id}, _SQL)
        return StageCheckPolicy(tuple(rows[0][0]), rows[0][1]) if rows else StageCheckPolicy()

    def approval(self, model_id: str) -> ApprovalSetting:
        """Whether the model's promotions wait for approval, and whose."""
        rows = self.session.fetch("approval_setting", {"model_id": model_id}, _SQL)
        return ApprovalSetting(rows[0][0], tuple(rows[0][1]), rows[0][2]) if rows else ApprovalSetting()

    def healing_policy(self, model_id: str) -> dict[str, Any]:
        """The model's self-healing policy (defaults where it has none)."""
        return self.healing_policies(model_id).get(model_id, dict(DEFAULT_POLICY))

    def healing_policies(self, model_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Every model's policy that differs from the defaults (or ``model_id``'s only), by model_id, in one read."""
        rows = self.session.fetch("healing_policies", {"model_id": model_id}, _SQL)
        return {row[0]: dict(zip(POLICY_KEYS, row[1:])) for row in rows}

    def current(self, model_id: str, guard: str) -> dict[str, Any]:
        """A guard's values now, as a change of it is written."""
        if guard == "gates":
            return self.registry.evidence.gates(model_id)
        if guard == "checks":
            return asdict(self.stage_checks(model_id))
        if guard == "approvals":
            return self.approval(model_id).as_json()
        return self.healing_policy(model_id)

    # ---- changing --------------------------------------------------------------------------

    def set_gates(self, model_id: str, reason: str | None = None, **values: Any) -> dict[str, Any] | ApprovalRequest:
        """Change some of a model's gates; the others keep their current value."""
        return self._change(model_id, "gates", values, reason)

    def set_stage_checks(
        self,
        model_id: str,
        *,
        required_tags: list[str] | tuple[str, ...] | None = None,
        require_description: bool | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | ApprovalRequest:
        """Change some of a model's stage checks; ``required_tags`` entries are ``KEY`` or ``KEY=VALUE``."""
        return self._change(
            model_id,
            "checks",
            {
                "required_tags": None if required_tags is None else list(required_tags),
                "require_description": require_description,
            },
            reason,
        )

    def set_approval(
        self,
        model_id: str,
        *,
        required: bool | None = None,
        approvers: list[str] | None = None,
        min_approvals: int | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | ApprovalRequest:
        """Turn approvals on or off, name the approvers, say how many must approve."""
        return self._change(
            model_id,
            "approvals",
            {"required": required, "approvers": approvers, "min_approvals": min_approvals},
            reason,
        )

    def set_healing_policy(
        self, model_id: str, reason: str | None = None, **values: Any
    ) -> dict[str, Any] | ApprovalRequest:
        """Change some of a model's self-healing policy; the others keep their current value."""
        return self._change(model_id, "policy", values, reason)

    def _change(
        self, model_id: str, guard: str, values: dict[str, Any], reason: str | None
    ) -> dict[str, Any] | ApprovalRequest:
        """Apply a guard change, or on a model under approval (without govern) request it."""
        given = {key: value for key, value in values.items() if value is not None}
        if not given:
            raise LifecycleError(f"{model_id} {guard}: name at least one field to change")
        approvals = self.registry.approvals
        with self.session.change(model_id, graph=guard == "gates") as cur:
            self.session.require_model(cur, model_id)
            new = check_guard(model_id, guard, self.current(model_id, guard) | given)
            required = self.approval(model_id).required
            if not decide_guard_change(self.session.actor, required, model_id):
                # Only the fields asked for: approved later, they apply to the guard as it is then.
                return approvals.request_guard_change(cur, model_id, guard, {key: new[key] for key in given}, reason)
            self.write(cur, model_id, guard, new, reason, basis="governor" if required else None)
        return new

    def apply_requested(
        self, cur: PgCursor, model_id: str, guard: str, asked: dict[str, Any], reason: str | None, request_id: int
    ) -> dict[str, Any]:
        """An approved guard request: the fields it asked for, on the guard as it is now; its new values."""
        new = check_guard(model_id, guard, self.current(model_id, guard) | asked)
        self.write(cur, model_id, guard, new, reason, basis="approved", request_id=request_id)
        return new

    def write(
        self,
        cur: PgCursor,
        model_id: str,
        guard: str,
        values: dict[str, Any],
        reason: str | None,
        *,
        basis: str | None = None,
        request_id: int | None = None,
    ) -> None:
        """Store a checked guard in the caller's change transaction (a direct change or an approved request)."""
        self.session.context(cur, guard, reason, basis=basis, request_id=request_id)
        q = queries(_SQL)
        if guard == "gates":
            cur.execute(
                q["upsert_gates"],
                {**values, "model_id": model_id, "metric_thresholds": json.dumps(values["metric_thresholds"])},
            )
        elif guard == "checks":
            cur.execute(
                q["upsert_stage_checks"],
                {
                    "model_id": model_id,
                    "required_tags": values["required_tags"],
                    "require_description": values["require_description"],
                },
            )
        elif guard == "approvals":
            cur.execute(
                q["upsert_approval_setting"],
                {
                    "model_id": model_id,
                    "required": values["required"],
                    "approvers": values["approvers"],
                    "min_approvals": values["min_approvals"],
                },
            )
        else:
            cur.execute(
                q["upsert_healing_policy"],
                {**values, "model_id": model_id, "metric_thresholds": json.dumps(values["metric_thresholds"])},
            )


def check_guard(model_id: str, guard: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a guard's whole new setting) if the table can hold it, else an error naming the field."""

    def bad(field: str, needs: str) -> LifecycleError:
        return LifecycleError(f"{model_id} {guard}: {field} {needs}, got {values[field]!r}")

    if guard == "gates":
        values = {key: values[key] for key in GATE_KEYS}
        if not _whole(values["min_cycles"], 0):
            raise bad("min_cycles", "must be a whole number of cycles, 0 or more")
        for field in ("max_failure_rate", "min_agreement"):
            if values[field] is not None and not _number_between(values[field], 0, 1):
                raise bad(field, "must be between 0 and 1")
        if values["max_duration_ratio"] is not None and not (
            _number(values["max_duration_ratio"]) and values["max_duration_ratio"] > 0
        ):
            raise bad("max_duration_ratio", "must be more than 0")
        if values["max_score_difference"] is not None and not (
            _number(values["max_score_difference"]) and values["max_score_difference"] >= 0
        ):
            raise bad("max_score_difference", "must be 0 or more")
        if values["min_backtest_cycles"] is not None and not _whole(values["min_backtest_cycles"], 0):
            raise bad("min_backtest_cycles", "must be a whole number of cycles, 0 or more")
        if values["gate_kind"] not in GATE_KINDS:
            raise bad("gate_kind", f"must be one of {', '.join(GATE_KINDS)}")
        _check_thresholds(values, bad)
    elif guard == "checks":
        values = {"required_tags": list(values["required_tags"]), "require_description": values["require_description"]}
        if not all(isinstance(entry, str) for entry in values["required_tags"]):
            raise bad("required_tags", "must be KEY or KEY=VALUE entries")
        for entry in values["required_tags"]:
            key, _, value = entry.partition("=")
            check_tag_key(key, f"the checks of {model_id}")
            check_text(entry, f"the checks of {model_id}")
            if len(value) > TAG_VALUE_MAX_LEN:
                raise bad(
                    "required_tags",
                    f"names tag values of at most {TAG_VALUE_MAX_LEN} characters (no tag "
                    f"can hold more, so the check could never pass)",
                )
        if not isinstance(values["require_description"], bool):
            raise bad("require_description", "must be true or false")
    elif guard == "approvals":
        values = {
            "required": values["required"],
            "approvers": list(values["approvers"]),
            "min_approvals": values["min_approvals"],
        }
        if not isinstance(values["required"], bool):
            raise bad("required", "must be true or false")
        if not all(isinstance(a, str) and a.strip() and len(a) <= 256 for a in values["approvers"]):
            raise bad("approvers", "must be Airflow user ids (non-empty text, up to 256 characters)")
        for approver in values["approvers"]:
            check_text(approver, f"the approvers of {model_id}")
        values["approvers"] = sorted({a.strip() for a in values["approvers"]})
        if not _whole(values["min_approvals"], 1):
            raise bad("min_approvals", "must be a whole number, at least 1")
        if values["approvers"] and values["min_approvals"] > len(values["approvers"]):
            raise bad("min_approvals", f"cannot be more than the {len(values['approvers'])} approvers named")
    elif guard == "policy":
        values = {key: values[key] for key in POLICY_KEYS}
        if values["on_primary_error"] not in ON_PRIMARY_ERROR:
            raise bad("on_primary_error", "must be alert or rollback")
        if values["error_after_failures"] is not None and not _whole(values["error_after_failures"], 1):
            raise bad("error_after_failures", "must be a whole number of cycles, at least 1")
        if values["max_failure_rate"] is not None and not _number_between(values["max_failure_rate"], 0, 1):
            raise bad("max_failure_rate", "must be between 0 and 1")
        if not _whole(values["min_cycles"], 1):
            raise bad("min_cycles", "must be a whole number of cycles, at least 1")
        if not (_number(values["window_hours"]) and 0 < values["window_hours"] <= MAX_WINDOW_HOURS):
            raise bad("window_hours", f"must be more than 0 and at most {MAX_WINDOW_HOURS} (a year)")
        if not (_number(values["cooldown_minutes"]) and 0 <= values["cooldown_minutes"] <= MAX_WINDOW_HOURS * 60):
            raise bad("cooldown_minutes", f"must be 0 or more and at most {MAX_WINDOW_HOURS * 60} (a year)")
        _check_thresholds(values, bad)
    else:
        raise LifecycleError(f"{guard!r} is not a guard; the guards are {', '.join(GUARDS)}")
    return values


def _check_thresholds(values: dict[str, Any], bad: Any) -> None:
    thresholds = values["metric_thresholds"]
    if not isinstance(thresholds, dict) or not all(
        isinstance(key, str)
        and key
        and "\x00" not in key
        and isinstance(bounds, dict)
        and set(bounds) <= {"min", "max"}
        and bounds
        and all(_number(v) for v in bounds.values())
        for key, bounds in thresholds.items()
    ):
        raise bad("metric_thresholds", 'must map metric keys to {"min": number, "max": number} (either or both)')
    empty = sorted(
        key for key, bounds in thresholds.items() if bounds.get("min", -math.inf) > bounds.get("max", math.inf)
    )
    if empty:
        raise bad("metric_thresholds", f"has min above max for {', '.join(empty)}: no value could ever pass")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_between(value: Any, low: float, high: float) -> bool:
    return _number(value) and low <= value <= high


def _whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= 2**31 - 1
