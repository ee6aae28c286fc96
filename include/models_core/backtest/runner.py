"""Running a version over past cycles: fed the upstream PRIMARY results stored for each cycle,
compared with its model's PRIMARY of that cycle as a live SHADOW is, stored with role BACKTEST.

A backtest reads the cycle's stored results and writes only its own rows: never a PRIMARY or
shadow row set, never an XCom, never a version's status. One row set per (version, cycle): a
re-run replaces it in one transaction, as a cycle's retry does.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as PgConnection
from psycopg2.extras import execute_values

from models_core.cycle.model_task import run_version
from models_core.cycle.persistence import ResultRef, copy_outputs, metric_rows
from models_core.cycle.plan_source import plan_from_connection
from models_core.discovery import discover_models, import_model_class
from models_core.errors import ModelRegistryError
from models_core.model import ModelResult, Role
from models_core.registry.evidence import EVALUATION_GATES
from models_core.settings import Settings
from models_core.store.partitions import ensure_month_partition
from models_core.store.registry_reader import read_version
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)
_SQL = "backtest/backtest.sql"


class BacktestRefused(ModelRegistryError):
    """A backtest that cannot run, saying why (an unknown version, a source that cannot be replayed)."""


@dataclass(frozen=True)
class Candidate:
    """The version a backtest runs, and the models whose stored PRIMARY results feed it."""

    model_id: str
    version: str
    version_id: int
    class_path: str
    params: dict[str, Any]
    upstream: tuple[str, ...]

    def label(self) -> str:
        return f"{self.model_id}@{self.version}[{Role.BACKTEST.value}]"


@dataclass(frozen=True)
class CycleOutcome:
    """What a backtest did with one cycle: ``stored`` its result, or ``skipped`` it and why."""

    cycle: str
    state: str
    outputs: int = 0
    reason: str | None = None


def resolve_candidate(conn: PgConnection, settings: Settings, model_id: str, version: str) -> Candidate:
    """The version to backtest and its upstream models, or :class:`BacktestRefused` saying why not.

    A model with upstream models is fed their stored PRIMARY results. A model without any reads
    its own source, so it can be backtested only when its class declares that source replayable
    (the same inputs for a past cycle again); otherwise its past inputs are gone.
    """
    row = read_version(conn, model_id, version)
    if row is None:
        raise BacktestRefused(f"{model_id}@{version} is not registered (modelreg register)")
    planned = next((m for m in plan_from_connection(conn, settings).models if m.model_id == model_id), None)
    if planned is None or planned.primary is None:
        raise BacktestRefused(f"{model_id} has no ACTIVE PRIMARY in the cycle's plan: a backtest compares with it")
    if planned.primary.version_id == row.id:
        raise BacktestRefused(f"{row.label()} is the model's PRIMARY: backtest a candidate against it")
    found = discover_models(settings.models_package).classes.get(model_id)
    if found is None:
        raise BacktestRefused(f"no class of the models package {settings.models_package!r} declares {model_id!r}")
    cls = import_model_class(found.class_path)
    if not planned.upstream and not cls.replayable:
        raise BacktestRefused(
            f"{model_id} reads its own source (it has no upstream models) and {cls.__qualname__} does not declare "
            "it replayable (replayable = True): the inputs of its past cycles cannot be read again"
        )
    return Candidate(model_id, row.version, row.id, found.class_path, dict(row.params), planned.upstream)


def backtest_cycle(conn: PgConnection, settings: Settings, candidate: Candidate, cycle: datetime) -> CycleOutcome:
    """Run ``candidate`` for one past cycle and store its result and evaluation, or skip the
    cycle saying why (an upstream model or the model's PRIMARY stored no result for it)."""
    refs = _primary_results(conn, [*candidate.upstream, candidate.model_id], cycle)
    missing = [model_id for model_id in candidate.upstream if model_id not in refs]
    if missing:
        return CycleOutcome(cycle.isoformat(), "skipped", reason=f"no stored PRIMARY result of {', '.join(missing)}")
    if candidate.model_id not in refs:
        return CycleOutcome(
            cycle.isoformat(), "skipped", reason=f"{candidate.model_id}'s PRIMARY stored no result to compare with"
        )
    model = import_model_class(candidate.class_path)(
        version_id=candidate.version_id, version_str=candidate.version, role=Role.BACKTEST, params=candidate.params
    )
    upstream = {model_id: refs[model_id] for model_id in candidate.upstream}
    result, duration_ms, evaluation = run_version(conn, settings, model, cycle, upstream, refs[candidate.model_id])
    _store(conn, settings.schema, result, cycle, duration_ms, candidate.label(), evaluation)
    return CycleOutcome(cycle.isoformat(), "stored", outputs=len(result.outputs_per_input))


def _primary_results(conn: PgConnection, models: list[str], cycle: datetime) -> dict[str, dict[str, Any]]:
    """The references (as XCom holds them) of the PRIMARY results the given models stored for the cycle."""
    with conn.cursor() as cur:
        cur.execute(queries(_SQL)["primary_results"], {"models": models, "cycle": cycle})
        rows = cur.fetchall()
    conn.rollback()
    return {
        model_id: asdict(ResultRef(model_id, version_id, version, Role.PRIMARY.value, cycle.isoformat(), count, ms))
        for model_id, version_id, version, count, ms in rows
    }


def _store(
    conn: PgConnection,
    schema: str,
    result: ModelResult,
    cycle: datetime,
    duration_ms: float,
    who: str,
    evaluation: dict[str, float],
) -> None:
    """Replace the version's BACKTEST rows of the cycle with ``result``, in one transaction."""
    ensure_month_partition(conn, schema, cycle)
    results = queries("cycle/results.sql")
    own = queries(_SQL)
    key = {"version_id": result.version_id, "role": Role.BACKTEST.value, "cycle": cycle}
    metrics = [
        (at, model_id, version_id, key_, value, is_default)
        for at, model_id, version_id, _role, key_, value, is_default in metric_rows(
            result, cycle, duration_ms, evaluation
        )
    ]
    with conn, conn.cursor() as cur:
        cur.execute(results["lock_version_slot"], key)
        cur.execute(results["delete_version_outputs"], key)
        cur.execute(own["delete_metrics"], key)
        copy_outputs(cur, schema, result, cycle, duration_ms, who)
        if metrics:
            execute_values(cur, own["insert_metrics"], metrics)


def summarize(conn: PgConnection, candidate: Candidate, outcomes: list[CycleOutcome]) -> dict[str, Any]:
    """The backtest in figures: cycles stored and skipped (with why), and its evaluation against
    the PRIMARY over the stored cycles with 95% intervals, as the gates read it."""
    stored = [o for o in outcomes if o.state == "stored"]
    reasons: dict[str, int] = {}
    for o in outcomes:
        if o.reason:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
    last = datetime.fromisoformat(max(o.cycle for o in outcomes))
    span = {
        "version_id": candidate.version_id,
        "evidence": "backtest",
        "start": min(o.cycle for o in outcomes),
        "end": last + timedelta(microseconds=1),  # the last cycle included
    }
    with conn.cursor() as cur:
        cur.execute(queries("registry/evidence.sql")["cycle_evaluations"], span)
        rows = cur.fetchall()
    conn.rollback()
    return {
        "model_id": candidate.model_id,
        "version": candidate.version,
        "cycles": len(outcomes),
        "stored": len(stored),
        "skipped": reasons,
        "outputs": sum(o.outputs for o in stored),
        # each evaluation gate's figure with its 95% interval, as the gates read it
        "evaluation": {gate.name: asdict(gate.interval_of(rows)) for gate in EVALUATION_GATES},
    }
