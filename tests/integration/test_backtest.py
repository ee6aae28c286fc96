"""Backtests (issue 25): a version over past cycles, run as the ``detection_model_backtest`` DAG
with dag.test(), fed the PRIMARY results the cycle DAG stored, compared as a live SHADOW is,
stored with role BACKTEST; the live evidence, the PRIMARY rows and the cycle's XComs untouched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from registry_helpers import modelreg, run_cycle

from ais_reference import SOLENT_LOOP_S, cycle_at
from models_core.backtest.cycles import CycleRangeError, cycles_between
from models_core.backtest.dag_factory import build_backtest_dag
from models_core.backtest.runner import BacktestRefused, resolve_candidate
from models_core.cycle.dag_factory import build_cycle_dag
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

#: A past date, as the AIS tests replay (after the cycle DAG's start_date).
PAST = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
EVALUATION = ("eval_agreement", "eval_coverage", "eval_inputs_agreed", "eval_inputs_both", "eval_score_mean_abs_diff")


def _backtest(model_id: str, version: str, start: datetime, end: datetime):
    conf = {"model_id": model_id, "version": version, "start": start.isoformat(), "end": end.isoformat()}
    return build_backtest_dag().test(run_conf=conf)


def _summary(run) -> dict:
    """What the run's summarize task returned."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.execute(
            select(XComModel.value).where(
                XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id, XComModel.task_id == "summarize"
            )
        ).all()
    assert len(value) == 1, value
    value = value[0][0]
    return value if isinstance(value, dict) else json.loads(value)


def _cycle_xcoms() -> list[tuple]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.run_id, XComModel.task_id, XComModel.value).where(XComModel.dag_id == "detection_models")
        ).all()
    return sorted((r[0], r[1], str(r[2])) for r in rows)


def _primary_rows(registry) -> list[tuple]:
    return registry.query(
        "SELECT cycle_started_at, model_id, version_id, output_seq, input_ref::text, outputs::text"
        " FROM detection_model_run_outputs WHERE role = 'PRIMARY' ORDER BY 1, 2, 4"
    )


def _metrics(registry, table: str, version_id: int) -> dict[tuple, float]:
    rows = registry.query(
        f"SELECT cycle_started_at, metric_key, metric_value FROM {table}"  # noqa: S608 - a table of this test
        " WHERE version_id = %s AND metric_key = ANY(%s)",
        (version_id, list(EVALUATION)),
    )
    return {(at, key): value for at, key, value in rows}


def test_a_backtest_of_a_shadow_agrees_with_its_live_evaluation_and_touches_nothing_live(registry, capsys):
    registry.add_version("loner", "1.0.0", params={"n": 3})
    shadow = registry.add_version("loner", "1.1.0", "SHADOW", params={"n": 5, "scale": 2})
    dag = build_cycle_dag()
    cycles = [BASE + timedelta(minutes=5 * i) for i in range(3)]
    for cycle in cycles:
        assert run_cycle(cycle, dag).state == "success"
    live = _metrics(registry, "detection_model_metrics", shadow)
    before = (_primary_rows(registry), _cycle_xcoms(), modelreg(capsys, "compare", "loner", "1.0.0", "1.1.0")[1])
    # the live SHADOW's own rows come out of the comparison of the table, not out of the backtest's
    live_rows = registry.query("SELECT count(*) FROM detection_model_run_outputs WHERE role = 'SHADOW'")

    run = _backtest("loner", "1.1.0", cycles[0], cycles[-1])

    assert run.state == "success"
    summary = _summary(run)
    assert (summary["cycles"], summary["stored"], summary["outputs"]) == (3, 3, 15)
    assert summary["evaluation"]["min_agreement"]["estimate"] == 1.0
    backtested = _metrics(registry, "detection_model_backtest_metrics", shadow)
    assert backtested == live and len(backtested) == 3 * len(EVALUATION)  # the same figures, cycle by cycle
    rows = registry.query(
        "SELECT cycle_started_at, output_seq, input_ref::text, outputs::text FROM detection_model_run_outputs"
        " WHERE role = 'BACKTEST' AND version_id = %s ORDER BY 1, 2",
        (shadow,),
    )
    assert len(rows) == 15 and {r[0] for r in rows} == set(cycles)
    after = (_primary_rows(registry), _cycle_xcoms(), modelreg(capsys, "compare", "loner", "1.0.0", "1.1.0")[1])
    assert after == before
    assert registry.query("SELECT count(*) FROM detection_model_run_outputs WHERE role = 'SHADOW'") == live_rows

    again = _backtest("loner", "1.1.0", cycles[0], cycles[-1])

    assert again.state == "success"
    assert (
        registry.query(
            "SELECT cycle_started_at, output_seq, input_ref::text, outputs::text FROM detection_model_run_outputs"
            " WHERE role = 'BACKTEST' AND version_id = %s ORDER BY 1, 2",
            (shadow,),
        )
        == rows
    )
    assert _metrics(registry, "detection_model_backtest_metrics", shadow) == live


