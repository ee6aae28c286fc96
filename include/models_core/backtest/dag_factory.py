"""``detection_model_backtest``: one version over a range of past cycles, triggered with Params.

Three steps: ``plan_backtest`` checks the version and lists the schedule's cycles in the range
(a refusal fails it with the reason), ``run_cycles`` is mapped over groups of
:data:`~models_core.backtest.cycles.CYCLES_PER_TASK` cycles (each a visible, retryable task
instance in the SHADOW/CHALLENGER pool, a few at a time, so a backtest never crowds out a
cycle's PRIMARY tasks), and ``summarize`` reports what was stored and how the version agreed
with the PRIMARY, with 95% intervals. Run it from the UI's Trigger form, ``airflow dags
trigger -c``, or ``airflow dags test -c``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from airflow.sdk import DAG, Param, get_current_context, task

from models_core.backtest.request import BACKTEST_DAG_ID, check_request
from models_core.backtest.runner import Candidate, CycleOutcome, backtest_cycle, resolve_candidate, summarize
from models_core.cycle.dag_factory import START_DATE, TAGS, default_args
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection

log = logging.getLogger(__name__)

#: Task instances of one backtest that run at once (each holds a slot of the shadow pool).
PARALLEL_TASKS = 2


def _candidate(settings: Settings, params: dict[str, Any]) -> Candidate:
    with registry_connection(settings, application_name="models_core:backtest") as conn:
        return resolve_candidate(conn, settings, params["model_id"], params["version"])


def plan_backtest() -> list[list[str]]:
    """Check the version can be backtested and list the range's cycles, in groups of a task each."""
    params = get_current_context()["params"]
    settings = load_settings()
    with registry_connection(settings, application_name="models_core:backtest") as conn:
        request = check_request(conn, settings, params["model_id"], params["version"], params["start"], params["end"])
    log.info(
        "%s: %d cycles from %s to %s",
        request.candidate.label(),
        len(request.cycles),
        request.start.isoformat(),
        request.end.isoformat(),
    )
    return request.groups()


def run_cycles(cycles: list[str]) -> list[dict[str, Any]]:
    """Backtest the version over a group of cycles, one after another; what each cycle got."""
    params = get_current_context()["params"]
    settings = load_settings()
    candidate = _candidate(settings, params)
    outcomes = []
    with registry_connection(settings, application_name=f"backtest:{candidate.model_id}") as conn:
        for moment in cycles:
            outcome = backtest_cycle(conn, settings, candidate, datetime.fromisoformat(moment))
            if outcome.reason:
                log.warning("%s, cycle %s: skipped, %s", candidate.label(), moment, outcome.reason)
            outcomes.append(asdict(outcome))
    return outcomes


def summarize_backtest(groups: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The whole backtest in figures; fails when no cycle could be stored (nothing to judge)."""
    params = get_current_context()["params"]
    settings = load_settings()
    candidate = _candidate(settings, params)
    outcomes = [CycleOutcome(**outcome) for group in groups for outcome in group]
    if not outcomes:
        raise RuntimeError(f"{candidate.label()}: the range holds no cycle of the schedule")
    with registry_connection(settings, application_name="models_core:backtest") as conn:
        summary = summarize(conn, candidate, outcomes)
    log.info("%s: %s", candidate.label(), summary)
    if not summary["stored"]:
        raise RuntimeError(f"{candidate.label()}: no cycle of the range could be backtested: {summary['skipped']}")
    return summary


def build_backtest_dag(settings: Settings | None = None) -> DAG:
    """The backtest DAG; it runs only when triggered, with the version and range as Params."""
    settings = settings or load_settings()
    with DAG(
        dag_id=BACKTEST_DAG_ID,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=2,
        tags=[*TAGS, "backtest"],
        doc_md=__doc__,
        default_args=default_args(settings),
        params={
            "model_id": Param("", type="string", minLength=1, description="the model whose version to backtest"),
            "version": Param("", type="string", minLength=1, description="the version, e.g. 1.2.0 (not the PRIMARY)"),
            "start": Param("", type="string", format="date-time", description="first cycle time (ISO, UTC)"),
            "end": Param("", type="string", format="date-time", description="last cycle time (ISO, UTC)"),
        },
    ) as dag:
        groups = task(task_id="plan_backtest")(plan_backtest)()
        ran = task(
            task_id="run_cycles",
            pool=settings.shadow_pool,
            max_active_tis_per_dagrun=PARALLEL_TASKS,
            execution_timeout=None,
        )(run_cycles).expand(cycles=groups)
        # after every group succeeded: a failed group fails the run (and it can be cleared alone)
        task(task_id="summarize", multiple_outputs=False)(summarize_backtest)(cast(Any, ran))
    return dag
