"""The registry lifecycle as a Python API; the ``modelreg`` CLI is a thin layer on it.

Versions move DRAFT -> ACTIVE (SHADOW/CHALLENGER, behind the model's stage checks) ->
PRIMARY (by ``promote``, behind the stage checks and quality gates, and a second person's
approval where the model asks for one) -> ARCHIVED/INACTIVE; the product moves a version
that keeps failing to ERROR (``mark_error``) and ``reactivate`` brings it back. A version
also carries a description, tags and a metadata document. Every change runs in one
transaction that holds a per-model lock (a concurrent change to the same model gets a clear error instead of
waiting); changes that depend on the whole graph (dependencies, gates) also take a
registry-wide lock in turn and read the graph only once they hold it. Database triggers
write every change into detection_model_transitions, whoever makes it; the API only tells
them the change's context (action, actor, reason, gate figures) for its transaction, so
the history is complete and has one row per change, API or plain SQL alike.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor

from models_core.discovery import ModelClass, discover_models, import_model_class
from models_core.errors import ModelRegistryError
from models_core.model import Role, check_model_id
from models_core.plan import Plan, find_cycles
from models_core.registry.approvals import ApprovalRequest, check_decidable, check_no_pending
from models_core.registry.metadata import MetadataError, check_metadata, check_tag_key, check_text, tags_match
from models_core.registry.ranking import Ranking, best_versions
from models_core.registry.stage_checks import StageCheck, StageCheckPolicy, describe_failures, evaluate_stage_checks
from models_core.settings import load_settings
from models_core.store.registry_reader import VersionRecord
from models_core.store.sql_files import queries

_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
SHADOW_ROLES = (Role.SHADOW.value, Role.CHALLENGER.value)
DEFAULT_GATES = {"min_cycles": 12, "max_failure_rate": 0.05, "min_agreement": None,
                 "max_duration_ratio": None, "metric_thresholds": {}}
#: How long a graph change waits for another one to finish before it gives up.
GRAPH_LOCK_TIMEOUT = "10s"
#: A model's self-healing policy: K failed cycles in a row before ERROR (None: the setting
#: error_after_failures), what a broken PRIMARY triggers, and the degradation rules in the
#: gates' vocabulary, judged over window_hours once min_cycles were seen; cooldown_minutes
#: after a PRIMARY change before an automatic rollback may follow it.
POLICY_KEYS = ("error_after_failures", "on_primary_error", "max_failure_rate", "metric_thresholds",
               "min_cycles", "window_hours", "cooldown_minutes")
DEFAULT_POLICY = {"error_after_failures": None, "on_primary_error": "alert", "max_failure_rate": None,
                  "metric_thresholds": {}, "min_cycles": 3, "window_hours": 1.0, "cooldown_minutes": 60.0}
ON_PRIMARY_ERROR = ("alert", "rollback")


class LifecycleError(ModelRegistryError):
    """A lifecycle command cannot be carried out; the message says why and what to do."""


def semver_key(version: str) -> tuple[int, int, int]:
    """Sort key that orders 1.10.0 after 1.9.0."""
    match = _SEMVER.fullmatch(version)
    if not match:
        raise LifecycleError(f"version {version!r} is not MAJOR.MINOR.PATCH (e.g. 1.4.0)")
    return int(match[1]), int(match[2]), int(match[3])


@dataclass(frozen=True)
class GateCheck:
    """One quality gate: its threshold, the measured value and whether it passed."""

    name: str
    threshold: str
    actual: float | None
    passed: bool


@dataclass
class Promotion:
    model_id: str
    promoted: str
    previous: str | None
    previous_now: str | None
    forced: bool
    gates: list[GateCheck] = field(default_factory=list)
    checks: list[StageCheck] = field(default_factory=list)


@dataclass
class Readiness:
    """Whether a version may be activated or promoted now, with every figure: ``--check``.

    ``problems`` are what no figure can fix (the version is already the PRIMARY, or
    ARCHIVED); ``checks`` are the stage checks and ``gates`` the quality gates (promotion only).
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
        return all(c.passed for c in [*self.checks, *self.gates])

    @property
    def passed(self) -> bool:
        return not self.problems and self.figures_pass

    def figures_json(self) -> list[dict[str, Any]]:
        """The checks' and gates' figures as stored with the change in the audit trail."""
        return [asdict(c) for c in [*self.checks, *self.gates]]

    def as_json(self) -> dict[str, Any]:
        """The report ``--check`` prints with ``--json`` (and the registry page shows)."""
        return {"model_id": self.model_id, "version": self.version, "action": self.action, "passed": self.passed,
                "problems": self.problems, "approval_required": self.approval_required,
                "checks": [asdict(c) for c in self.checks], "gates": [asdict(c) for c in self.gates]}


