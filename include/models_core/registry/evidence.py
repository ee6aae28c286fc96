"""What a version has shown, and whether that is enough: stage checks, quality gates, readiness.

The quality gates judge how a version *ran* over a window (cycles, failure rate, its
evaluation against the PRIMARY, metric means); the stage checks whether it is fit to run at
all (:mod:`stage_checks`). One cycle is one piece of evidence however often it ran: the
counts come from ``detection_model_cycle_evidence``, each cycle's latest attempt. The
self-healing degradation rules are checked by the same :meth:`Evidence.check_rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from models_core.discovery import ModelClass, discover_models, import_model_class
from models_core.registry.ranking import Ranking, best_versions
from models_core.registry.session import LifecycleError, find_version
from models_core.registry.stage_checks import StageCheck, StageCheckPolicy, describe_failures, evaluate_stage_checks
from models_core.settings import load_settings
from models_core.store.registry_reader import VersionRecord

if TYPE_CHECKING:
    from models_core.registry.model_registry import ModelRegistry

DEFAULT_GATES: dict[str, Any] = {
    "min_cycles": 12,
    "max_failure_rate": 0.05,
    "min_agreement": None,
    "max_duration_ratio": None,
    "metric_thresholds": {},
}
GATE_KEYS = tuple(DEFAULT_GATES)
_SQL = "registry/evidence.sql"


@dataclass(frozen=True)
class GateCheck:
    """One quality gate: its threshold, the measured value and whether it passed."""

    name: str
    threshold: str
    actual: float | None
    passed: bool


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
            "gates": [asdict(c) for c in self.gates],
        }


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
        ``max_failure_rate``, ``min_agreement`` and ``max_duration_ratio`` (None: not checked).
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
        if gates.get("min_agreement") is not None:
            agreement = means.get("eval_agreement")
            checks.append(
                GateCheck(
                    "min_agreement",
                    f">= {gates['min_agreement']}",
                    agreement,
                    agreement is not None and agreement >= gates["min_agreement"],
                )
            )
        if gates.get("max_duration_ratio") is not None:
            ratio = means.get("eval_duration_ratio")
            checks.append(
                GateCheck(
                    "max_duration_ratio",
                    f"<= {gates['max_duration_ratio']}",
                    ratio,
                    ratio is not None and ratio <= gates["max_duration_ratio"],
                )
            )
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
        return checks

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
        self, target: VersionRecord, action: str, problems: list[str], *, window: timedelta | None
    ) -> Readiness:
        """Every figure ``action`` needs of ``target``: the stage checks, and with a ``window``
        (a change into PRIMARY) the quality gates over it."""
        gates = self.evaluate_gates(target.model_id, target, window) if window is not None else []
        return Readiness(
            target.model_id,
            target.version,
            action,
            problems,
            self.evaluate_stage_checks(target),
            gates,
            self.registry.guards.approval(target.model_id).required,
        )
