"""Snapshots over seeded history; every figure checked against a value worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from models_core.maintenance.dag_factory import build_snapshots_dag
from models_core.maintenance.snapshots import Window, render_markdown, store_snapshot, take_snapshot
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.partitions import ensure_month_partition

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(hours=1))
CYCLES = [START + timedelta(minutes=m) for m in (0, 5, 10)]
NOW = datetime(2026, 11, 20, 11, 30, tzinfo=UTC)


def _outcome(registry, cycle, model_id, version_id, role, state):
    task = f"{model_id}.{'primary' if role == 'PRIMARY' else 'shadow'}"
    registry.execute(
        "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at, model_id,"
        " version_id, role, state) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (f"run-{cycle.isoformat()}", task, cycle, model_id, version_id, role, state),
    )


def _metric(registry, cycle, model_id, version_id, role, key, value, is_default=False):
    registry.execute(
        "INSERT INTO detection_model_metrics (cycle_started_at, model_id, version_id, role, metric_key,"
        " metric_value, is_default) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (cycle, model_id, version_id, role, key, value, is_default),
    )


def _output(registry, cycle, model_id, version_id, role, ref, out):
    registry.execute(
        "INSERT INTO detection_model_run_outputs (cycle_started_at, model_id, version_id, role,"
        " input_ref, outputs) VALUES (%s, %s, %s, %s, %s, %s)",
        (cycle, model_id, version_id, role, json.dumps(ref), json.dumps(out)),
    )


@pytest.fixture
def history(registry):
    ids = {
        "source": registry.add_version("source", "1.0.0"),
        "shadow": registry.add_version("source", "1.1.0", "SHADOW"),
        "middle": registry.add_version("middle", "1.0.0"),
        "loner": registry.add_version("loner", "1.0.0"),  # never runs: no signal
        "sink": registry.add_version("sink", "1.0.0"),  # runs, outputs nothing: silent fault
    }
    settings = load_settings()
    with registry_connection(settings) as conn:
        ensure_month_partition(conn, settings.schema, START)
    for cycle, duration, flagged in zip(CYCLES, (100, 200, 600), (1, 2, 3)):
        _outcome(registry, cycle, "source", ids["source"], "PRIMARY", "success")
        _metric(registry, cycle, "source", ids["source"], "PRIMARY", "cycle_duration_ms", duration, True)
        _metric(registry, cycle, "source", ids["source"], "PRIMARY", "output_count", 2, True)
        _metric(registry, cycle, "source", ids["source"], "PRIMARY", "flagged", flagged)
        for i in (0, 1):
            _output(registry, cycle, "source", ids["source"], "PRIMARY", {"i": i}, {"v": i})
    # shadow: 10:00 {i0 agrees, i1 differs}; 10:05 {i0 agrees, i2 shadow only; primary i1 primary only}; 10:10 failed
    for ref, out in (({"i": 0}, {"v": 0}), ({"i": 1}, {"v": 9})):
        _output(registry, CYCLES[0], "source", ids["shadow"], "SHADOW", ref, out)
    for ref, out in (({"i": 0}, {"v": 0}), ({"i": 2}, {"v": 2})):
        _output(registry, CYCLES[1], "source", ids["shadow"], "SHADOW", ref, out)
    for cycle, duration, state in zip(CYCLES, (50, 70, None), ("success", "success", "failed")):
        _outcome(registry, cycle, "source", ids["shadow"], "SHADOW", state)
        if duration:
            _metric(registry, cycle, "source", ids["shadow"], "SHADOW", "cycle_duration_ms", duration, True)
            _metric(registry, cycle, "source", ids["shadow"], "SHADOW", "output_count", 2, True)
            _metric(
                registry,
                cycle,
                "source",
                ids["shadow"],
                "SHADOW",
                "eval_agreement",  # its label, per cycle
                0.5 if duration == 50 else 1.0,
                True,
            )
    for cycle, state in zip(CYCLES, ("success", "success", "failed")):
        _outcome(registry, cycle, "middle", ids["middle"], "PRIMARY", state)
        if state == "success":
            _metric(registry, cycle, "middle", ids["middle"], "PRIMARY", "output_count", 1, True)
    for cycle, state in zip(CYCLES, ("success", "success", "upstream_failed")):
        _outcome(registry, cycle, "sink", ids["sink"], "PRIMARY", state)
        if state == "success":
            _metric(registry, cycle, "sink", ids["sink"], "PRIMARY", "output_count", 0, True)
    # drift history of source's "flagged": 5 one day earlier, 2 on each of days 2..7
    for days_back, value in [(1, 5)] + [(d, 2) for d in range(2, 8)]:
        _metric(registry, START - timedelta(days=days_back), "source", ids["source"], "PRIMARY", "flagged", value)
    _output(registry, datetime(2030, 1, 1, tzinfo=UTC), "source", ids["source"], "PRIMARY", {}, {})  # DEFAULT
    registry.execute(
        "INSERT INTO detection_model_maintenance_runs (kind, started_at, finished_at, status)"
        " VALUES ('partitions', '2026-11-20T05:29:00Z', '2026-11-20T05:30:00Z', 'SUCCESS')"
    )
    return ids


def _snapshot(models=None, window=WINDOW):
    settings = load_settings()
    with registry_connection(settings) as conn:
        return take_snapshot(
            conn,
            schema=settings.schema,
            models_package=settings.models_package,
            kind="hourly",
            window=window,
            models=models,
            now=NOW,
            drift_band=0.5,
            months_ahead=3,
            settle_after=timedelta(minutes=10),
            shadow_pool="model_shadows",
        )


def test_snapshot_figures_match_the_hand_computed_values(history):
    report = _snapshot()
    versions = {(v["model_id"], v["version"]): v for v in report["versions"]}

    source = versions[("source", "1.0.0")]
    assert (source["cycles"], source["succeeded"], source["failed"], source["skipped"]) == (3, 3, 0, 0)
    assert source["duration_ms"] == {"p50": 200.0, "p95": pytest.approx(560.0), "max": 600.0}
    assert source["outputs"] == {"total": 6, "mean_per_cycle": 2.0}
    assert source["metrics"] == {"flagged": {"count": 3, "mean": 2.0, "min": 1.0, "max": 3.0}}
    assert source["signal"] == "ok"

    shadow = versions[("source", "1.1.0")]
    assert (shadow["cycles"], shadow["succeeded"], shadow["failed"]) == (3, 2, 1)
    assert shadow["duration_ms"] == {"p50": 60.0, "p95": pytest.approx(69.0), "max": 70.0}
    assert shadow["comparison"] == {
        "both_sides": 3,
        "shadow_only": 1,
        "primary_only": 1,
        "coverage": 0.6,
        "identical_outputs": 0.6667,
        "agreement": 0.75,
    }

    middle = versions[("middle", "1.0.0")]
    assert (middle["cycles"], middle["succeeded"], middle["failed"], middle["outputs"]["total"]) == (3, 2, 1, 2)
    sink = versions[("sink", "1.0.0")]
    assert (sink["succeeded"], sink["skipped"], sink["outputs"]["total"], sink["signal"]) == (2, 1, 0, "silent_fault")
    loner = versions[("loner", "1.0.0")]
    assert (loner["cycles"], loner["signal"]) == (0, "no_signal")

    (flagged,) = [d for d in report["drift"] if d["metric"] == "flagged"]
    assert flagged["now"] == 2.0 and flagged["previous_day"] == 5.0
    assert flagged["previous_7_days_mean"] == pytest.approx(17 / 7)
    assert flagged["flagged"] == ["previous_day"]
    assert all(not d["flagged"] for d in report["drift"] if d["metric"] != "flagged")

    assert report["registry"] == {
        "active_versions": 5,
        "rows_without_class": [],
        "classes_without_rows": [],
        "module_import_errors": [],
        "primary_failed": {"middle": 1},
        "primary_skipped": {"sink": 1},
        "primary_skipped_backend_down": {},
    }
    assert report["partitions"] == {
        "default_partition_rows": 1,
        "months_missing_ahead": ["2026-12", "2027-01", "2027-02"],
        "last_maintenance_success": "2026-11-20T05:30:00+00:00",
        "hours_since_maintenance": 6.0,
    }


def test_snapshot_for_some_models_leaves_the_others_out(history):
    report = _snapshot(models=["sink"])

    assert [(v["model_id"], v["signal"]) for v in report["versions"]] == [("sink", "silent_fault")]
    assert report["registry"]["primary_failed"] == {}


def test_snapshot_is_stored_and_written_as_markdown(history, tmp_path):
    report = _snapshot()
    settings = load_settings()
    with registry_connection(settings) as conn:
        snapshot_id, path = store_snapshot(conn, report, tmp_path)

    text = path.read_text()
    assert text == render_markdown(report)
    assert "| source@1.1.0 SHADOW | 3 | 1 | 1 | 0.6 | 0.6667 |" in text
    assert "| sink@1.0.0 PRIMARY | 3 | 2 | 0 | 1 | 0 | - | - | - | 0 | silent_fault |" in text
    assert "source@1.0.0[PRIMARY] flagged: now 2, previous day 5" in text
    with registry_connection(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT kind, window_start, report->'registry'->>'active_versions'"
            " FROM detection_model_snapshots WHERE id = %s",
            (snapshot_id,),
        )
        assert cur.fetchone() == ("hourly", START, "5")


def test_diagnostic_snapshot_from_a_manual_trigger_uses_its_params(history, tmp_path, monkeypatch, registry):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__REPORTS_DIR", str(tmp_path))
    dag = build_snapshots_dag()

    dag_run = dag.test(logical_date=WINDOW.end + timedelta(hours=1), run_conf={"window_hours": 2, "models": ["source"]})

    assert str(dag_run.state) == "success"
    ((kind, start, end, models, versions),) = registry.query(
        "SELECT kind, window_start, window_end, models, jsonb_array_length(report->'versions')"
        " FROM detection_model_snapshots"
    )
    assert (kind, start, end, models, versions) == ("diagnostic", START, START + timedelta(hours=2), ["source"], 2)
    assert len(list(tmp_path.glob("snapshot_diagnostic_*.md"))) == 1


def test_cycles_whose_run_never_ended_are_reported_with_the_pool_to_check(history, registry):
    report = _snapshot()

    assert report["cycles"]["unfinished"] == 3  # the history has PRIMARY results but no cycle summaries
    assert report["cycles"]["oldest_unfinished"] == CYCLES[0].isoformat()
    assert "'model_shadows'" in report["cycles"]["hint"] and "airflow pools list" in report["cycles"]["hint"]
    assert "runs not finished 600 s after their cycle: 3" in render_markdown(report)

    for number, cycle in enumerate(CYCLES):
        registry.execute(
            "INSERT INTO detection_model_cycle_summaries (dag_run_id, cycle_started_at, executed, failed,"
            " skipped_missing_upstream, skipped_inactive, shadows_ran, shadows_failed)"
            " VALUES (%s, %s, 3, 0, 0, 0, 1, 0)",
            (f"run_{number}", cycle),
        )
    assert _snapshot()["cycles"] == {"unfinished": 0, "oldest_unfinished": None, "settle_after_s": 600.0, "hint": None}
