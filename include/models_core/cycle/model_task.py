"""What one model task does when Airflow runs it.

Re-check the version in the registry, skip if its backend is DOWN, build the model and its
context, run it, validate the result, store it (re-checking the version in the writing
transaction), and hand downstream tasks a small reference through XCom (a PRIMARY also puts
it in its asset event). The task records its own final state on its outcome row when it ends
(with a failure's message), so a task cleared and run again on its own leaves a final state
even though the cycle summary, which writes every task's final state, does not run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowSkipException, AirflowTaskTimeout

from models_core.backends.assignment import backend_of
from models_core.backends.availability import BACKEND_DOWN, unavailable_reason
from models_core.cycle.assets import publish_result
from models_core.cycle.persistence import ResultRef, load_result, persist_result
from models_core.cycle.task_notes import record_end, record_failure, record_skip
from models_core.discovery import import_model_class
from models_core.errors import VersionNotActiveError
from models_core.model import BaseDetectionModel, ModelContext, ModelResult, validate_result
from models_core.plan import CYCLE_DAG_ID, primary_task_id
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import VersionRecord, read_active_primary, read_version
from models_core.store.sql_files import queries
from models_core.store.transient import retry_transient

log = logging.getLogger(__name__)

#: How many times a PRIMARY task hands over to a newly promoted PRIMARY while it runs, at most.
MAX_HANDOVERS = 2


class LeftOutOfPlanError(RuntimeError):
    """An ACTIVE version this worker's plan left out (no class for it here, say): it cannot run."""


class MissingUpstreamResultError(RuntimeError):
    """A model task ran without an upstream PRIMARY's result (``airflow tasks test`` of it alone, say)."""


def require_upstream_results(label: str, upstream: Mapping[str, dict[str, Any] | None], cycle: datetime) -> None:
    """Name the upstream results that are missing, and the command that makes them."""
    missing = sorted(model_id for model_id, ref in upstream.items() if ref is None)
    if missing:
        moment = cycle.isoformat()
        raise MissingUpstreamResultError(
            f"{label} needs the PRIMARY result of {', '.join(missing)} for this cycle ({moment}) and there is none "
            f"(its task, {', '.join(primary_task_id(model_id) for model_id in missing)}, has not run in this cycle's "
            f"DAG run): run the cycle first (airflow dags test {CYCLE_DAG_ID} {moment}); a task tested on its own "
            "afterwards reads the results that run stored"
        )


class _StoredResults(Mapping[str, ModelResult]):
    """``ctx.shared``: upstream PRIMARY results, each read on first use through the framework's connection."""

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
    return datetime.fromtimestamp(moment.timestamp(), tz=UTC)


def evaluate_against_primary(
    model: BaseDetectionModel, result: ModelResult, primary: ModelResult | None, duration_ms: float, label: str
) -> dict[str, float]:
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