def test_a_model_with_upstream_models_is_fed_their_stored_primary_results(registry, chain):
    candidate = registry.add_version("middle", "1.1.0", "SHADOW", status="DRAFT")
    dag = build_cycle_dag()
    ran = [BASE + timedelta(hours=1, minutes=5 * i) for i in range(2)]
    for cycle in ran:
        assert run_cycle(cycle, dag).state == "success"

    # one cycle more than the cycle DAG ran: nothing stored to feed it, so it is skipped
    run = _backtest("middle", "1.1.0", ran[0], ran[-1] + timedelta(minutes=5))

    assert run.state == "success"
    assert _summary(run)["skipped"] == {"no stored PRIMARY result of source": 1}
    seen = registry.query(
        "SELECT outputs -> 'seen' -> 'source' FROM detection_model_run_outputs"
        " WHERE role = 'BACKTEST' AND version_id = %s AND output_seq = 0 ORDER BY cycle_started_at",
        (candidate,),
    )
    assert len(seen) == 2
    for (fed,) in seen:
        assert fed["version_id"] == chain["source"] and fed["role"] == "PRIMARY" and len(fed["outputs"]) == 3


def test_what_cannot_be_backtested_is_refused_saying_why(registry, chain):
    settings = load_settings()
    with registry_connection(settings) as conn:
        with pytest.raises(BacktestRefused, match=r"source reads its own source .* does not declare it replayable"):
            resolve_candidate(conn, settings, "source", "1.1.0")
        with pytest.raises(BacktestRefused, match=r"source@1.0.0 is the model's PRIMARY"):
            resolve_candidate(conn, settings, "source", "1.0.0")
        with pytest.raises(BacktestRefused, match=r"middle@9.9.9 is not registered"):
            resolve_candidate(conn, settings, "middle", "9.9.9")
    with pytest.raises(CycleRangeError, match="in the future"):
        cycles_between("*/5 * * * *", BASE, datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(CycleRangeError, match="more than 8928 cycles"):
        cycles_between("*/5 * * * *", BASE - timedelta(days=40), BASE)

    assert _backtest("source", "1.1.0", BASE, BASE + timedelta(minutes=10)).state == "failed"
    assert registry.query("SELECT count(*) FROM detection_model_run_outputs WHERE role = 'BACKTEST'") == [(0,)]


def test_gates_may_require_backtest_evidence_and_judge_it_beside_the_live_one(registry, capsys):
    """A candidate that flags every input is refused by the interval gate on its backtest; one
    that agrees passes on both kinds of evidence; --check shows them side by side."""
    registry.add_version("loner", "1.0.0", params={"n": 4})
    registry.add_version("loner", "1.1.0", "SHADOW", params={"n": 4})
    registry.add_version("loner", "2.0.0", "SHADOW", status="DRAFT", params={"n": 4, "flag_all": True})
    gates = ("gates", "loner", "--min-cycles", "6", "--min-agreement", "0.8", "--min-backtest-cycles", "6")
    assert modelreg(capsys, *gates)[0] == 0
    dag = build_cycle_dag()
    cycles = [BASE + timedelta(hours=2, minutes=5 * i) for i in range(6)]
    for cycle in cycles:
        assert run_cycle(cycle, dag).state == "success"
    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    assert code == 1 and _gate(check, "min_backtest_cycles") == {
        "name": "min_backtest_cycles",
        "threshold": ">= 6",
        "actual": 0.0,
        "passed": False,
        "kind": "point",
    }

    for version in ("1.1.0", "2.0.0"):
        assert _backtest("loner", version, cycles[0], cycles[-1]).state == "success"

    code, good, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    assert code == 0, good
    live, backtested = _gate(good, "min_agreement"), _gate(good, "backtest:min_agreement")
    assert (live["inputs"], live["cycles"]) == (backtested["inputs"], backtested["cycles"]) == (24, 6)
    assert live["interval"] == backtested["interval"] and backtested["passed"]
    code, worse, _ = modelreg(capsys, "promote", "loner", "2.0.0", "--check")
    refused = _gate(worse, "backtest:min_agreement")
    assert code == 1 and refused["actual"] == 0.5 and refused["interval"][1] < 0.8 and not refused["passed"]
    assert refused["more_cycles"] is None  # more of the same would never pass


def _gate(report, name: str) -> dict:
    report = json.loads(report) if isinstance(report, str) else report
    return next(g for g in report["gates"] if g["name"] == name)


def test_on_a_solent_loop_the_dark_gap_shadow_backtests_as_it_ran_and_a_detector_flagging_every_vessel_is_refused(
    demo, registry, capsys, tmp_path
):
    """Issue 25's demonstration: one whole loop of the Solent replay (17 cycles) through the
    real cycle DAG, then dark_gap_detector 1.1.0 backtested over it gives its live figures
    cycle by cycle; a candidate that calls every vessel dark is refused by the interval gate on
    its backtest alone (it never ran live)."""
    first = cycle_at(SOLENT_LOOP_S, 0, PAST)
    cycles = [first + timedelta(minutes=5 * i) for i in range(SOLENT_LOOP_S // 300)]
    dag = build_cycle_dag()
    for cycle in cycles:
        assert run_cycle(cycle, dag).state == "success"
    shadow = demo["dark_gap_detector@1.1.0"]
    live = _metrics(registry, "detection_model_metrics", shadow)

    run = _backtest("dark_gap_detector", "1.1.0", cycles[0], cycles[-1])

    assert run.state == "success"
    assert _metrics(registry, "detection_model_backtest_metrics", shadow) == live
    summary = _summary(run)
    agreement = summary["evaluation"]["min_agreement"]
    agreed = sum(v for (_, key), v in live.items() if key == "eval_inputs_agreed")
    compared = sum(v for (_, key), v in live.items() if key == "eval_inputs_both")
    assert (summary["stored"], agreement["inputs"], agreement["cycles"]) == (17, compared, 17)
    assert agreement["estimate"] == pytest.approx(agreed / compared)
    assert agreement["low"] <= agreement["estimate"] <= agreement["high"]

    flags_all = tmp_path / "flags-all.json"  # every silence of a second, moving or not, is a dark gap
    flags_all.write_text(json.dumps({"threshold_s": 1, "min_sog_kn": 0}))
    assert modelreg(capsys, "register", "dark_gap_detector", "2.0.0", "--params", str(flags_all))[0] == 0
    assert _backtest("dark_gap_detector", "2.0.0", cycles[0], cycles[-1]).state == "success"
    gates = ("--min-cycles", "0", "--min-agreement", "0.9", "--min-backtest-cycles", "17")
    assert modelreg(capsys, "gates", "dark_gap_detector", *gates)[0] == 0

    code, worse, _ = modelreg(capsys, "promote", "dark_gap_detector", "2.0.0", "--check")

    refused = _gate(worse, "backtest:min_agreement")
    assert code == 1 and refused["kind"] == "interval" and not refused["passed"]
    assert refused["interval"][1] < 0.9 and refused["cycles"] == 17 and refused["more_cycles"] is None
    assert _gate(worse, "min_agreement")["inputs"] == 0  # it never ran live: the figures are the backtest's
