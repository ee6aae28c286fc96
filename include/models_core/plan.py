"""The cycle plan: which versions run, in which order, fed by whom. Pure data.

Built from registry rows and discovered classes without Airflow or a database, so every
rule here is tested directly. The DAG factory renders a plan; it decides nothing itself.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from models_core.discovery import ModelClass
from models_core.errors import DependencyCycleError
from models_core.model import Role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionRow:
    """An ACTIVE row of detection_model_versions as the plan needs it."""

    id: int
    model_id: str
    version: str
    role: str


#: The DAG the plan becomes: one task group per model.
CYCLE_DAG_ID = "detection_models"

#: The task of a model's PRIMARY inside its group; downstream models read its result.
PRIMARY_TASK_NAME = "primary"


def primary_task_id(model_id: str) -> str:
    """The task id of ``model_id``'s PRIMARY, whichever version it is."""
    return f"{model_id}.{PRIMARY_TASK_NAME}"


@dataclass(frozen=True)
class _VersionInRole:
    """A version in a role, and the task that runs it."""

    model_id: str
    version_id: int
    version: str
    role: str

    @property
    def task_name(self) -> str:
        """Task id inside the model's group: ``primary`` or ``shadow_1_2_0``."""
        if self.role == Role.PRIMARY.value:
            return PRIMARY_TASK_NAME
        return f"{self.role.lower()}_{self.version.replace('.', '_')}"

    @property
    def task_id(self) -> str:
        return f"{self.model_id}.{self.task_name}"

    def label(self) -> str:
        return f"{self.model_id}@{self.version}[{self.role}]"


@dataclass(frozen=True)
class PlannedVersion(_VersionInRole):
    """One task's worth of work: a version in a role, and the class that implements it."""

    class_path: str


@dataclass(frozen=True)
class LeftOutVersion(_VersionInRole):
    """An ACTIVE version the plan has no task for, and why.

    A worker asked to run its task (the DAG processor, which could plan it, scheduled it)
    says this reason instead of claiming the version left the registry.
    """

    reason: str


@dataclass(frozen=True)
class PlannedModel:
    """A model's versions in the cycle, its upstream models, and why it cannot run, if so."""

    model_id: str
    primary: PlannedVersion | None
    shadows: tuple[PlannedVersion, ...]
    upstream: tuple[str, ...]
    blocked_reason: str | None = None

    @property
    def versions(self) -> tuple[PlannedVersion, ...]:
        return ((self.primary,) if self.primary else ()) + self.shadows


