"""Settings derived from others: the task timeout from the schedule (issue 11, defect 2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models_core.settings import load_settings, schedule_interval


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [
        ("*/5 * * * *", timedelta(minutes=5)),
        ("*/1 * * * *", timedelta(minutes=1)),
        ("@hourly", timedelta(hours=1)),
        ("0 9,17 * * *", timedelta(hours=8)),  # irregular: the shortest gap
        ("@once", None),
        (None, None),
    ],
)
def test_schedule_interval_is_the_shortest_gap_between_cycles(schedule, interval):
    assert schedule_interval(schedule) == interval


def test_the_default_task_timeout_is_a_share_of_the_schedule_interval(monkeypatch):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__SCHEDULE", "*/10 * * * *")
    monkeypatch.delenv("AIRFLOW__MODEL_REGISTRY__TASK_TIMEOUT", raising=False)
    assert load_settings().task_timeout == timedelta(minutes=9)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__SCHEDULE", "none")
    assert load_settings().task_timeout == timedelta(hours=1)


def test_task_timeout_can_be_set_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__TASK_TIMEOUT", "42.5")
    assert load_settings().task_timeout == timedelta(seconds=42.5)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__TASK_TIMEOUT", "soon")
    with pytest.raises(
        ValueError, match=r"\[model_registry\] task_timeout must be a positive number of seconds, got 'soon'"
    ):
        load_settings()


def test_approval_ttl_defaults_to_a_day_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.delenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", raising=False)
    assert load_settings().approval_ttl == timedelta(hours=24)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", "0.5")
    assert load_settings().approval_ttl == timedelta(minutes=30)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", "0")
    with pytest.raises(ValueError, match=r"\[model_registry\] approval_ttl_hours must be a positive number of hours"):
        load_settings()


def test_a_backends_health_is_trusted_for_three_health_intervals_unless_set(monkeypatch):
    monkeypatch.delenv("AIRFLOW__MODEL_REGISTRY__BACKEND_STALE_AFTER", raising=False)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__BACKEND_HEALTH_SCHEDULE", "*/2 * * * *")
    assert load_settings().backend_stale_after == timedelta(minutes=6)
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__BACKEND_STALE_AFTER", "45")
    assert load_settings().backend_stale_after == timedelta(seconds=45)
    monkeypatch.delenv("AIRFLOW__MODEL_REGISTRY__BACKEND_STALE_AFTER")
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__BACKEND_HEALTH_SCHEDULE", "none")
    with pytest.raises(
        ValueError,
        match=r"\[model_registry\] backend_stale_after must be set when "
        r"backend_health_schedule has no regular interval",
    ):
        load_settings()


def test_self_healing_settings_have_their_defaults_and_name_a_bad_value(monkeypatch):
    for key in ("ERROR_AFTER_FAILURES", "NOTIFIER", "NOTIFIER_KWARGS"):
        monkeypatch.delenv(f"AIRFLOW__MODEL_REGISTRY__{key}", raising=False)
    settings = load_settings()
    assert (settings.error_after_failures, settings.notifier, settings.notifier_kwargs) == (3, "", {})
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__NOTIFIER_KWARGS", '["not", "an object"]')
    with pytest.raises(ValueError, match=r"\[model_registry\] notifier_kwargs must be a JSON object"):
        load_settings()
    monkeypatch.delenv("AIRFLOW__MODEL_REGISTRY__NOTIFIER_KWARGS")
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__ERROR_AFTER_FAILURES", "0")
    with pytest.raises(ValueError, match=r"\[model_registry\] error_after_failures must be at least 1, got 0"):
        load_settings()
