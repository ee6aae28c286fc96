"""Gates that know how sure they are (issue 25): an evaluation gate passes on the bound of its
95% interval, over inputs evaluated in real cycle DAG runs; every door that sets a gate keeps
its kind; and the audit says which kind decided."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from registry_helpers import modelreg, modelreg_text, person, run_cycle

from models_core.cycle.dag_factory import build_cycle_dag
from models_core.registry.model_registry import ModelRegistry
from models_core.registry.session import LifecycleError
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)


def _gate(answer: dict | str, name: str) -> dict:
    """One gate of a ``--check --json`` report (printed as text when the check fails)."""
    report = json.loads(answer) if isinstance(answer, str) else answer
    return next(g for g in report["gates"] if g["name"] == name)


def test_two_agreeing_inputs_are_not_evidence_until_the_interval_clears_the_gate(registry, capsys):
    """A SHADOW that agreed on the one input of each of two cycles (point agreement 1.0) is
    refused by a min_agreement 0.8 interval gate; the cycles more it names are exactly the
    cycles after which it passes; the promotion's audit says an interval decided."""
    registry.add_version("loner", "1.0.0", params={"n": 1})
    registry.add_version("loner", "1.1.0", "SHADOW", params={"n": 1})
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "2", "--min-agreement", "0.8")[0] == 0
    dag = build_cycle_dag()
    ran = 0

    def run_cycles(count: int) -> None:
        nonlocal ran
        for _ in range(count):
            assert run_cycle(BASE + timedelta(minutes=5 * ran), dag).state == "success"
            ran += 1

    run_cycles(2)
    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    agreement = _gate(check, "min_agreement")
    assert code == 1 and agreement["actual"] == 1.0 and agreement["passed"] is False
    assert (agreement["kind"], agreement["inputs"], agreement["cycles"]) == ("interval", 2, 2)
    assert agreement["interval"][0] == pytest.approx(0.3424, abs=1e-4) and agreement["more_cycles"] == 14
    code, text, _ = modelreg_text(capsys, "promote", "loner", "1.1.0", "--check")
    (row,) = [line for line in text.splitlines() if line.startswith("min_agreement")]
    assert code == 1 and row.split()[3:] == "1 0.3424 to 1 2 inputs, 2 cycles; ~14 more cycles FAIL".split()
    code, _, err = modelreg(capsys, "promote", "loner", "1.1.0")
    assert (
        code == 1
        and (
            "min_agreement needs >= 0.8, measured 1 (95% interval 0.3424-1, 2 inputs in 2 cycles); "
            "about 14 more cycles at this rate would pass it"
        )
        in err
    )

    # the same figures judged by their point estimate pass: the kind is what refused it
    assert modelreg(capsys, "gates", "loner", "--gate-kind", "point")[0] == 0
    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    assert code == 0 and _gate(check, "min_agreement")["kind"] == "point"
    assert modelreg(capsys, "gates", "loner", "--gate-kind", "interval")[0] == 0

    run_cycles(13)
    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    assert code == 1 and _gate(check, "min_agreement")["more_cycles"] == 1
    run_cycles(1)
    code, promoted, _ = modelreg(capsys, "promote", "loner", "1.1.0")

    assert code == 0 and promoted["forced"] is False
    (audited,) = registry.query(
        "SELECT gates FROM detection_model_transitions WHERE version = '1.1.0' AND action = 'promote'"
    )[0]
    decided = _gate({"gates": audited}, "min_agreement")
    assert (decided["kind"], decided["inputs"], decided["cycles"], decided["passed"]) == ("interval", 16, 16, True)
    assert decided["interval"][0] >= 0.8


def test_a_score_difference_is_gated_on_the_bound_of_a_bootstrap_over_cycles(registry, capsys):
    """Score difference is a mean over cycles: the bound comes from resampling whole cycles."""
    registry.add_version("loner", "1.0.0", params={"n": 3})
    registry.add_version("loner", "1.1.0", "SHADOW", params={"n": 3, "scale": 1.5})
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "1", "--max-score-difference", "0.6")[0] == 0
    dag = build_cycle_dag()
    for minutes in (0, 5, 10):
        assert run_cycle(BASE + timedelta(minutes=minutes), dag).state == "success"

    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")

    difference = _gate(check, "max_score_difference")
    # scores 0, 1, 2 against 0, 1.5, 3: a mean difference of 0.5 in every cycle, so the interval is a point
    assert difference["actual"] == pytest.approx(0.5) and difference["interval"] == [pytest.approx(0.5)] * 2
    assert code == 0 and difference["passed"] and (difference["inputs"], difference["cycles"]) == (9, 3)
    assert modelreg(capsys, "gates", "loner", "--max-score-difference", "0.4")[0] == 0
    code, check, _ = modelreg(capsys, "promote", "loner", "1.1.0", "--check")
    assert code == 1 and _gate(check, "max_score_difference")["more_cycles"] is None


def test_the_gate_kind_and_score_gate_are_checked_at_every_door(registry, capsys, airflow_api):
    """CLI, REST API, the Python API and SQL by hand: none stores a kind or bound the gates cannot read."""
    registry.add_version("loner", "1.0.0")
    with pytest.raises(SystemExit):
        modelreg(capsys, "gates", "loner", "--gate-kind", "estimate")
    code, _, err = modelreg(capsys, "gates", "loner", "--max-score-difference", "-1")
    assert code == 1 and err.strip() == (
        "modelreg gates: body.max_score_difference: Input should be greater than or equal to 0"
    )

    answer = airflow_api.client.post(
        "/model-registry/api/models/loner/gates", json={"gate_kind": "estimate"}, headers=airflow_api.headers("alice")
    )
    assert answer.status_code == 422 and "gate_kind" in answer.text

    with registry_connection(load_settings()) as conn:
        guards = ModelRegistry(conn, person("alice")).guards
        with pytest.raises(LifecycleError, match="gate_kind must be one of interval, point"):
            guards.set_gates("loner", gate_kind="estimate")
        with pytest.raises(LifecycleError, match="max_score_difference must be 0 or more"):
            guards.set_gates("loner", max_score_difference=float("nan"))

    registry.execute("INSERT INTO detection_model_quality_gates (model_id) VALUES ('loner')")
    assert registry.query("SELECT gate_kind FROM detection_model_quality_gates WHERE model_id = 'loner'") == [
        ("interval",)
    ]
    for change in ("gate_kind = 'estimate'", "gate_kind = NULL", "max_score_difference = -0.1"):
        with pytest.raises((psycopg2.errors.CheckViolation, psycopg2.errors.NotNullViolation)):
            registry.execute(f"UPDATE detection_model_quality_gates SET {change} WHERE model_id = 'loner'")
    assert modelreg(capsys, "gates", "loner")[1]["gate_kind"] == "interval"
