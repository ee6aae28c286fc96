"""What one model task does when Airflow runs it.

Re-check the version in the registry, build the model and its context, run it, validate
the result, store it, and hand downstream tasks a small reference through XCom.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from functools import cache
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowSkipException

from models_core.cycle.persistence import ResultRef, load_result, persist_result
from models_core.discovery import import_model_class
from models_core.model import BaseDetectionModel, ModelContext, ModelResult, validate_result
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import read_active_primary, read_version

log = logging.getLogger(__name__)


class _StoredResults(Mapping[str, ModelResult]):
    """``ctx.shared``: upstream PRIMARY results, each read from the database on first use."""

    def __init__(self, conn: Any, refs: dict[str, dict[str, Any]]) -> None:
        self._conn = conn
        self._refs = {model_id: ResultRef.from_xcom(ref) for model_id, ref in refs.items()}
        self._loaded: dict[str, ModelResult] = {}

    def __getitem__(self, model_id: str) -> ModelResult:
        if model_id not in self._loaded:
            self._loaded[model_id] = load_result(self._conn, self._refs[model_id])
        return self._loaded[model_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)


def cycle_timestamp(context: Mapping[str, Any]) -> datetime:
    """The cycle's timestamp: the run's logical date, or its run-after time when it has none."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return datetime.fromtimestamp(moment.timestamp(), tz=timezone.utc)


def _evaluate_against_primary(model: BaseDetectionModel, result: ModelResult, primary: ModelResult | None,
                              duration_ms: float, label: str) -> dict[str, float]:
    """A SHADOW/CHALLENGER's comparison with its PRIMARY; a failing hook only logs."""
    if primary is None:
        return {}
    try:
        evaluation = {key: float(value) for key, value in model.evaluate(result, primary).items()}
    except Exception:
        log.exception("%s: evaluate() failed; the result is stored without evaluation metrics", label)
        return {}
    if primary.duration_ms:
        evaluation["eval_duration_ratio"] = duration_ms / primary.duration_ms
    log.info("%s: evaluation against its PRIMARY: %s", label, evaluation)
    return evaluation


def run_model_version(spec: dict[str, Any], upstream: dict[str, dict[str, Any]],
                      primary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one ACTIVE version for the current cycle; return its :class:`ResultRef` as a dict.

    ``spec`` is the planned version (model_id, version, role, class_path, blocked_reason);
    ``upstream`` maps each upstream model to its PRIMARY's reference; ``primary`` is, for
    a SHADOW/CHALLENGER, its own PRIMARY's reference.
    """
    label = f"{spec['model_id']}@{spec['version']}[{spec['role']}]"
    if spec.get("blocked_reason"):
        raise AirflowSkipException(f"{label} does not run: {spec['blocked_reason']}")
    context = get_current_context()
    cycle = cycle_timestamp(context)
    settings = load_settings()
    with registry_connection(settings, application_name=f"model:{spec['model_id']}") as conn:
        row = read_version(conn, spec["model_id"], spec["version"])
        if spec["role"] == "PRIMARY" and not (row and row.is_active_primary):
            # A promotion between parse and run: the model's PRIMARY task runs its PRIMARY now,
            # so the cycle and the downstream models still get the model's result.
            current = read_active_primary(conn, spec["model_id"])
            if current is not None:
                log.warning("%s: no longer the ACTIVE PRIMARY; running the model's PRIMARY now, %s",
                            label, current.label())
                row = current
        if row is None or row.status != "ACTIVE" or row.role != spec["role"]:
            now = "deleted" if row is None else f"{row.status} {row.role}"
            raise AirflowSkipException(
                f"{label} skipped: it was ACTIVE {spec['role']} when the DAG was parsed and is now {now}")
        model = import_model_class(spec["class_path"])(
            version_id=row.id, version_str=row.version, role=row.role, params=row.params)
        shared = _StoredResults(conn, upstream)
        primary_loader = None
        if primary is not None:
            primary_loader = cache(lambda: load_result(conn, ResultRef.from_xcom(primary)))
        ctx = ModelContext(cycle_started_at=cycle, shared=shared, conn=conn, params=row.params,
                           primary_result_loader=primary_loader)
        log.info("%s: running cycle %s with upstream %s", label, cycle.isoformat(), sorted(upstream))
        started = time.perf_counter()
        result = validate_result(model.run(ctx), model)
        duration_ms = result.duration_ms or round((time.perf_counter() - started) * 1000, 3)
        evaluation = _evaluate_against_primary(model, result, ctx.primary_result, duration_ms, label)
        conn.rollback()  # end whatever read transaction the model left open
        ref = persist_result(conn, settings.schema, result, cycle, duration_ms, row.version, evaluation)
    log.info("%s: stored %d outputs and %d metrics for cycle %s in %.1f ms", label, ref.output_count,
             len(result.metrics), cycle.isoformat(), duration_ms)
    return ref.to_xcom()