class ModelRegistry:
    """Lifecycle operations on the registry through one connection."""

    def __init__(self, conn: PgConnection, *, actor: str) -> None:
        self.conn = conn
        self.actor = actor
        self._changing = False  # inside _change(): reads must not end its transaction
        self._classes: dict[str, ModelClass] | None = None  # discovered when a check first needs them

    # ---- reading ----------------------------------------------------------------------

    def versions(self, model_id: str | None = None,
                 tags: Iterable[tuple[str, str | None]] = ()) -> list[VersionRecord]:
        """Versions of one model (or all), newest version first within a model.

        ``tags`` keeps only versions with every (key, value) tag; a None value means any value.
        """
        wanted = list(tags)
        rows = [VersionRecord(*row) for row in self._fetch("all_versions", {})]
        rows = [v for v in rows if (model_id is None or v.model_id == model_id) and tags_match(v.tags, wanted)]
        return sorted(rows, key=lambda v: (v.model_id, tuple(-n for n in semver_key(v.version))))

    def metadata(self, model_id: str, version: str) -> dict[str, Any]:
        """A version's metadata document; an unknown version is an error naming the known ones."""
        return self._version(self.versions(model_id), model_id, version).metadata

    def dependencies(self) -> list[tuple[str, str]]:
        return self._fetch("dependencies", {})

    def show(self, model_id: str, tags: Iterable[tuple[str, str | None]] = ()) -> dict[str, Any]:
        """A model's versions (those with ``tags`` only, if given) with their tags, metadata and
        latest metrics; its dependencies, gates, stage checks and approval requests."""
        if not self.versions(model_id):
            raise LifecycleError(f"unknown model {model_id!r}: it has no versions (see `modelreg list`)")
        versions = self.versions(model_id, tags)
        latest: dict[int, dict[str, Any]] = {}
        for version_id, cycle, key, value in self._fetch("latest_metrics", {"model_id": model_id}):
            entry = latest.setdefault(version_id, {"cycle_started_at": cycle.isoformat(), "metrics": {}})
            entry["metrics"][key] = value
        edges = self.dependencies()
        return {
            "model_id": model_id,
            "versions": [{"id": v.id, "version": v.version, "status": v.status, "role": v.role,
                          "params": v.params, "description": v.description, "tags": v.tags,
                          "metadata": v.metadata, "latest": latest.get(v.id)} for v in versions],
            "upstream": sorted(d for m, d in edges if m == model_id),
            "downstream": sorted(m for m, d in edges if d == model_id),
            "gates": self.gates(model_id),
            "stage_checks": asdict(self.stage_checks(model_id)),
            "approvals": {"required": self.approval_required(model_id),
                          "requests": [r.as_json() for r in self.approval_requests(model_id)]},
        }

    def gates(self, model_id: str) -> dict[str, Any]:
        rows = self._fetch("gates", {"model_id": model_id})
        if not rows:
            return dict(DEFAULT_GATES)
        keys = ("min_cycles", "max_failure_rate", "min_agreement", "max_duration_ratio", "metric_thresholds")
        return dict(zip(keys, rows[0]))

    def history(self, model_id: str) -> list[dict[str, Any]]:
        """Every recorded transition of the model, oldest first."""
        keys = ("id", "at", "model_id", "version_id", "version", "action", "from_status", "to_status",
                "from_role", "to_role", "actor", "reason", "gates", "source", "db_user", "details")
        return [dict(zip(keys, row)) for row in self._fetch("transitions", {"model_id": model_id})]

    def primary_at(self, model_id: str, at: datetime) -> str | None:
        """Which version was the ACTIVE PRIMARY at ``at``, replaying the transitions."""
        primary = None
        for event in self.history(model_id):
            if event["at"] > at:
                break
            primary = _primary_after(primary, event)
        return primary

    def evaluate_gates(self, model_id: str, version: VersionRecord, window: timedelta) -> list[GateCheck]:
        """The model's quality gates against what ``version`` measured over the window."""
        return self.check_rules(self.gates(model_id), version, window, datetime.now(timezone.utc))

    def check_rules(self, gates: dict[str, Any], version: VersionRecord, window: timedelta,
                    end: datetime) -> list[GateCheck]:
        """Rules in the gates' vocabulary against what ``version`` measured in the window ending at ``end``.

        ``gates`` has ``min_cycles`` and ``metric_thresholds``, and optionally
        ``max_failure_rate``, ``min_agreement`` and ``max_duration_ratio`` (None: not checked).
        The quality gates and the self-healing degradation rules are both checked here.
        """
        span = {"version_id": version.id, "start": end - window, "end": end}
        (cycles, failed), = self._fetch("version_outcomes", span)
        means = {key: mean for key, mean, _count in self._fetch("version_metric_means", span)}
        checks = [GateCheck("min_cycles", f">= {gates['min_cycles']}", float(cycles), cycles >= gates["min_cycles"])]
        failure_rate = failed / cycles if cycles else None
        if gates.get("max_failure_rate") is not None:
            checks.append(GateCheck("max_failure_rate", f"<= {gates['max_failure_rate']}", failure_rate,
                                    failure_rate is not None and failure_rate <= gates["max_failure_rate"]))
        if gates.get("min_agreement") is not None:
            agreement = means.get("eval_agreement")
            checks.append(GateCheck("min_agreement", f">= {gates['min_agreement']}", agreement,
                                    agreement is not None and agreement >= gates["min_agreement"]))
        if gates.get("max_duration_ratio") is not None:
            ratio = means.get("eval_duration_ratio")
            checks.append(GateCheck("max_duration_ratio", f"<= {gates['max_duration_ratio']}", ratio,
                                    ratio is not None and ratio <= gates["max_duration_ratio"]))
        for key, bounds in sorted(gates["metric_thresholds"].items()):
            value = means.get(key)
            low, high = bounds.get("min"), bounds.get("max")
            passed = value is not None and (low is None or value >= low) and (high is None or value <= high)
            threshold = " and ".join(part for part in (f">= {low}" if low is not None else "",
                                                       f"<= {high}" if high is not None else "") if part)
            checks.append(GateCheck(f"metric:{key}", threshold, value, passed))
        return checks

    def compare(self, model_id: str, first: str, second: str, window: timedelta) -> dict[str, Any]:
        """Two versions side by side: cycles, failures and every metric's mean over the window."""
        end = datetime.now(timezone.utc)
        sides = {}
        for version_str in (first, second):
            version = self._version(self.versions(model_id), model_id, version_str)
            span = {"version_id": version.id, "start": end - window, "end": end}
            (cycles, failed), = self._fetch("version_outcomes", span)
            sides[version_str] = {"role": version.role, "status": version.status, "cycles": cycles, "failed": failed,
                                  "metrics": {k: m for k, m, _ in self._fetch("version_metric_means", span)}}
        return {"model_id": model_id, "window_hours": window.total_seconds() / 3600, "versions": sides}

    # ---- changing ---------------------------------------------------------------------

    def register(self, model_id: str, version: str, params: dict[str, Any], description: str | None = None) -> int:
        """Add a DRAFT version; it runs once activated."""
        try:
            check_model_id(model_id, "register")
        except ValueError as exc:
            raise LifecycleError(str(exc)) from None
        semver_key(version)
        if not isinstance(params, dict):
            raise LifecycleError(f"params of {model_id}@{version} must be a JSON object, got {type(params).__name__}")
        with self._change(model_id) as cur:
            existing = self._locked_versions(cur, model_id)
            if any(v.version == version for v in existing):
                raise LifecycleError(f"{model_id}@{version} is already registered")
            self._context(cur, "register")
            cur.execute(queries("registry/lifecycle.sql")["insert_version"], {
                "model_id": model_id, "version": version, "params": json.dumps(params), "description": description})
            version_id = cur.fetchone()[0]
        return version_id

    def activate(self, model_id: str, version: str, role: str, reason: str | None = None) -> list[StageCheck]:
        """Run a version as SHADOW or CHALLENGER (a PRIMARY comes only through ``promote``).

        The model's stage checks must pass; they are returned, and recorded with the change.
        A failing check raises :class:`ChecksFailed` with every check's figures;
        :meth:`check_activation` reports them without changing anything.
        """
        _require_shadow_role(role)
        return self._set(model_id, version, "activate", "ACTIVE", role, reason, checked=True)

    def check_activation(self, model_id: str, version: str, role: str) -> Readiness:
        """Everything ``activate`` would check, changing nothing (``activate --check``)."""
        _require_shadow_role(role)
        target = self._version(self.versions(model_id), model_id, version)
        problems = [_primary_guard(target)] if target.is_active_primary else []
        return Readiness(model_id, version, "activate", problems, self.evaluate_stage_checks(target), [],
                         self.approval_required(model_id))

    def deactivate(self, model_id: str, version: str, reason: str | None = None, force: bool = False) -> None:
        self._set(model_id, version, "deactivate", "INACTIVE", None, reason, force)

    def archive(self, model_id: str, version: str, reason: str | None = None, force: bool = False) -> None:
        self._set(model_id, version, "archive", "ARCHIVED", None, reason, force)

    def promote(self, model_id: str, version: str, *, window: timedelta, force: bool = False,
                reason: str | None = None, keep_previous_as_shadow: bool = False) -> Promotion | ApprovalRequest:
        """Make ``version`` the ACTIVE PRIMARY in one transaction, behind its checks and gates.

        The previous PRIMARY becomes ARCHIVED (or an ACTIVE SHADOW). A failing stage check or
        quality gate refuses the promotion unless ``force`` is given with a ``reason``, which
        is recorded. When the model's promotions need approval, no version changes: the
        promotion becomes a PENDING :class:`ApprovalRequest` (returned) holding the figures,
        which a different actor applies with :meth:`approve`. ``force`` then only lets the
        request be made past failing figures: it never skips the second person.
        """
        if force and not reason:
            raise LifecycleError("--force needs --reason: a forced promotion is recorded with why")
        with self._change(model_id) as cur:
            versions = self._locked_versions(cur, model_id)
            target, readiness = self._readiness(versions, model_id, version, window)
            open_request = self._open_request(cur, model_id) if readiness.approval_required else None
            check_no_pending(open_request, model_id)
            _require_ready(target, readiness, force)
            if readiness.approval_required:
                return self._request_approval(cur, target, readiness, window, force, reason,
                                              keep_previous_as_shadow, open_request)
            return self._promote_in(cur, versions, target, readiness, reason, keep_previous_as_shadow)

    def check_promotion(self, model_id: str, version: str, *, window: timedelta) -> Readiness:
        """Everything ``promote`` would check, changing nothing (``promote --check``)."""
        return self._readiness(self.versions(model_id), model_id, version, window)[1]

    def _readiness(self, versions: list[VersionRecord], model_id: str, version: str,
                   window: timedelta) -> tuple[VersionRecord, Readiness]:
        target = self._version(versions, model_id, version)
        problems = []
        if target.is_active_primary:
            problems.append(f"{target.label()} is already the ACTIVE PRIMARY")
        elif target.status == "ARCHIVED":
            problems.append(f"{target.label()} is ARCHIVED; activate it first or use --force --reason")
        return target, Readiness(model_id, version, "promote", problems, self.evaluate_stage_checks(target),
                                 self.evaluate_gates(model_id, target, window), self.approval_required(model_id))

    def _promote_in(self, cur: PgCursor, versions: list[VersionRecord], target: VersionRecord,
                    readiness: Readiness, reason: str | None, keep_previous_as_shadow: bool) -> Promotion:
        """The promotion itself, inside the caller's transaction: ``promote`` and ``approve`` alike."""
        previous = next((v for v in versions if v.is_active_primary), None)
        figures = readiness.figures_json()
        previous_now = None
        if previous is not None:
            previous_now = "ACTIVE SHADOW" if keep_previous_as_shadow else "ARCHIVED"
            new_state = ("ACTIVE", Role.SHADOW.value) if keep_previous_as_shadow else ("ARCHIVED", previous.role)
            self._apply(cur, previous, "promote", new_state, reason, figures)
        self._apply(cur, target, "promote", ("ACTIVE", Role.PRIMARY.value), reason, figures)
        return Promotion(target.model_id, target.version, previous.version if previous else None, previous_now,
                         forced=not readiness.passed, gates=readiness.gates, checks=readiness.checks)

    def rollback(self, model_id: str, reason: str | None = None, to: str | None = None,
                 figures: dict[str, Any] | None = None) -> Promotion:
        """Restore an earlier PRIMARY; the current one becomes INACTIVE.

        Without ``to``: the most recent earlier PRIMARY that was never rolled back from,
        since a version a rollback moved away from is known bad, and is not in ERROR. With
        ``to``: that version, whatever its past, unless it is in ERROR, and except that a model
        whose promotions need approval only goes back to a version that was its PRIMARY before
        (anything else is a promotion). Refuses, saying why, when there is nothing to go back
        to. ``figures`` (what triggered an automatic rollback) are recorded with the change.
        """
        with self._change(model_id) as cur:
            versions = self._locked_versions(cur, model_id)
            current = next((v for v in versions if v.is_active_primary), None)
            if to is not None:
                target = self._version(versions, model_id, to)
                if current is not None and target.id == current.id:
                    raise LifecycleError(f"{target.label()} is already the ACTIVE PRIMARY")
                if target.status == "ERROR":
                    raise LifecycleError(f"{target.label()} is in ERROR; `modelreg reactivate` it first")
                if self.approval_required(model_id) and not self._was_primary(model_id, to):
                    raise LifecycleError(f"{target.label()} has never been the PRIMARY, and {model_id}'s promotions "
                                         f"need approval: `modelreg promote {model_id} {to}` asks for it")
            else:
                target = self._version(versions, model_id, self._rollback_target(model_id, current, versions))
            if current is not None:
                self._apply(cur, current, "rollback", ("INACTIVE", current.role), reason, figures)
            self._apply(cur, target, "rollback", ("ACTIVE", Role.PRIMARY.value), reason, figures)
        return Promotion(model_id, target.version, current.version if current else None,
                         "INACTIVE" if current else None, forced=False)

    def _rollback_target(self, model_id: str, current: VersionRecord | None, versions: list[VersionRecord]) -> str:
        """The version a plain rollback restores: the latest earlier PRIMARY not known bad nor in ERROR."""
        sequence: list[str] = []
        rolled_back_from: dict[str, datetime] = {}
        primary = None
        for event in self.history(model_id):
            if (event["action"] == "rollback" and event["from_role"] == Role.PRIMARY.value
                    and event["from_status"] == "ACTIVE" and event["to_status"] != "ACTIVE"):
                rolled_back_from[event["version"]] = event["at"]
            primary = _primary_after(primary, event)
            if primary and (not sequence or sequence[-1] != primary):
                sequence.append(primary)
        current_version = current.version if current else None
        in_error = {v.version for v in versions if v.status == "ERROR"}
        for candidate in reversed(sequence):
            if candidate != current_version and candidate not in rolled_back_from and candidate not in in_error:
                return candidate
        bad = ", ".join([f"{v} (rolled back from at {at.isoformat(timespec='seconds')})"
                         for v, at in sorted(rolled_back_from.items(), key=lambda item: item[1])]
                        + [f"{v} (in ERROR)" for v in sorted(in_error - set(rolled_back_from))])
        why = f"every earlier PRIMARY is known bad: {bad}" if bad else \
            "it has no earlier PRIMARY in its history"
        raise LifecycleError(f"{model_id} has nothing to roll back to: {why}. "
                             "Name a version with `modelreg rollback MODEL --to VERSION`")

    def _was_primary(self, model_id: str, version: str) -> bool:
        primary = None
        for event in self.history(model_id):
            primary = _primary_after(primary, event)
            if primary == version:
                return True
        return False

    def add_dependency(self, model_id: str, upstream: str, plan_classes: dict[str, tuple[str, ...]]) -> None:
        """Add ``model_id`` depends on ``upstream``; refuses unknown models and cycles.

        ``plan_classes`` maps each discovered model_id to its class-level depends_on, so a
        cycle through code-declared edges is refused too. The graph is read under the
        registry-wide lock, so two changes at once cannot each close half of a cycle.
        """
        if model_id == upstream:
            raise LifecycleError(f"{model_id} cannot depend on itself")
        with self._change(model_id, graph=True) as cur:
            known = {v.model_id for v in self.versions()} | set(plan_classes)
            for name in (model_id, upstream):
                if name not in known:
                    raise LifecycleError(f"unknown model {name!r}: no version row and no model class declares it")
            graph: dict[str, set[str]] = {name: set(plan_classes.get(name, ())) for name in known}
            for m, d in self.dependencies():
                graph.setdefault(m, set()).add(d)
            graph[model_id].add(upstream)
            for cycle in find_cycles(graph):
                if model_id in cycle and upstream in cycle:
                    raise LifecycleError(f"{model_id} -> {upstream} would close a dependency cycle among {cycle}")
            self._context(cur, "deps_add")
            cur.execute(queries("registry/lifecycle.sql")["insert_dependency"],
                        {"model_id": model_id, "depends_on": upstream})

    def remove_dependency(self, model_id: str, upstream: str) -> None:
        with self._change(model_id, graph=True) as cur:
            self._context(cur, "deps_remove")
            cur.execute(queries("registry/lifecycle.sql")["delete_dependency"],
                        {"model_id": model_id, "depends_on": upstream})
            if cur.rowcount == 0:
                raise LifecycleError(f"{model_id} has no registry dependency on {upstream} "
                                     "(class-level depends_on is changed in code)")

    def set_gates(self, model_id: str, reason: str | None = None, **values: Any) -> dict[str, Any]:
        """Change some of a model's gates; the others keep their current value."""
        with self._change(model_id, graph=True) as cur:
            gates = self.gates(model_id) | {k: v for k, v in values.items() if v is not None}
            self._context(cur, "gates", reason)
            cur.execute(queries("registry/lifecycle.sql")["upsert_gates"],
                        {**gates, "model_id": model_id, "metric_thresholds": json.dumps(gates["metric_thresholds"])})
        return gates

    # ---- description, tags and metadata -------------------------------------------------

    def describe(self, model_id: str, version: str, description: str, reason: str | None = None) -> None:
        """Replace a version's description; an empty one removes it."""
        check_text(description, f"the description of {model_id}@{version}")
        with self._one_version(model_id, version) as (cur, target):
            self._write_version(cur, target, "set_description", "describe", reason,
                                description=description.strip() or None)

    def set_tags(self, model_id: str, version: str, tags: Mapping[str, str],
                 reason: str | None = None) -> dict[str, str]:
        """Set (add or overwrite) tags of a version; returns all its tags now.

        Build ``tags`` with :func:`~models_core.registry.metadata.parse_tag_assignments`
        from ``KEY=VALUE`` text, which checks keys and values.
        """
        with self._one_version(model_id, version) as (cur, target):
            now = {**target.tags, **tags}
            self._write_version(cur, target, "set_tags", "tag", reason, tags=json.dumps(now))
        return now

    def remove_tags(self, model_id: str, version: str, keys: Iterable[str],
                    reason: str | None = None) -> dict[str, str]:
        """Remove tags by key; a key the version does not have is an error naming its tags."""
        keys = list(keys)
        with self._one_version(model_id, version) as (cur, target):
            for key in keys:
                check_tag_key(key, target.label())
                if key not in target.tags:
                    raise MetadataError(f"{target.label()} has no tag {key!r} "
                                        f"(its tags: {', '.join(sorted(target.tags)) or 'none'})")
            now = {k: v for k, v in target.tags.items() if k not in keys}
            self._write_version(cur, target, "set_tags", "untag", reason, tags=json.dumps(now))
        return now

    def set_metadata(self, model_id: str, version: str, metadata: dict[str, Any], reason: str | None = None) -> None:
        """Replace a version's metadata document, checked against the documented shape
        (:data:`~models_core.registry.metadata.METADATA_SCHEMA`; other keys are free)."""
        label = f"{model_id}@{version}"
        check_metadata(metadata, label)
        try:
            document = json.dumps(metadata, allow_nan=False)
        except ValueError as exc:
            raise MetadataError(f"metadata of {label} holds a value JSON cannot: {exc}") from None
        with self._one_version(model_id, version) as (cur, target):
            self._write_version(cur, target, "set_metadata", "meta", reason, metadata=document)

    # ---- stage checks -----------------------------------------------------------------------

    def stage_checks(self, model_id: str) -> StageCheckPolicy:
        """What a version of the model needs before it may run as SHADOW/CHALLENGER."""
        rows = self._fetch("stage_checks", {"model_id": model_id}, "registry/stage_checks.sql")
        return StageCheckPolicy(tuple(rows[0][0]), rows[0][1]) if rows else StageCheckPolicy()

    def set_stage_checks(self, model_id: str, *, required_tags: Iterable[str] | None = None,
                         require_description: bool | None = None, reason: str | None = None) -> StageCheckPolicy:
        """Change some of a model's stage checks; the others keep their current value.

        ``required_tags`` entries are ``KEY`` (the tag must be set) or ``KEY=VALUE``.
        """
        tags = None if required_tags is None else tuple(required_tags)
        for entry in tags or ():
            check_tag_key(entry.partition("=")[0], f"the checks of {model_id}")
        with self._change(model_id) as cur:
            self._require_model(cur, model_id)
            current = self.stage_checks(model_id)
            policy = StageCheckPolicy(current.required_tags if tags is None else tags,
                                      current.require_description if require_description is None
                                      else require_description)
            self._context(cur, "checks", reason)
            cur.execute(queries("registry/stage_checks.sql")["upsert_stage_checks"],
                        {"model_id": model_id, "required_tags": list(policy.required_tags),
                         "require_description": policy.require_description})
        return policy

    def evaluate_stage_checks(self, version: VersionRecord) -> list[StageCheck]:
        """The model's stage checks, and its class's ``params_schema``, against ``version``."""
        schema, owner = self._params_schema(version.model_id)
        return evaluate_stage_checks(version, self.stage_checks(version.model_id), schema, owner)

    def _params_schema(self, model_id: str) -> tuple[dict[str, Any] | None, str]:
        """The JSON Schema the model's class declares for params (if any), and the class name."""
        if self._classes is None:
            package = load_settings().models_package
            try:
                self._classes = discover_models(package).classes
            except ImportError as exc:
                raise LifecycleError(f"cannot import the models package {package!r} to check params against its "
                                     f"classes' params_schema ({exc}); set [model_registry] models_package and "
                                     "the Python path as the DAG processor has them") from None
        found = self._classes.get(model_id)
        if found is None:
            return None, ""
        cls = import_model_class(found.class_path)
        return cls.params_schema, cls.__qualname__

    # ---- approvals ----------------------------------------------------------------------------

    def approval_required(self, model_id: str) -> bool:
        """Whether the model's promotions wait for a second person's approval."""
        rows = self._fetch("approval_required", {"model_id": model_id}, "registry/approvals.sql")
        return bool(rows and rows[0][0])

    def set_approval_required(self, model_id: str, required: bool, reason: str | None = None) -> None:
        """Turn approvals on or off for a model; requests already made stay as they are."""
        with self._change(model_id) as cur:
            self._require_model(cur, model_id)
            self._context(cur, "approvals", reason)
            cur.execute(queries("registry/approvals.sql")["upsert_approval_setting"],
                        {"model_id": model_id, "required": required})

    def approval_requests(self, model_id: str | None = None, *, include_decided: bool = False) -> list[ApprovalRequest]:
        """Requests waiting (PENDING or EXPIRED, not yet decided) or, with ``include_decided``,
        all of them; newest first."""
        rows = self._fetch("requests", {"model_id": model_id, "all": include_decided}, "registry/approvals.sql")
        return [ApprovalRequest(*row) for row in rows]

    def approve(self, model_id: str, version: str, reason: str | None = None) -> Promotion:
        """Apply a promotion request someone else made, in one transaction.

        The checks and gates are evaluated again now, over the request's window, by the same
        code as ``promote``; if they no longer pass (and the request was not forced), the
        approval is refused and the request stays PENDING. An expired request, or one's own,
        cannot be approved.
        """
        with self._change(model_id) as cur:
            request = check_decidable(self._open_request(cur, model_id), model_id, version, self.actor, "approve")
            versions = self._locked_versions(cur, model_id)
            target, readiness = self._readiness(versions, model_id, version, timedelta(hours=request.window_hours))
            try:
                _require_ready(target, readiness, request.forced)
            except GatesFailed as exc:
                raise ChecksFailed(f"approval of {request.label()}", exc.checks,
                                   "The request stays pending: let the version run longer, or reject it") from None
            why = f"{request.label()} by {request.requested_by}, approved" + (
                f": {request.reason}" if request.reason else "")
            promotion = self._promote_in(cur, versions, target, readiness, why, request.keep_previous_as_shadow)
            self._decide(cur, request, "APPROVED", "approve", reason, readiness.figures_json())
        return promotion

    def reject(self, model_id: str, version: str, reason: str) -> ApprovalRequest:
        """Turn a pending request down, saying why; its maker may reject it too (withdraw it)."""
        if not (reason or "").strip():
            raise LifecycleError("reject needs --reason: the requester is told why")
        with self._change(model_id) as cur:
            request = check_decidable(self._open_request(cur, model_id), model_id, version, self.actor, "reject")
            self._decide(cur, request, "REJECTED", "reject", reason, None)
        return next(r for r in self.approval_requests(model_id, include_decided=True) if r.id == request.id)

    def _request_approval(self, cur: PgCursor, target: VersionRecord, readiness: Readiness, window: timedelta,
                          force: bool, reason: str | None, keep_previous_as_shadow: bool,
                          expired: ApprovalRequest | None) -> ApprovalRequest:
        """Record a PENDING request instead of promoting; an ``expired`` one in the way is closed."""
        if expired is not None:
            self._decide(cur, expired, "EXPIRED", "expire", None, None)
        self._context(cur, "request_promotion", reason, readiness.figures_json())
        cur.execute(queries("registry/approvals.sql")["insert_request"], {
            "model_id": target.model_id, "version_id": target.id, "version": target.version,
            "requested_by": self.actor, "ttl": load_settings().approval_ttl, "reason": reason,
            "forced": force and not readiness.passed, "keep_previous_as_shadow": keep_previous_as_shadow,
            "window_hours": window.total_seconds() / 3600,
            "checks": json.dumps([asdict(c) for c in readiness.checks]),
            "gates": json.dumps([asdict(c) for c in readiness.gates])})
        return self._open_request(cur, target.model_id)

    @staticmethod
    def _open_request(cur: PgCursor, model_id: str) -> ApprovalRequest | None:
        cur.execute(queries("registry/approvals.sql")["open_request"], {"model_id": model_id})
        row = cur.fetchone()
        return None if row is None else ApprovalRequest(*row)

    def _decide(self, cur: PgCursor, request: ApprovalRequest, status: str, action: str, reason: str | None,
                figures: list[dict[str, Any]] | None) -> None:
        self._context(cur, action, reason)
        cur.execute(queries("registry/approvals.sql")["decide_request"], {
            "id": request.id, "status": status, "decided_by": None if status == "EXPIRED" else self.actor,
            "decision_reason": reason, "decision_gates": None if figures is None else json.dumps(figures)})

    # ---- choosing a version ---------------------------------------------------------------------

    def best(self, model_id: str, metric: str, *, window: timedelta, min_cycles: int = 1,
             lower_is_better: bool = False, include_defaults: bool = False) -> Ranking:
        """The model's versions that ran in the window, ranked by the mean of ``metric``
        (see :func:`~models_core.registry.ranking.best_versions`)."""
        return best_versions(self.conn, model_id, metric, window=window, min_cycles=min_cycles,
                             lower_is_better=lower_is_better, include_defaults=include_defaults)

    # ---- self-healing -----------------------------------------------------------------

    def mark_error(self, model_id: str, version: str, reason: str,
                   figures: dict[str, Any] | None = None) -> VersionRecord | None:
        """Move an ACTIVE version to ERROR, in its role: it stops running until reactivated.

        Returns the version as it was, or None (nothing changed) when it is not ACTIVE any
        more, e.g. because an operator or an earlier review already changed it.
        """
        with self._change(model_id) as cur:
            target = self._version(self._locked_versions(cur, model_id), model_id, version)
            if target.status != "ACTIVE":
                return None
            self._apply(cur, target, "error", ("ERROR", target.role), reason, figures)
        return target

    def reactivate(self, model_id: str, version: str, reason: str | None = None,
                   role: str | None = None) -> VersionRecord:
        """Bring a version out of ERROR: ACTIVE again, in the role it had (or ``role``).

        Its failure count starts again from zero. Behind the model's stage checks, as an
        activation is; a PRIMARY comes back as PRIMARY only if the model has no other ACTIVE
        PRIMARY meanwhile (e.g. after a rollback).
        """
        with self._change(model_id) as cur:
            versions = self._locked_versions(cur, model_id)
            target = self._version(versions, model_id, version)
            if target.status != "ERROR":
                raise LifecycleError(f"{target.label()} is {target.status}, not ERROR: reactivate brings back a "
                                     "version the product took out of service (see `modelreg activate`)")
            role = role or target.role
            current = next((v for v in versions if v.is_active_primary), None)
            if role == Role.PRIMARY.value and current is not None:
                raise LifecycleError(f"{model_id}@{current.version} is the ACTIVE PRIMARY now; reactivate "
                                     f"{version} with --role SHADOW (then promote it), or deactivate "
                                     f"{current.version} first")
            checks = self.evaluate_stage_checks(target)
            if not all(c.passed for c in checks):
                raise ChecksFailed(f"reactivation of {target.label()}", checks,
                                   "Fix what fails or change the model's checks (`modelreg checks`)")
            self._apply(cur, target, "reactivate", ("ACTIVE", role), reason, [asdict(c) for c in checks])
        return replace(target, status="ACTIVE", role=role)

    def healing_policy(self, model_id: str) -> dict[str, Any]:
        """The model's self-healing policy (defaults where it has none)."""
        return self.healing_policies().get(model_id, dict(DEFAULT_POLICY))

    def healing_policies(self) -> dict[str, dict[str, Any]]:
        """Every model's policy that differs from the defaults, by model_id, in one read."""
        rows = self._fetch("healing_policies", {}, "registry/self_healing.sql")
        return {row[0]: dict(zip(POLICY_KEYS, row[1:])) for row in rows}

    def set_healing_policy(self, model_id: str, reason: str | None = None, **values: Any) -> dict[str, Any]:
        """Change some of a model's self-healing policy; the others keep their current value."""
        with self._change(model_id) as cur:
            policy = self.healing_policy(model_id) | {k: v for k, v in values.items() if v is not None}
            _check_policy(model_id, policy)
            self._context(cur, "policy", reason)
            cur.execute(queries("registry/self_healing.sql")["upsert_healing_policy"],
                        {**policy, "model_id": model_id, "metric_thresholds": json.dumps(policy["metric_thresholds"])})
        return policy

    # ---- internals --------------------------------------------------------------------

    @contextmanager
    def _change(self, model_id: str, *, graph: bool = False) -> Iterator[PgCursor]:
        """One change: a transaction holding the model's lock (and, for graph changes, the registry's)."""
        q = queries("registry/lifecycle.sql")
        with self.conn, self.conn.cursor() as cur:
            if graph:
                try:
                    cur.execute(q["lock_graph"], {"timeout": GRAPH_LOCK_TIMEOUT})
                except psycopg2.errors.LockNotAvailable:
                    raise LifecycleError("another dependency or gate change is in progress and did not finish "
                                         f"within {GRAPH_LOCK_TIMEOUT}; try again") from None
            cur.execute(q["try_lock_model"], {"model_id": model_id})
            if not cur.fetchone()[0]:
                raise LifecycleError(f"another registry change to {model_id} is in progress; try again")
            self._changing = True
            try:
                yield cur
            finally:
                self._changing = False

    def _context(self, cur: PgCursor, action: str, reason: str | None = None,
                 gates: list[dict[str, Any]] | dict[str, Any] | None = None) -> None:
        """Tell the audit triggers what the next statements of this transaction do, and for whom."""
        cur.execute(queries("registry/lifecycle.sql")["set_change_context"], {
            "action": action, "actor": self.actor, "reason": reason,
            "gates": json.dumps(gates) if gates is not None else None})

    def _fetch(self, name: str, params: dict[str, Any], sql_file: str = "registry/lifecycle.sql") -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(queries(sql_file)[name], params)
            rows = cur.fetchall()
        if not self._changing:
            self.conn.rollback()
        return rows

    @staticmethod
    def _locked_versions(cur: PgCursor, model_id: str) -> list[VersionRecord]:
        cur.execute(queries("registry/lifecycle.sql")["versions_of_model"], {"model_id": model_id})
        return [VersionRecord(*row) for row in cur.fetchall()]

    def _require_model(self, cur: PgCursor, model_id: str) -> None:
        """A setting for a model with no version is almost always a typo in its name."""
        if not self._locked_versions(cur, model_id):
            raise LifecycleError(f"unknown model {model_id!r}: it has no versions (see `modelreg list`)")

    @contextmanager
    def _one_version(self, model_id: str, version: str) -> Iterator[tuple[PgCursor, VersionRecord]]:
        """A change to one version: its model's transaction, and its row locked."""
        with self._change(model_id) as cur:
            yield cur, self._version(self._locked_versions(cur, model_id), model_id, version)

    def _write_version(self, cur: PgCursor, target: VersionRecord, query: str, action: str,
                       reason: str | None, **values: Any) -> None:
        self._context(cur, action, reason)
        cur.execute(queries("registry/metadata.sql")[query], {"id": target.id, **values})

    @staticmethod
    def _version(versions: list[VersionRecord], model_id: str, version: str) -> VersionRecord:
        for candidate in versions:
            if candidate.version == version:
                return candidate
        known = ", ".join(v.version for v in sorted(versions, key=lambda v: semver_key(v.version))) or "none"
        raise LifecycleError(f"{model_id}@{version} is not registered (versions: {known})")

    def _set(self, model_id: str, version: str, action: str, status: str, role: str | None,
             reason: str | None, force: bool = False, checked: bool = False) -> list[StageCheck]:
        """Change a version's status and role; ``checked``: behind the model's stage checks."""
        with self._change(model_id) as cur:
            target = self._version(self._locked_versions(cur, model_id), model_id, version)
            if target.is_active_primary and not force:
                raise LifecycleError(_primary_guard(target))
            checks = self.evaluate_stage_checks(target) if checked else []
            if not all(c.passed for c in checks):
                raise ChecksFailed(f"activation of {target.label()}", checks,
                                   "Fix what fails (`modelreg tag`, `modelreg describe`, a version with valid "
                                   "params) or change the model's checks (`modelreg checks`)")
            self._apply(cur, target, action, (status, role or target.role), reason,
                        [asdict(c) for c in checks] if checked else None)
        return checks

    def _apply(self, cur: PgCursor, version: VersionRecord, action: str, state: tuple[str, str],
               reason: str | None, gates: list[dict[str, Any]] | dict[str, Any] | None) -> None:
        self._context(cur, action, reason, gates)
        cur.execute(queries("registry/lifecycle.sql")["set_status_role"], {"id": version.id, "status": state[0], "role": state[1]})