@dataclass(frozen=True)
class Plan:
    """Models in a deterministic topological order, the ACTIVE versions left out, and the warnings met."""

    models: tuple[PlannedModel, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    left_out: tuple[LeftOutVersion, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict:
        """The plan as plain data (what ``dataclasses.asdict`` gives, without its deep copies)."""

        def version(v: PlannedVersion | None) -> dict | None:
            return None if v is None else dict(vars(v))

        return {
            "models": [
                {
                    "model_id": m.model_id,
                    "primary": version(m.primary),
                    "shadows": [version(s) for s in m.shadows],
                    "upstream": list(m.upstream),
                    "blocked_reason": m.blocked_reason,
                }
                for m in self.models
            ],
            "warnings": list(self.warnings),
            "left_out": [dict(vars(v)) for v in self.left_out],
        }

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        def version(v: dict | None) -> PlannedVersion | None:
            return None if v is None else PlannedVersion(**v)

        models = tuple(
            PlannedModel(
                model_id=m["model_id"],
                primary=version(m["primary"]),
                shadows=tuple(PlannedVersion(**s) for s in m["shadows"]),
                upstream=tuple(m["upstream"]),
                blocked_reason=m["blocked_reason"],
            )
            for m in data["models"]
        )
        left_out = tuple(LeftOutVersion(**v) for v in data.get("left_out", ()))  # absent in older caches
        return cls(models=models, warnings=tuple(data["warnings"]), left_out=left_out)

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of the plan: equal plans give equal fingerprints."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def model(self, model_id: str) -> PlannedModel:
        return next(m for m in self.models if m.model_id == model_id)

    def left_out_version(self, task_id: str) -> LeftOutVersion | None:
        """The ACTIVE version whose task ``task_id`` would be, had the plan not left it out."""
        return next((v for v in self.left_out if v.task_id == task_id), None)


def _semver_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def build_plan(
    versions: Iterable[VersionRow],
    dependencies: Iterable[tuple[str, str]],
    classes: dict[str, ModelClass],
    import_errors: Iterable[str] = (),
) -> Plan:
    """Merge registry rows, dependency edges and classes into a :class:`Plan`.

    ``import_errors`` are the model modules that failed to import (first among the
    warnings). Skips, with a warning naming it and in ``left_out`` with the reason, a row
    whose role is unknown or whose model has no class (a model module that failed to
    import is named in that reason, since its classes are unknown); marks as blocked a
    model whose upstream has no runnable PRIMARY; raises :class:`DependencyCycleError`
    naming every model on a cycle.
    """
    import_errors = tuple(import_errors)
    warnings: list[str] = list(import_errors)
    left_out: list[LeftOutVersion] = []
    primaries: dict[str, PlannedVersion] = {}
    shadows: dict[str, list[PlannedVersion]] = defaultdict(list)

    def leave_out(row: VersionRow, reason: str) -> None:
        left_out.append(LeftOutVersion(row.model_id, row.id, row.version, row.role, reason))

    for row in sorted(versions, key=lambda r: (r.model_id, r.id)):
        if row.role not in Role._value2member_map_:
            warnings.append(f"{row.model_id}@{row.version} (id {row.id}) skipped: unknown role {row.role!r}")
            leave_out(row, f"unknown role {row.role!r}")
            continue
        model_class = classes.get(row.model_id)
        if model_class is None:
            warnings.append(
                f"{row.model_id}@{row.version} (id {row.id}, {row.role}) skipped: "
                f"no model class declares model_id {row.model_id!r}"
            )
            failed = f" ({'; '.join(import_errors)})" if import_errors else ""
            leave_out(row, f"no model class declares model_id {row.model_id!r}{failed}")
            continue
        planned = PlannedVersion(row.model_id, row.id, row.version, row.role, model_class.class_path)
        if row.role == Role.PRIMARY.value:
            if row.model_id in primaries:
                warnings.append(
                    f"{planned.label()} (id {row.id}) skipped: {row.model_id} already has ACTIVE "
                    f"PRIMARY id {primaries[row.model_id].version_id}"
                )
                leave_out(row, f"{row.model_id} already has ACTIVE PRIMARY id {primaries[row.model_id].version_id}")
                continue
            primaries[row.model_id] = planned
        else:
            shadows[row.model_id].append(planned)

    nodes = sorted(set(primaries) | set(shadows))
    upstream: dict[str, set[str]] = {node: set() for node in nodes}
    for model_id, depends_on in dependencies:
        if model_id in upstream:
            upstream[model_id].add(depends_on)
    for node in nodes:
        upstream[node].update(classes[node].depends_on)

    order = _topological_order(nodes, upstream)

    models: list[PlannedModel] = []
    runnable: set[str] = set()
    for model_id in order:
        reason = None
        missing = sorted(dep for dep in upstream[model_id] if dep not in primaries)
        blocked_up = sorted(dep for dep in upstream[model_id] if dep in primaries and dep not in runnable)
        if model_id not in primaries:
            reason = f"{model_id} has no ACTIVE PRIMARY, so its SHADOW/CHALLENGER versions have nothing to compare with"
        elif missing:
            reason = f"upstream {', '.join(missing)} has no ACTIVE PRIMARY"
        elif blocked_up:
            reason = f"upstream {', '.join(blocked_up)} cannot run"
        if reason:
            warnings.append(f"{model_id} will not run: {reason}")
        else:
            runnable.add(model_id)
        models.append(
            PlannedModel(
                model_id=model_id,
                primary=primaries.get(model_id),
                shadows=tuple(
                    sorted(shadows.get(model_id, []), key=lambda v: (v.role, _semver_key(v.version), v.version_id))
                ),
                upstream=tuple(sorted(upstream[model_id])),
                blocked_reason=reason,
            )
        )
    return Plan(models=tuple(models), warnings=tuple(warnings), left_out=tuple(left_out))


def _topological_order(nodes: list[str], upstream: dict[str, set[str]]) -> list[str]:
    """Kahn's algorithm taking the alphabetically smallest ready model first."""
    downstream: dict[str, set[str]] = defaultdict(set)
    pending: dict[str, int] = {}
    for node in nodes:
        deps = {d for d in upstream[node] if d in upstream}
        pending[node] = len(deps)
        for dep in deps:
            downstream[dep].add(node)
    ready = [node for node in nodes if pending[node] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in downstream[node]:
            pending[nxt] -= 1
            if pending[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) != len(nodes):
        cycles = find_cycles(upstream)
        on_cycle = {member: index for index, cycle in enumerate(cycles) for member in cycle}
        edges = sorted(
            (model, dep) for model in on_cycle for dep in upstream[model] if on_cycle.get(dep) == on_cycle[model]
        )
        raise DependencyCycleError(cycles, edges)
    return order


def find_cycles(upstream: dict[str, set[str]]) -> list[list[str]]:
    """The groups of models that depend on each other in a circle (Tarjan's SCCs), sorted.

    ``upstream`` maps each model to the models it depends on; edges to models that are
    not keys are ignored.
    """
    nodes = sorted(upstream)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(d for d in upstream[node] if d in upstream):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in upstream[node]:
                found.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(found)
