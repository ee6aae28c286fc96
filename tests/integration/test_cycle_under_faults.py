"""A cycle when things go wrong while it runs: the hardening of issue 11, on real DAG runs.

Each test states one defect the review found and fails without its fix.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from registry_helpers import run_cycle

from models_core.cycle.dag_factory import SUMMARY_TASK_ID, build_cycle_dag
from models_core.settings import schedule_interval

CYCLE = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def _primary_row_sets(registry, model_id: str, cycle: datetime) -> list[tuple]:
    return registry.query(
        "SELECT version_id, count(*) FROM detection_model_run_outputs WHERE model_id = %s"
        " AND cycle_started_at = %s AND role = 'PRIMARY' GROUP BY version_id",
        (model_id, cycle),
    )


def _outcome_version(registry, run_id: str, task_id: str) -> int:
    return registry.query(
        "SELECT version_id FROM detection_model_task_outcomes WHERE dag_run_id = %s AND task_id = %s", (run_id, task_id)
    )[0][0]


# --- defect 1: reading ctx.shared must not touch the model's own transaction -------------


def test_reading_ctx_shared_leaves_the_models_transaction_on_ctx_conn_alone(registry, chain):
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"hold_on_conn\": true}' WHERE id = %s", (chain["middle"],)
    )

    run = run_cycle(CYCLE)

    assert run.task_states["middle.primary"] == "success"
    first = registry.outputs(chain["middle"], CYCLE)[0][1]
    assert first["held"] == 42 and first["seen"]["source"]["version_id"] == chain["source"]


def test_a_model_that_closes_ctx_conn_still_gets_its_result_stored(registry):
    loner = registry.add_version("loner", "1.0.0", params={"close_conn": True})

    run = run_cycle(CYCLE)

    assert run.task_states["loner.primary"] == "success"
    assert len(registry.outputs(loner, CYCLE)) == 2


# --- defect 2: every task has a timeout within the schedule interval ---------------------


def test_every_task_has_an_execution_timeout_within_the_schedule_interval(registry, chain):
    dag = build_cycle_dag()

    interval = schedule_interval("*/5 * * * *")
    assert dag.max_active_runs >= 2  # a cycle held open by a shadow never holds the next one
    for task in dag.tasks:
        assert task.execution_timeout is not None, task.task_id
        assert timedelta(0) < task.execution_timeout < interval, task.task_id


def test_a_hung_shadow_times_out_as_its_own_failure_and_the_cycle_stays_green(registry, chain, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__TASK_TIMEOUT", "3")
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"sleep\": 60}' WHERE id = %s", (chain["source_shadow"],)
    )

    run = run_cycle(CYCLE)

    assert run.state == "success"
    assert run.task_states["source.shadow_1_1_0"] == "failed"
    assert {
        run.task_states[t]
        for t in ("source.primary", "middle.primary", "sink.primary", "source.challenger_2_0_0", SUMMARY_TASK_ID)
    } == {"success"}
    assert registry.outputs(chain["source_shadow"], CYCLE) == []
    assert (
        "source@1.1.0[SHADOW] did not finish within its execution timeout (3 s, [model_registry] task_timeout)"
        in "".join(capsys.readouterr())
    )


# --- defect 5: a dependency cycle keeps the DAG on its last-known-good plan --------------


def test_a_cycle_made_with_plain_sql_keeps_the_last_known_good_plan_and_says_why(registry, chain, caplog):
    good = build_cycle_dag()
    registry.add_dependency("source", "sink")  # sink -> middle -> source -> sink

    dag = build_cycle_dag()
    caplog.clear()
    run = run_cycle(CYCLE, dag=dag)

    assert {t.task_id for t in dag.tasks} == {t.task_id for t in good.tasks}
    first_line = dag.doc_md.splitlines()[0]
    assert "last-known-good plan" in first_line and "dependency cycle" in first_line
    assert "['middle', 'sink', 'source']" in first_line
    assert run.state == "success"
    stale = registry.query(
        "SELECT plan_stale_reason FROM detection_model_cycle_summaries WHERE dag_run_id = %s", (run.run_id,)
    )[0][0]
    assert "dependency cycle" in stale
    model_task_lines = [r.getMessage() for r in caplog.records if r.name == "models_core.cycle.model_task"]
    assert "last-known-good plan" in model_task_lines[0] and "dependency cycle" in model_task_lines[0]


def test_without_a_last_known_good_plan_a_cycle_is_an_error_naming_its_models(registry, chain):
    from models_core.errors import DependencyCycleError

    registry.add_dependency("source", "sink")

    with pytest.raises(DependencyCycleError, match=r"\['middle', 'sink', 'source'\]"):
        build_cycle_dag()


# --- defect 7: one PRIMARY row set per (cycle, model), credited to the version that ran --


def test_a_primary_task_running_the_new_primary_is_credited_to_it(registry, chain):
    dag = build_cycle_dag()
    registry.execute("UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE id = %s", (chain["source"],))
    registry.execute("UPDATE detection_model_versions SET role = 'PRIMARY' WHERE id = %s", (chain["source_shadow"],))

    run = run_cycle(CYCLE, dag=dag)

    assert run.task_states["source.primary"] == "success"
    assert _outcome_version(registry, run.run_id, "source.primary") == chain["source_shadow"]


def test_a_rerun_after_a_promotion_leaves_one_primary_row_set(registry, chain):
    run_cycle(CYCLE)
    registry.execute("UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE id = %s", (chain["source"],))
    registry.execute("UPDATE detection_model_versions SET role = 'PRIMARY' WHERE id = %s", (chain["source_shadow"],))

    run_cycle(CYCLE)  # the same cycle again, as a clear or a backfill would

    assert _primary_row_sets(registry, "source", CYCLE) == [(chain["source_shadow"], 5)]
    metrics = registry.query(
        "SELECT version_id, count(*) FROM detection_model_metrics WHERE model_id = 'source'"
        " AND cycle_started_at = %s AND role = 'PRIMARY' GROUP BY version_id",
        (CYCLE,),
    )
    assert metrics == [(chain["source_shadow"], 3)]


# --- defect 8: a version that leaves its role while it runs writes nothing ---------------


def test_a_shadow_archived_while_it_runs_stores_nothing(registry, chain):
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"archive_self\": true}' WHERE id = %s",
        (chain["source_shadow"],),
    )

    run = run_cycle(CYCLE)

    assert run.state == "success"
    assert run.task_states["source.shadow_1_1_0"] == "skipped"
    assert registry.outputs(chain["source_shadow"], CYCLE) == []
    assert registry.metrics(chain["source_shadow"], CYCLE) == {}


def test_a_primary_archived_while_it_runs_stores_nothing_and_feeds_nobody(registry, chain, caplog):
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"archive_self\": true}' WHERE id = %s", (chain["source"],)
    )

    run = run_cycle(CYCLE)

    assert run.task_states["source.primary"] == "skipped"
    assert run.task_states["middle.primary"] == "skipped" and run.task_states["sink.primary"] == "skipped"
    assert registry.outputs(chain["source"], CYCLE) == [] and registry.outputs(chain["middle"], CYCLE) == []
    assert any(
        "source@1.0.0[PRIMARY]: result not stored: the version is now ARCHIVED PRIMARY" in r.getMessage()
        for r in caplog.records
    )


def test_a_primary_replaced_by_a_promotion_while_it_runs_hands_over_to_the_new_primary(registry, chain):
    registry.execute(
        'UPDATE detection_model_versions SET params = \'{"promote_instead": "1.1.0"}\' WHERE id = %s',
        (chain["source"],),
    )

    run = run_cycle(CYCLE)

    assert run.task_states["source.primary"] == "success"
    assert _primary_row_sets(registry, "source", CYCLE) == [(chain["source_shadow"], 5)]
    assert _outcome_version(registry, run.run_id, "source.primary") == chain["source_shadow"]
    seen = registry.outputs(chain["middle"], CYCLE)[0][1]["seen"]["source"]
    assert seen["version_id"] == chain["source_shadow"]


# --- defect 9: a transient database error is retried, not a failed PRIMARY ---------------


def test_a_connection_lost_mid_task_is_retried_and_stores_one_set_of_rows(registry, chain, tmp_path, caplog):
    flag = tmp_path / "killed"
    registry.execute(
        "UPDATE detection_model_versions SET params = %s WHERE id = %s",
        (f'{{"kill_framework_conn_once": "{flag}"}}', chain["middle"]),
    )

    with caplog.at_level(logging.WARNING):
        run = run_cycle(CYCLE)

    assert flag.exists()
    assert run.state == "success" and run.task_states["middle.primary"] == "success"
    assert len(registry.outputs(chain["middle"], CYCLE)) == 2
    assert any(
        "transient database error" in r.getMessage() and "middle@1.0.0[PRIMARY]" in r.getMessage()
        for r in caplog.records
    )


# --- defect 10: small ones ----------------------------------------------------------------


def test_a_nul_character_in_an_output_is_rejected_naming_the_pair(registry, capsys):
    bad = registry.add_version("loner", "1.0.0", params={"nul": True})
    source = registry.add_version("source", "1.0.0")

    run = run_cycle(CYCLE)

    assert run.task_states["loner.primary"] == "failed"
    assert run.task_states["source.primary"] == "success"
    assert registry.outputs(bad, CYCLE) == [] and registry.metrics(bad, CYCLE) == {}
    assert len(registry.outputs(source, CYCLE)) == 2
    task_log = "".join(capsys.readouterr())  # the task runner's log of the failure
    assert (
        "ResultValidationError: loner@1.0.0[PRIMARY]: outputs_per_input[2] output contains a NUL character" in task_log
    )


def test_a_primary_skipped_because_its_upstream_was_demoted_counts_as_missing_upstream(registry, chain):
    dag = build_cycle_dag()
    registry.execute("UPDATE detection_model_versions SET role = 'SHADOW' WHERE id = %s", (chain["middle"],))

    run = run_cycle(CYCLE, dag=dag)

    assert run.task_states["middle.primary"] == "skipped" and run.task_states["sink.primary"] == "skipped"
    summary = registry.query(
        "SELECT executed, skipped_inactive, skipped_missing_upstream"
        " FROM detection_model_cycle_summaries WHERE dag_run_id = %s",
        (run.run_id,),
    )
    assert summary == [(1, 1, 1)]


# --- issue 24, defect 7: recording a failure never replaces the model's own error ---------

_ODD_MESSAGES = {
    "nul": "RuntimeError: loner@1.0.0[PRIMARY] failed with a NUL \\x00 here" + ", and more" * 100,
    "surrogate": "RuntimeError: loner@1.0.0[PRIMARY] failed with a lone surrogate \\udc80 here" + ", and more" * 100,
    "unreadable": "_UnreadableError: (its message could not be read: ValueError)",
}


@pytest.mark.parametrize("kind", sorted(_ODD_MESSAGES))
def test_a_failure_message_with_a_nul_or_a_lone_surrogate_is_stored_cleaned_and_the_model_error_stays(
    registry, monkeypatch, capsys, kind
):
    from models_core.cycle.task_notes import MESSAGE_CHARS
    from models_core.registry.actors import SYSTEM
    from models_core.registry.model_registry import ModelRegistry

    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__ERROR_AFTER_FAILURES", "1")
    registry.add_version("loner", "1.0.0", params={"fail_oddly": kind})
    full = _ODD_MESSAGES[kind]
    expected = full if len(full) <= MESSAGE_CHARS else full[: MESSAGE_CHARS - 1] + "\u2026"

    run = run_cycle(CYCLE)

    assert run.task_states["loner.primary"] == "failed"
    assert registry.query(
        "SELECT state, reason FROM detection_model_task_outcomes WHERE dag_run_id = %s AND task_id = 'loner.primary'",
        (run.run_id,),
    ) == [("failed", expected)]
    (error,) = [e for e in ModelRegistry(registry.conn, SYSTEM).lifecycle.history("loner") if e["action"] == "error"]
    assert error["reason"] == f"failed 1 cycles in a row: {CYCLE.isoformat()}: {expected}"
    task_log = "".join(capsys.readouterr())
    assert "During handling of the above exception, another exception occurred" not in task_log
    assert "could not record the failure" not in task_log
    if kind != "surrogate":  # Airflow's own task log cannot encode a lone surrogate in a traceback
        assert {"nul": "RuntimeError: loner@1.0.0[PRIMARY] failed with a NUL", "unreadable": "_UnreadableError"}[
            kind
        ] in task_log