class ChecksFailed(LifecycleError):
    """A change refused by its stage checks or quality gates; ``checks`` has every figure.

    The message says which refused it (``refused by its checks``, ``... quality gates`` or
    both): a refusal by gates alone reads as it did before stage checks existed.
    """

    def __init__(self, change: str, checks: list[GateCheck | StageCheck], advice: str) -> None:
        self.checks = checks
        failed = {"checks" if isinstance(c, StageCheck) else "quality gates" for c in checks if not c.passed}
        refused_by = " and ".join(sorted(failed))
        super().__init__(f"{change} refused by its {refused_by}: {describe_failures(checks)}. {advice}")


class GatesFailed(ChecksFailed):
    """A promotion refused by its stage checks or quality gates."""

    def __init__(self, label: str, readiness: Readiness) -> None:
        fix = "Fix what the checks name, let it run longer" if not all(c.passed for c in readiness.checks) \
            else "Let it run longer"
        super().__init__(f"promotion of {label}", [*readiness.checks, *readiness.gates],
                         f"{fix}, change the gates, or use --force --reason")


def _require_shadow_role(role: str) -> None:
    if role not in SHADOW_ROLES:
        raise LifecycleError(f"activate takes --role SHADOW or CHALLENGER, not {role!r}; "
                             "use `modelreg promote` to make a version the PRIMARY")