def run_model_version(
    spec: dict[str, Any], upstream: dict[str, dict[str, Any]], primary: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one ACTIVE version for the current cycle; return its :class:`ResultRef` as a dict.

    ``spec`` is the planned version (model_id, version, role, class_path, blocked_reason,
    plan_stale_reason), or an ACTIVE version this worker's plan left out, with its
    ``left_out_reason`` and no class, which fails with that reason once its outcome row
    says it started; ``upstream`` maps each upstream model to its PRIMARY's reference;
    ``primary`` is, for a SHADOW/CHALLENGER, its own PRIMARY's reference. A transient
    database error retries the whole attempt (it is idempotent) instead of failing it.
    """
    label = f"{spec['model_id']}@{spec['version']}[{spec['role']}]"
    if spec.get("plan_stale_reason"):
        log.warning("%s: this cycle runs the last-known-good plan because %s", label, spec["plan_stale_reason"])
    if spec.get("blocked_reason"):
        raise AirflowSkipException(f"{label} does not run: {spec['blocked_reason']}")
    context = get_current_context()
    ti = context["ti"]
    task = _TaskRun(
        run_id=context["run_id"],
        task_id=ti.task_id,
        cycle=cycle_timestamp(context),
        state_if_failed=_state_after_failure(ti),
    )
    settings = load_settings()
    try:
        require_upstream_results(label, upstream, task.cycle)
        ref = retry_transient(lambda: _attempt(spec, upstream, primary, task, settings, label), label)
    except AirflowSkipException:
        raise
    except AirflowTaskTimeout as exc:
        timeout = AirflowTaskTimeout(
            f"{label} did not finish within its execution timeout ({settings.task_timeout.total_seconds():g} s, "
            f"[model_registry] task_timeout): {exc}"
        )
        record_failure(
            settings, dag_run_id=task.run_id, task_id=task.task_id, error=timeout, state=task.state_if_failed
        )
        raise timeout from exc
    except Exception as exc:
        record_failure(settings, dag_run_id=task.run_id, task_id=task.task_id, error=exc, state=task.state_if_failed)
        raise
    if ref.role == "PRIMARY":
        publish_result(context, ref)
    return ref.to_xcom()


def _state_after_failure(ti: Any) -> str:
    """What Airflow makes of this attempt failing: ``up_for_retry`` while it has tries left, else ``failed``.

    An attempt Airflow runs again is not a failed cycle yet: only ``failed`` counts as one.
    Decided before the model runs, so that nothing is left to go wrong while its error propagates.
    """
    return "up_for_retry" if ti.max_tries and ti.try_number <= ti.max_tries else "failed"


@dataclass(frozen=True)
class _TaskRun:
    run_id: str
    task_id: str
    cycle: datetime
    state_if_failed: str


def _attempt(
    spec: dict[str, Any],
    upstream: dict[str, dict[str, Any]],
    primary: dict[str, Any] | None,
    task: _TaskRun,
    settings: Settings,
    label: str,
) -> ResultRef:
    """Re-check the version, run it, store its result; again if a promotion replaced it meanwhile."""
    with registry_connection(settings, application_name=f"model:{spec['model_id']}", reuse_kept=True) as conn:
        row = _version_to_run(conn, spec, label)
        for handover in range(MAX_HANDOVERS + 1):
            _record_start(conn, task, row)
            if spec.get("left_out_reason"):
                raise LeftOutOfPlanError(
                    f"{row.label()}[{row.role}] is ACTIVE but cannot run on this worker: "
                    f"its DAG parse here left it out of the plan: {spec['left_out_reason']}"
                )
            _skip_if_backend_unavailable(conn, settings, spec, row, task)
            try:
                ref = _run_and_store(conn, settings, spec, row, upstream, primary, task.cycle)
            except VersionNotActiveError as exc:
                replacement = read_active_primary(conn, spec["model_id"]) if spec["role"] == "PRIMARY" else None
                if replacement is None or replacement.id == row.id or handover == MAX_HANDOVERS:
                    log.warning("%s; the task skips and its downstream models do not run", exc)
                    record_end(conn, dag_run_id=task.run_id, task_id=task.task_id, state="skipped", reason=str(exc))
                    raise AirflowSkipException(str(exc)) from None
                log.warning("%s; running the model's PRIMARY now, %s", exc, replacement.label())
                row = replacement
                continue
            record_end(conn, dag_run_id=task.run_id, task_id=task.task_id, state="success")
            log.info(
                "%s@%s[%s]: stored %d outputs for cycle %s (model ran %.1f ms)",
                ref.model_id,
                ref.version,
                ref.role,
                ref.output_count,
                task.cycle.isoformat(),
                ref.duration_ms,
            )
            return ref
    raise AssertionError("unreachable: the last hand-over either stores or skips")


def _version_to_run(conn: Any, spec: dict[str, Any], label: str) -> VersionRecord:
    """The version's row now; for a PRIMARY replaced by a promotion since the parse, the new PRIMARY."""
    row = read_version(conn, spec["model_id"], spec["version"])
    if spec["role"] == "PRIMARY" and not (row and row.is_active_primary):
        # A promotion between parse and run: the model's PRIMARY task runs its PRIMARY now,
        # so the cycle and the downstream models still get the model's result.
        current = read_active_primary(conn, spec["model_id"])
        if current is not None:
            log.warning("%s: no longer the ACTIVE PRIMARY; running the model's PRIMARY now, %s", label, current.label())
            row = current
    if row is None or row.status != "ACTIVE" or row.role != spec["role"]:
        now = "deleted" if row is None else f"{row.status} {row.role}"
        raise AirflowSkipException(
            f"{label} skipped: it was ACTIVE {spec['role']} when the DAG was parsed and is now {now}"
        )
    return row


def _skip_if_backend_unavailable(
    conn: Any, settings: Settings, spec: dict[str, Any], row: VersionRecord, task: _TaskRun
) -> None:
    """Skip, recording why, when the backend the version calls is DOWN or its health is unknown.

    The downstream models then skip too (Airflow's trigger rule); the cycle summary gives
    them the same cause and reason.
    """
    label = f"{row.label()}[{row.role}]"
    backend = backend_of(import_model_class(spec["class_path"]), row.params, label)
    if backend is None:
        return
    reason = unavailable_reason(conn, backend, label, datetime.now(UTC), settings.backend_stale_after)
    if reason is None:
        return
    record_skip(
        conn,
        dag_run_id=task.run_id,
        task_id=task.task_id,
        cycle=task.cycle,
        model_id=row.model_id,
        version_id=row.id,
        role=row.role,
        cause=BACKEND_DOWN,
        reason=reason,
    )
    log.warning("%s skipped: %s", label, reason)
    raise AirflowSkipException(f"{label} skipped: {reason}")


def _record_start(conn: Any, task: _TaskRun, row: VersionRecord) -> None:
    """Credit the task to the version it runs (the cycle summary keeps it)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            queries("cycle/results.sql")["record_task_start"],
            {
                "dag_run_id": task.run_id,
                "task_id": task.task_id,
                "cycle": task.cycle,
                "model_id": row.model_id,
                "version_id": row.id,
                "role": row.role,
            },
        )


def _run_and_store(
    conn: Any,
    settings: Settings,
    spec: dict[str, Any],
    row: VersionRecord,
    upstream: dict[str, dict[str, Any]],
    primary: dict[str, Any] | None,
    cycle: datetime,
) -> ResultRef:
    """Run the version (:func:`run_version`) and store its result."""
    model = import_model_class(spec["class_path"])(
        version_id=row.id, version_str=row.version, role=row.role, params=row.params
    )
    result, duration_ms, evaluation = run_version(conn, settings, model, cycle, upstream, primary)
    return persist_result(conn, settings.schema, result, cycle, duration_ms, row.version, evaluation)


def run_version(
    conn: Any,
    settings: Settings,
    model: BaseDetectionModel,
    cycle: datetime,
    upstream: dict[str, dict[str, Any]],
    primary: dict[str, Any] | None,
) -> tuple[ModelResult, float, dict[str, float]]:
    """Run ``model`` for ``cycle`` on stored upstream results; its validated result, how long it
    ran (ms) and its evaluation against ``primary`` (the model's PRIMARY's reference, if any).

    The model's ``ctx.conn`` is its own, opened if the model uses it and closed after
    ``run()``: whatever it leaves there (an open transaction, a cursor, a closed connection)
    cannot touch the framework's reads and writes on ``conn``. A cycle's task and a backtest
    both run a version here.
    """
    label = model.label()
    primary_loader = None
    if primary is not None:
        primary_loader = cache(lambda: load_result(conn, ResultRef.from_xcom(primary)))
    with ExitStack() as model_conn:
        ctx = ModelContext(
            cycle_started_at=cycle,
            shared=_StoredResults(conn, upstream),
            params=model.params,
            connect=lambda: model_conn.enter_context(
                registry_connection(settings, application_name=f"model:{model.model_id}:ctx")
            ),
            primary_result_loader=primary_loader,
        )
        log.info("%s: running cycle %s with upstream %s", label, cycle.isoformat(), sorted(upstream))
        started = time.perf_counter()
        result = validate_result(model.run(ctx), model)
        duration_ms = result.duration_ms or round((time.perf_counter() - started) * 1000, 3)
    evaluation = evaluate_against_primary(model, result, ctx.primary_result, duration_ms, label)
    return result, duration_ms, evaluation
