"""Issue 27 (3): a late cycle raises Airflow's Deadline Alert, whose callback is the product's notifier."""

from __future__ import annotations

import json
from datetime import timedelta

from airflow.sdk.module_loading import import_string

from models_core.cycle.dag_factory import build_cycle_dag
from models_core.cycle.deadline import CALLBACK_PATH


def test_the_cycle_dag_has_a_deadline_of_its_interval_calling_the_notifier(registry, chain, monkeypatch):  # noqa: ARG001
    assert not build_cycle_dag().deadline  # off by default (Airflow 3.3's dag.test() fails on one)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__CYCLE_DEADLINE_MINUTES", "interval")

    (alert,) = build_cycle_dag().deadline

    assert alert.interval == timedelta(minutes=5)  # the default schedule's
    assert alert.callback.path == CALLBACK_PATH
    assert alert.callback.kwargs == {"dag_id": "detection_models", "minutes": 5}


def test_a_configured_deadline_replaces_the_interval_and_none_turns_it_off(registry, chain, monkeypatch):  # noqa: ARG001
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__CYCLE_DEADLINE_MINUTES", "12")
    assert build_cycle_dag().deadline[0].interval == timedelta(minutes=12)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__CYCLE_DEADLINE_MINUTES", "none")
    assert not build_cycle_dag().deadline


def test_a_missed_deadline_reaches_people_through_the_configured_notifier(tmp_path, monkeypatch):
    sent = tmp_path / "sent.jsonl"
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__NOTIFIER", "recording_notifier.FileNotifier")
    monkeypatch.setenv(
        "AIRFLOW__MODEL_REGISTRY__NOTIFIER_KWARGS",
        json.dumps({"path": str(sent), "text": "late: {{ model_registry_event.message }}"}),
    )
    callback = import_string(CALLBACK_PATH)  # as Airflow's executor finds it
    context = {  # what Airflow's scheduler passes with a missed deadline
        "dag_run": {"dag_run_id": "scheduled__2026-12-02T10:05:00+00:00", "state": "running"},
        "deadline": {"id": "0193", "deadline_time": "2026-12-02T10:10:00+00:00"},
    }

    assert callback(dag_id="detection_models", minutes=5, context=context) is True

    (line,) = [json.loads(text) for text in sent.read_text().splitlines()]
    assert line["kind"] == "late_cycle" and line["model_id"] == "detection_models"
    assert line["text"].startswith("late: cycle scheduled__2026-12-02T10:05:00+00:00 of detection_models is not")
    assert "5 minutes after it was queued (deadline 2026-12-02T10:10:00+00:00, state running)" in line["text"]