def _primary_guard(target: VersionRecord) -> str:
    return (f"{target.label()} is the ACTIVE PRIMARY: its downstream models would stop. "
            "Promote another version first, or use --force")


def _require_ready(target: VersionRecord, readiness: Readiness, force: bool) -> None:
    """Refuse a promotion that may not go ahead; ``force`` passes failing figures and ARCHIVED."""
    if target.is_active_primary or (readiness.problems and not force):
        raise LifecycleError(readiness.problems[0])
    if not readiness.figures_pass and not force:
        raise GatesFailed(target.label(), readiness)


def _primary_after(primary: str | None, event: dict[str, Any]) -> str | None:
    """The ACTIVE PRIMARY version after one transition, given the one before it."""
    if event["version"] is None:
        return primary
    if event["to_status"] == "ACTIVE" and event["to_role"] == Role.PRIMARY.value:
        return event["version"]
    if event["version"] == primary:
        return None
    return primary


def plan_difference(current: Plan, parsed: Plan | None) -> dict[str, list[str]]:
    """Tasks and edges the registry now describes that the last parsed DAG lacks, and back."""
    def shape(plan: Plan | None) -> tuple[set[str], set[str]]:
        if plan is None:
            return set(), set()
        tasks, edges = set(), set()
        primaries = {m.model_id: m.primary.task_id for m in plan.models if m.primary}
        for model in plan.models:
            tasks.update(v.task_id for v in model.versions)
            for version in model.versions:
                edges.update(f"{primaries[dep]} >> {version.task_id}" for dep in model.upstream if dep in primaries)
            if model.primary:
                edges.update(f"{model.primary.task_id} >> {s.task_id}" for s in model.shadows)
        return tasks, edges

    now_tasks, now_edges = shape(current)
    old_tasks, old_edges = shape(parsed)
    return {"tasks_added": sorted(now_tasks - old_tasks), "tasks_removed": sorted(old_tasks - now_tasks),
            "edges_added": sorted(now_edges - old_edges), "edges_removed": sorted(old_edges - now_edges)}


