"""What a version has shown, and whether that is enough: stage checks, quality gates, readiness.

The quality gates judge how a version *ran* over a window (cycles, failure rate, its
evaluation against the PRIMARY, metric means); the stage checks whether it is fit to run at
all (:mod:`stage_checks`). One cycle is one piece of evidence however often it ran: the
counts come from ``detection_model_cycle_evidence``, each cycle's latest attempt. The
evaluation gates (agreement, score difference, duration ratio) are decided by the bound of a
95% interval unless the model opts into point gates (:mod:`confidence`). The self-healing
degradation rules are checked by the same :meth:`Evidence.check_rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from models_core.discovery import ModelClass, discover_models, import_model_class
from models_core.registry.confidence import (
    Interval,
    agreement_interval,
    mean_interval,
    more_cycles_for_agreement,
    more_cycles_for_mean,
)
from models_core.registry.ranking import Ranking, best_versions
from models_core.registry.session import LifecycleError, find_version
from models_core.registry.stage_checks import StageCheck, StageCheckPolicy, evaluate_stage_checks
from models_core.settings import load_settings
from models_core.store.registry_reader import VersionRecord

if TYPE_CHECKING:
    from models_core.registry.model_registry import ModelRegistry

DEFAULT_GATES: dict[str, Any] = {
    "min_cycles": 12,
    "max_failure_rate": 0.05,
    "min_agreement": None,
    "max_duration_ratio": None,
    "max_score_difference": None,
    "metric_thresholds": {},
    "gate_kind": "interval",
    "min_backtest_cycles": None,
}
GATE_KEYS = tuple(DEFAULT_GATES)
#: ``interval``: an evaluation gate passes when the bound of its 95% interval clears the
#: threshold; ``point``: when the estimate does (a model opts into it explicitly).
GATE_KINDS = ("interval", "point")
_SQL = "registry/evidence.sql"


@dataclass(frozen=True)
class GateCheck:
    """One quality gate: its threshold, the measured value and whether it passed.

    ``kind`` says what decided: ``point``, the measured value itself (this class), or
    ``interval``, the bound of its 95% interval (:class:`IntervalGateCheck`).
    """

    name: str
    threshold: str
    actual: float | None
    passed: bool
    kind: str = "point"

    def measured(self) -> str:
        """The figure as people read it: four significant digits, or ``nothing``."""
        return "nothing" if self.actual is None else f"{self.actual:.4g}"

    def wanting(self) -> str:
        """What more evidence would do (only an interval gate knows)."""
        return ""


@dataclass(frozen=True)
class IntervalGateCheck(GateCheck):
    """A gate its 95% interval decided: the interval (None: too few cycles for one), the
    evidence behind it (inputs, distinct cycles) and the cycles more at the current rate that
    would make it pass (0: it passes; None: more cycles would not)."""

    kind: str = "interval"
    interval: tuple[float, float] | None = None
    inputs: int = 0
    cycles: int = 0
    more_cycles: int | None = None

    def measured(self) -> str:
        """``1 (95% interval 0.3424-1, 2 inputs in 2 cycles)``."""
        if self.actual is None:
            return "nothing"
        evidence = f"{self.inputs} inputs in {self.cycles} cycles"
        if self.interval is None:
            return f"{self.actual:.4g} (no 95% interval from {evidence})"
        low, high = self.interval
        return f"{self.actual:.4g} (95% interval {low:.4g}-{high:.4g}, {evidence})"

    def wanting(self) -> str:
        """``; about 14 more cycles at this rate would pass it`` for a gate that failed."""
        if self.passed:
            return ""
        if self.more_cycles is None:
            return "; more cycles at this rate would not pass it"
        return f"; about {self.more_cycles} more cycles at this rate would pass it"


@dataclass
class Readiness:
    """Whether a version may be activated or promoted now, with every figure: ``--check``.

    ``problems`` are what no figure can fix (from the transition policy: already the
    PRIMARY, ARCHIVED, in ERROR); ``checks`` are the stage checks and ``gates`` the quality
    gates (promotion only).
    """

    model_id: str
    version: str
    action: str
    problems: list[str]
    checks: list[StageCheck]
    gates: list[GateCheck]
    approval_required: bool

    @property
    def figures_pass(self) -> bool:
        return all(c.passed for c in self.checks) and all(g.passed for g in self.gates)

    @property
    def passed(self) -> bool:
        return not self.problems and self.figures_pass

    def figures_json(self) -> list[dict[str, Any]]:
        """The checks' and gates' figures as stored with the change in the audit trail."""
        return [asdict(c) for c in self.checks] + [asdict(g) for g in self.gates]

    def as_json(self) -> dict[str, Any]:
        """The report ``--check`` prints with ``--json`` (and the registry page shows)."""
        return {
            "model_id": self.model_id,
            "version": self.version,
            "action": self.action,
            "passed": self.passed,
            "problems": self.problems,
            "approval_required": self.approval_required,
            "checks": [asdict(c) for c in self.checks],
            "gates": [asdict(g) for g in self.gates],
        }


def describe_failures(checks: Iterable[StageCheck | GateCheck]) -> str:
    """The failed checks and gates in one line: ``name needs THRESHOLD, found/measured ACTUAL; ...``."""
    return "; ".join(
        f"{c.name} needs {c.threshold}, "
        + (f"found {c.actual}" if isinstance(c, StageCheck) else f"measured {c.measured()}{c.wanting()}")
        for c in checks
        if not c.passed
    )


class ChecksFailed(LifecycleError):
    """A change refused by its stage checks or quality gates; ``checks`` has every figure.

    The message says which refused it (``refused by its checks``, ``... quality gates`` or
    both): a refusal by gates alone reads as it did before stage checks existed.
    """

    def __init__(self, change: str, checks: Sequence[GateCheck | StageCheck], advice: str) -> None:
        self.checks = checks
        failed = {"checks" if isinstance(c, StageCheck) else "quality gates" for c in checks if not c.passed}
        refused_by = " and ".join(sorted(failed))
        super().__init__(f"{change} refused by its {refused_by}: {describe_failures(checks)}. {advice}")


class GatesFailed(ChecksFailed):
    """A promotion refused by its stage checks or quality gates."""

    def __init__(self, label: str, readiness: Readiness) -> None:
        fix = (
            "Fix what the checks name, let it run longer"
            if not all(c.passed for c in readiness.checks)
            else "Let it run longer"
        )
        super().__init__(
            f"promotion of {label}",
            [*readiness.checks, *readiness.gates],
            f"{fix}, change the gates, or use --force --reason",
        )


@dataclass(frozen=True)
class EvaluationGate:
    """A gate on the version's evaluation against the PRIMARY, judged by estimate or by interval.

    ``metric`` is the per-cycle figure the cycle stored; ``interval_of`` turns the cycles'
    rows of ``cycle_evaluations`` into an :class:`Interval`.
    """

    name: str
    metric: str
    column: int  # of the per-cycle figure in cycle_evaluations' rows
    at_least: bool
    interval_of: Callable[[list[tuple[Any, ...]]], Interval]
    more_cycles: Callable[[Interval, float], int | None]

    def _threshold(self, value: float) -> str:
        return f"{'>=' if self.at_least else '<='} {value}"

    def _clears(self, figure: float | None, value: float) -> bool:
        return figure is not None and (figure >= value if self.at_least else figure <= value)

    def by_point(self, value: float, means: dict[str, float], prefix: str = "") -> GateCheck:
        figure = means.get(self.metric)
        return GateCheck(prefix + self.name, self._threshold(value), figure, self._clears(figure, value))

    def by_interval(self, value: float, per_cycle: list[tuple[Any, ...]], prefix: str = "") -> IntervalGateCheck:
        found = self.interval_of(per_cycle)
        bound = found.low if self.at_least else found.high
        return IntervalGateCheck(
            prefix + self.name,
            self._threshold(value),
            found.estimate,
            self._clears(bound, value),
            interval=None if found.low is None or found.high is None else (found.low, found.high),
            inputs=found.inputs,
            cycles=found.cycles,
            more_cycles=self.more_cycles(found, value),
        )


def _agreed(row: tuple[Any, ...]) -> tuple[int, int] | None:
    """A cycle's (inputs agreed, inputs compared) from its row (cycle, compared, agreed,
    agreement, ...); cycles stored before ``eval_inputs_agreed`` existed give it back from the
    agreement rate. None: the cycle compared no labels."""
    _cycle, compared, agreed, agreement = row[:4]
    if agreement is None or not compared or compared < 1:
        return None
    inputs = round(compared)
    found = round(agreed if agreed is not None else agreement * compared)
    return (min(max(found, 0), inputs), inputs)  # a model's own evaluate() may store any number


#: The evaluation gates, in the order checks list them; the columns are those of
#: ``cycle_evaluations``: cycle, compared, agreed, agreement, score difference, duration ratio.
EVALUATION_GATES = (
    EvaluationGate(
        "min_agreement",
        "eval_agreement",
        3,
        True,
        lambda rows: agreement_interval([pair for row in rows if (pair := _agreed(row)) is not None]),
        more_cycles_for_agreement,
    ),
    EvaluationGate(
        "max_duration_ratio",
        "eval_duration_ratio",
        5,
        False,
        lambda rows: mean_interval([(row[5], 1.0) for row in rows if row[5] is not None]),
        more_cycles_for_mean,
    ),
    EvaluationGate(
        "max_score_difference",
        "eval_score_mean_abs_diff",
        4,
        False,
        lambda rows: mean_interval([(row[4], row[1] or 0.0) for row in rows if row[4] is not None]),
        more_cycles_for_mean,
    ),
)


class Evidence:
    """Reads of what versions showed, and the checks and gates against it."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.session = registry.session
        self._classes: dict[str, ModelClass] | None = None  # discovered when a check first needs them

    def gates(self, model_id: str) -> dict[str, Any]:
        rows = self.session.fetch("gates", {"model_id": model_id}, _SQL)
        return dict(zip(GATE_KEYS, rows[0])) if rows else dict(DEFAULT_GATES)

    def evaluate_gates(self, model_id: str, version: VersionRecord, window: timedelta) -> list[GateCheck]:
        """The model's quality gates against what ``version`` measured over the window."""
        return self.check_rules(self.gates(model_id), version, window, datetime.now(UTC))

    def check_rules(
        self, gates: dict[str, Any], version: VersionRecord, window: timedelta, end: datetime
    ) -> list[GateCheck]:
        """Rules in the gates' vocabulary against what ``version`` measured in the window ending at ``end``.

        ``gates`` has ``min_cycles`` and ``metric_thresholds``, and optionally
        ``max_failure_rate`` and the :data:`EVALUATION_GATES` (None: not checked), decided by
        their intervals when ``gate_kind`` is ``interval`` (a rule without it: point figures).
        The quality gates and the self-healing degradation rules are both checked here.
        """
        span = {"version_id": version.id, "start": end - window, "end": end}
        ((cycles, failed),) = self.session.fetch("version_outcomes", span, _SQL)
        means = {key: mean for key, mean, _count in self.session.fetch("version_metric_means", span, _SQL)}
        checks = [GateCheck("min_cycles", f">= {gates['min_cycles']}", float(cycles), cycles >= gates["min_cycles"])]
        failure_rate = failed / cycles if cycles else None
        if gates.get("max_failure_rate") is not None:
            checks.append(
                GateCheck(
                    "max_failure_rate",
                    f"<= {gates['max_failure_rate']}",
                    failure_rate,
                    failure_rate is not None and failure_rate <= gates["max_failure_rate"],
                )
            )
        evaluated = [gate for gate in EVALUATION_GATES if gates.get(gate.name) is not None]
        if evaluated and gates.get("gate_kind", "point") == "interval":
            per_cycle = self.session.fetch("cycle_evaluations", {**span, "evidence": "live"}, _SQL)
            checks += [gate.by_interval(gates[gate.name], per_cycle) for gate in evaluated]
        else:
            checks += [gate.by_point(gates[gate.name], means) for gate in evaluated]
        for key, bounds in sorted(gates["metric_thresholds"].items()):
            value = means.get(key)
            low, high = bounds.get("min"), bounds.get("max")
            passed = value is not None and (low is None or value >= low) and (high is None or value <= high)
            threshold = " and ".join(
                part
                for part in (f">= {low}" if low is not None else "", f"<= {high}" if high is not None else "")
                if part
            )
            checks.append(GateCheck(f"metric:{key}", threshold, value, passed))
        if gates.get("min_backtest_cycles") is not None:
            checks += self._backtest_gates(gates, version, evaluated)
        return checks

    def _backtest_gates(
        self, gates: dict[str, Any], version: VersionRecord, evaluated: list[EvaluationGate]
    ) -> list[GateCheck]:
        """The backtest evidence the gates ask for, beside the live one: how many past cycles were
        backtested (any time: they are past cycles by design), and each evaluation gate again on
        them, named ``backtest:<gate>``."""
        every = {"version_id": version.id, "start": None, "end": None, "evidence": "backtest"}
        rows = self.session.fetch("cycle_evaluations", every, _SQL)
        needed = gates["min_backtest_cycles"]
        checks = [GateCheck("min_backtest_cycles", f">= {needed}", float(len(rows)), len(rows) >= needed)]
        if gates.get("gate_kind", "point") == "interval":
            return checks + [gate.by_interval(gates[gate.name], rows, prefix="backtest:") for gate in evaluated]
        means = {
            gate.metric: sum(values) / len(values)
            for gate in evaluated
            if (values := [row[gate.column] for row in rows if row[gate.column] is not None])
        }
        return checks + [gate.by_point(gates[gate.name], means, prefix="backtest:") for gate in evaluated]

    def compare(self, model_id: str, first: str, second: str, window: timedelta) -> dict[str, Any]:
        """Two versions side by side: cycles, failures and every metric's mean over the window."""
        end = datetime.now(UTC)
        versions = self.session.versions(model_id)
        sides = {}
        for version_str in (first, second):
            version = find_version(versions, model_id, version_str)
            span = {"version_id": version.id, "start": end - window, "end": end}
            ((cycles, failed),) = self.session.fetch("version_outcomes", span, _SQL)
            sides[version_str] = {
                "role": version.role,
                "status": version.status,
                "cycles": cycles,
                "failed": failed,
                "metrics": {k: m for k, m, _ in self.session.fetch("version_metric_means", span, _SQL)},
            }
        return {"model_id": model_id, "window_hours": window.total_seconds() / 3600, "versions": sides}

    def latest_metrics(self, model_id: str) -> dict[int, dict[str, Any]]:
        """Each version's metrics of its latest stored cycle, by version id."""
        latest: dict[int, dict[str, Any]] = {}
        for version_id, cycle, key, value in self.session.fetch("latest_metrics", {"model_id": model_id}, _SQL):
            entry = latest.setdefault(version_id, {"cycle_started_at": cycle.isoformat(), "metrics": {}})
            entry["metrics"][key] = value
        return latest

    def best(
        self,
        model_id: str,
        metric: str,
        *,
        window: timedelta,
        min_cycles: int = 1,
        lower_is_better: bool = False,
        include_defaults: bool = False,
    ) -> Ranking:
        """The model's versions that ran in the window, ranked by the mean of ``metric``
        (see :func:`~models_core.registry.ranking.best_versions`)."""
        return best_versions(
            self.session.conn,
            model_id,
            metric,
            window=window,
            min_cycles=min_cycles,
            lower_is_better=lower_is_better,
            include_defaults=include_defaults,
        )

    # ---- stage checks ---------------------------------------------------------------------

    def evaluate_stage_checks(self, version: VersionRecord) -> list[StageCheck]:
        """The model's stage checks, and its class's ``params_schema``, against ``version``."""
        return self.stage_checks_of([version])[version.id]

    def stage_checks_of(self, versions: list[VersionRecord]) -> dict[int, list[StageCheck]]:
        """:meth:`evaluate_stage_checks` of each version, by id; each model's checks and schema
        read once (a model's page shows all its versions' checks)."""
        policies: dict[str, tuple[StageCheckPolicy, dict[str, Any] | None, str]] = {}
        found: dict[int, list[StageCheck]] = {}
        for version in versions:
            if version.model_id not in policies:
                policies[version.model_id] = (
                    self.registry.guards.stage_checks(version.model_id),
                    *self._params_schema(version.model_id),
                )
            found[version.id] = evaluate_stage_checks(version, *policies[version.model_id])
        return found

    def _params_schema(self, model_id: str) -> tuple[dict[str, Any] | None, str]:
        """The JSON Schema the model's class declares for params (if any), and the class name."""
        if self._classes is None:
            package = load_settings().models_package
            try:
                self._classes = discover_models(package).classes
            except ImportError as exc:
                raise LifecycleError(
                    f"cannot import the models package {package!r} to check params against its "
                    f"classes' params_schema ({exc}); set [model_registry] models_package and "
                    "the Python path as the DAG processor has them"
                ) from None
        found = self._classes.get(model_id)
        if found is None:
            return None, ""
        cls = import_model_class(found.class_path)
        return cls.params_schema, cls.__qualname__

    # ---- readiness ------------------------------------------------------------------------

    def readiness(
        self,
        target: VersionRecord,
        action: str,
        problems: list[str],
        *,
        window: timedelta | None,
        approval_required: bool | None = None,
    ) -> Readiness:
        """Every figure ``action`` needs of ``target``: the stage checks, and with a ``window``
        (a change into PRIMARY) the quality gates over it. ``approval_required``: whether the
        model's promotions need approval, when the caller has read it already."""
        gates = self.evaluate_gates(target.model_id, target, window) if window is not None else []
        if approval_required is None:
            approval_required = self.registry.guards.approval(target.model_id).required
        return Readiness(
            target.model_id,
            target.version,
            action,
            problems,
            self.evaluate_stage_checks(target),
            gates,
            approval_required,
        )
