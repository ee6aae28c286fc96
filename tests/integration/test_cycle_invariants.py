"""The run-time invariants of DESIGN.md, each on a real DAG run against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from registry_helpers import run_cycle

from models_core.cycle.dag_factory import SUMMARY_TASK_ID, build_cycle_dag

CYCLE = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def test_cycle_stores_one_set_of_rows_per_active_version(registry, chain):
    run = run_cycle(CYCLE)

    assert run.state == "success"
    assert set(run.task_states.values()) == {"success"}
    assert len(registry.outputs(chain["source"], CYCLE)) == 3
    assert len(registry.outputs(chain["source_shadow"], CYCLE)) == 5
    assert len(registry.outputs(chain["source_challenger"], CYCLE)) == 7
    assert len(registry.outputs(chain["middle"], CYCLE)) == 2
    assert len(registry.outputs(chain["sink"], CYCLE)) == 2
    metrics = registry.metrics(chain["source"], CYCLE)
    assert metrics["made"] == 3.0 and metrics["output_count"] == 3.0 and "cycle_duration_ms" in metrics
    summary = registry.query(
        "SELECT executed, failed, skipped_missing_upstream, shadows_ran, shadows_failed"
        " FROM detection_model_cycle_summaries WHERE dag_run_id = %s",
        (run.run_id,),
    )
    assert summary == [(3, 0, 0, 2, 0)]


def test_only_primary_results_reach_downstream_models(registry, chain):
    run_cycle(CYCLE)

    (first_middle_row,) = [out for ref, out in registry.outputs(chain["middle"], CYCLE) if ref == {"i": 0}]
    seen = first_middle_row["seen"]
    assert list(seen) == ["source"]
    assert seen["source"]["version_id"] == chain["source"]
    assert seen["source"]["role"] == "PRIMARY"
    stored_primary = [[ref, out] for ref, out in registry.outputs(chain["source"], CYCLE)]
    assert seen["source"]["outputs"] == stored_primary
    assert seen["source"]["metrics"] == {"made": 3.0}  # the model's own metrics, not the defaults
    sink_seen = registry.outputs(chain["sink"], CYCLE)[0][1]["seen"]
    assert list(sink_seen) == ["middle"] and sink_seen["middle"]["version_id"] == chain["middle"]


def test_shadow_sees_the_same_inputs_and_its_primary_result(registry, chain):
    run_cycle(CYCLE)

    shadow_row = registry.outputs(chain["source_shadow"], CYCLE)[0][1]
    assert shadow_row["primary_outputs"] == 3
    assert shadow_row["cycle"] == CYCLE.isoformat()


def test_no_task_depends_on_a_shadow_or_challenger_task(registry, chain):
    dag = build_cycle_dag()

    shadow_tasks = [t for t in dag.tasks if not t.task_id.endswith(".primary") and t.task_id != SUMMARY_TASK_ID]
    assert {t.task_id for t in shadow_tasks} == {"source.shadow_1_1_0", "source.challenger_2_0_0"}
    for shadow in shadow_tasks:
        assert shadow.downstream_task_ids == {SUMMARY_TASK_ID}
        assert shadow.upstream_task_ids == {"source.primary"}
        assert shadow.pool == "model_shadows"
        assert shadow.priority_weight < dag.get_task("source.primary").priority_weight
    assert dag.get_task("middle.primary").upstream_task_ids == {"source.primary"}
    assert dag.get_task("sink.primary").upstream_task_ids == {"middle.primary"}
    summary = dag.get_task(SUMMARY_TASK_ID)
    assert summary.trigger_rule == "all_done"
    assert summary.downstream_task_ids == set()
    assert [t.task_id for t in dag.tasks if not t.downstream_task_ids] == [SUMMARY_TASK_ID]


def test_primary_failure_skips_downstream_and_own_shadows_and_fails_the_run(registry, chain):
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"fail\": true}' WHERE id = %s", (chain["source"],)
    )
    loner = registry.add_version("loner", "1.0.0")

    run = run_cycle(CYCLE)

    assert run.state == "failed"
    assert run.task_states["source.primary"] == "failed"
    for task_id in ("middle.primary", "sink.primary", "source.shadow_1_1_0", "source.challenger_2_0_0"):
        assert run.task_states[task_id] == "upstream_failed", task_id
    assert run.task_states["loner.primary"] == "success"
    assert run.task_states[SUMMARY_TASK_ID] == "failed"
    assert registry.outputs(chain["middle"], CYCLE) == []
    assert len(registry.outputs(loner, CYCLE)) == 2
    summary = registry.query(
        "SELECT executed, failed, skipped_missing_upstream, failed_primaries"
        " FROM detection_model_cycle_summaries WHERE dag_run_id = %s",
        (run.run_id,),
    )
    assert summary == [(1, 1, 2, ["source.primary"])]


def test_shadow_failure_leaves_the_cycle_green(registry, chain):
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"fail\": true}' WHERE id = %s", (chain["source_shadow"],)
    )

    run = run_cycle(CYCLE)

    assert run.state == "success"
    assert run.task_states["source.shadow_1_1_0"] == "failed"
    assert {
        run.task_states[t]
        for t in ("source.primary", "middle.primary", "sink.primary", "source.challenger_2_0_0", SUMMARY_TASK_ID)
    } == {"success"}
    assert registry.outputs(chain["source_shadow"], CYCLE) == []
    summary = registry.query(
        "SELECT shadows_ran, shadows_failed FROM detection_model_cycle_summaries WHERE dag_run_id = %s", (run.run_id,)
    )
    assert summary == [(1, 1)]


def test_running_the_same_cycle_twice_leaves_one_set_of_rows(registry, chain):
    count_metrics = (
        "SELECT version_id, count(*) FROM detection_model_metrics"
        " WHERE cycle_started_at = %s GROUP BY version_id ORDER BY version_id"
    )
    run_cycle(CYCLE)
    first = {key: registry.outputs(version_id, CYCLE) for key, version_id in chain.items()}
    first_metrics = registry.query(count_metrics, (CYCLE,))

    run_cycle(CYCLE)

    for key, version_id in chain.items():
        assert registry.outputs(version_id, CYCLE) == first[key], key
    assert registry.query(count_metrics, (CYCLE,)) == first_metrics
    per_version = dict(first_metrics)
    assert [per_version[chain[k]] for k in ("source", "middle", "sink")] == [3, 3, 3]  # made, output_count, duration


def test_version_demoted_between_parse_and_run_skips_cleanly(registry, chain):
    dag = build_cycle_dag()
    registry.execute(
        "UPDATE detection_model_versions SET status = 'INACTIVE' WHERE id = %s", (chain["source_challenger"],)
    )
    registry.execute("UPDATE detection_model_versions SET role = 'SHADOW' WHERE id = %s", (chain["middle"],))

    run = run_cycle(CYCLE, dag=dag)

    assert run.state == "success"
    assert run.task_states["source.challenger_2_0_0"] == "skipped"
    assert run.task_states["middle.primary"] == "skipped"
    assert run.task_states["sink.primary"] == "skipped"
    assert run.task_states["source.primary"] == "success"
    assert registry.outputs(chain["source_challenger"], CYCLE) == []
    assert registry.outputs(chain["middle"], CYCLE) == []


def test_model_whose_upstream_has_no_active_primary_is_skipped_with_the_reason(registry):
    registry.add_version("source", "1.0.0", "SHADOW")
    middle = registry.add_version("middle", "1.0.0")
    loner = registry.add_version("loner", "1.0.0")

    dag = build_cycle_dag()
    run = run_cycle(CYCLE, dag=dag)

    assert "upstream source has no ACTIVE PRIMARY" in dag.doc_md
    assert "upstream source has no ACTIVE PRIMARY" in (dag.get_task("middle.primary").doc_md or "")
    assert run.task_states["middle.primary"] == "skipped"
    assert run.task_states["source.shadow_1_0_0"] == "skipped"
    assert run.task_states["loner.primary"] == "success"
    assert run.state == "success"
    assert registry.outputs(middle, CYCLE) == []
    assert len(registry.outputs(loner, CYCLE)) == 2


def test_row_without_a_class_is_skipped_with_a_warning_naming_it(registry, caplog):
    registry.add_version("no_such_model", "3.1.4")
    loner = registry.add_version("loner", "1.0.0")

    dag = build_cycle_dag()
    run = run_cycle(CYCLE, dag=dag)

    assert "no_such_model@3.1.4" in dag.doc_md
    assert any("no_such_model@3.1.4" in r.getMessage() for r in caplog.records)
    assert not any(t.task_id.startswith("no_such_model") for t in dag.tasks)
    assert run.state == "success" and len(registry.outputs(loner, CYCLE)) == 2


def test_invalid_result_fails_only_that_task_and_stores_nothing(registry):
    bad = registry.add_version("loner", "1.0.0", params={"bad_result": True})
    source = registry.add_version("source", "1.0.0")

    run = run_cycle(CYCLE)

    assert run.task_states["loner.primary"] == "failed"
    assert run.task_states["source.primary"] == "success"
    assert registry.outputs(bad, CYCLE) == [] and registry.metrics(bad, CYCLE) == {}
    assert len(registry.outputs(source, CYCLE)) == 2


def test_over_long_metric_key_is_dropped_and_the_other_metrics_kept(registry, caplog):
    long_key = "k" * 65
    loner = registry.add_version("loner", "1.0.0", params={"metrics": {long_key: 1.0, "ok": 2.0}})

    run = run_cycle(CYCLE)

    assert run.state == "success"
    metrics = registry.metrics(loner, CYCLE)
    assert metrics["ok"] == 2.0 and metrics["made"] == 2.0 and long_key not in metrics
    assert any(long_key in r.getMessage() for r in caplog.records)


def test_backfilled_cycle_in_a_month_without_partition_gets_its_partition(registry):
    loner = registry.add_version("loner", "1.0.0")
    old_cycle = datetime(2025, 3, 11, 7, 40, tzinfo=UTC)

    run = run_cycle(old_cycle)

    assert run.state == "success"
    rows = registry.query(
        "SELECT tableoid::regclass::text, count(*) FROM detection_model_run_outputs WHERE version_id = %s GROUP BY 1",
        (loner,),
    )
    assert rows == [("detection_model_run_outputs_p202503", 2)]


def test_a_triggered_run_without_logical_date_uses_its_run_after_time(registry):
    loner = registry.add_version("loner", "1.0.0")
    run_after = datetime(2026, 11, 22, 6, 7, 8, tzinfo=UTC)

    dag_run = build_cycle_dag().test(run_after=run_after, logical_date=None)

    assert str(dag_run.state) == "success" and dag_run.logical_date is None
    assert len(registry.outputs(loner, run_after)) == 2
    assert registry.outputs(loner, run_after)[0][1]["cycle"] == run_after.isoformat()


def test_promotion_between_parse_and_run_runs_the_new_primary(registry, chain):
    dag = build_cycle_dag()
    registry.execute("UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE id = %s", (chain["source"],))
    registry.execute("UPDATE detection_model_versions SET role = 'PRIMARY' WHERE id = %s", (chain["source_shadow"],))

    run = run_cycle(CYCLE, dag=dag)

    assert run.state == "success"
    assert run.task_states["source.primary"] == "success"
    assert run.task_states["source.shadow_1_1_0"] == "skipped"  # it is no longer a SHADOW
    assert registry.outputs(chain["source"], CYCLE) == []
    assert len(registry.outputs(chain["source_shadow"], CYCLE)) == 5
    seen = registry.outputs(chain["middle"], CYCLE)[0][1]["seen"]["source"]
    assert seen["version_id"] == chain["source_shadow"] and seen["role"] == "PRIMARY"