def _check_policy(model_id: str, policy: dict[str, Any]) -> None:
    """Refuse a policy the table cannot hold, naming the field and what it takes."""
    def bad(field: str, needs: str) -> LifecycleError:
        return LifecycleError(f"{model_id} policy: {field} {needs}, got {policy[field]!r}")

    if policy["on_primary_error"] not in ON_PRIMARY_ERROR:
        raise bad("on_primary_error", "must be alert or rollback")
    if policy["error_after_failures"] is not None and not (isinstance(policy["error_after_failures"], int)
                                                           and policy["error_after_failures"] >= 1):
        raise bad("error_after_failures", "must be a whole number of cycles, at least 1")
    if policy["max_failure_rate"] is not None and not 0 <= policy["max_failure_rate"] <= 1:
        raise bad("max_failure_rate", "must be between 0 and 1")
    if not (isinstance(policy["min_cycles"], int) and policy["min_cycles"] >= 1):
        raise bad("min_cycles", "must be a whole number of cycles, at least 1")
    if not policy["window_hours"] > 0:
        raise bad("window_hours", "must be more than 0")
    if not policy["cooldown_minutes"] >= 0:
        raise bad("cooldown_minutes", "must be 0 or more")
    thresholds = policy["metric_thresholds"]
    if not isinstance(thresholds, dict) or not all(
            isinstance(bounds, dict) and set(bounds) <= {"min", "max"} and bounds
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds.values())
            for bounds in thresholds.values()):
        raise bad("metric_thresholds", 'must map metric keys to {"min": number, "max": number} (either or both)')
