"""Persistence: atomic replace of a (cycle, version)'s rows, COPY round trips, small XCom."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from registry_helpers import run_cycle

from models_core.cycle.persistence import load_result, persist_result
from models_core.errors import ResultValidationError
from models_core.model import ModelResult, Role
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

CYCLE = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
AWKWARD = [
    ({"mmsi": 1, "note": "tab\there"}, {"text": 'back\\slash and "quotes"', "newline": "a\nb"}),
    ({"mmsi": 2}, {"unicode": "선박 ✓", "nested": {"list": [1, 2.5, None, True]}}),
    ("plain string ref", [1, 2, 3]),
    (None, 0.1),
]


def _result(version_id: int, outputs, metrics=None) -> ModelResult:
    return ModelResult(
        model_id="loner",
        version_id=version_id,
        role=Role.PRIMARY,
        outputs_per_input=outputs,
        metrics=metrics or {"m": 1.5},
    )


def test_stored_result_loads_back_equal_including_awkward_json(registry):
    version_id = registry.add_version("loner", "1.0.0")
    settings = load_settings()
    with registry_connection(settings) as conn:
        ref = persist_result(conn, settings.schema, _result(version_id, AWKWARD), CYCLE, 12, "1.0.0")
        loaded = load_result(conn, ref)

    assert loaded.outputs_per_input == AWKWARD
    assert loaded.metrics == {"m": 1.5}
    assert ref.output_count == 4 and ref.role == "PRIMARY"


def test_persisting_again_replaces_the_rows_instead_of_adding(registry):
    version_id = registry.add_version("loner", "1.0.0")
    settings = load_settings()
    with registry_connection(settings) as conn:
        persist_result(conn, settings.schema, _result(version_id, AWKWARD), CYCLE, 12, "1.0.0")
        persist_result(conn, settings.schema, _result(version_id, AWKWARD[:1], {"m": 2.0}), CYCLE, 7, "1.0.0")

    assert len(registry.outputs(version_id, CYCLE)) == 1
    assert registry.metrics(version_id, CYCLE) == {"m": 2.0, "cycle_duration_ms": 7.0, "output_count": 1.0}


def test_a_failed_write_leaves_the_previous_rows_intact(registry):
    version_id = registry.add_version("loner", "1.0.0")
    settings = load_settings()
    with registry_connection(settings) as conn:
        persist_result(conn, settings.schema, _result(version_id, AWKWARD), CYCLE, 12, "1.0.0")
        broken = _result(version_id, [({"ok": 1}, {"bad": float("nan")})], {"m": 1.0})  # JSON has no NaN
        with pytest.raises(ResultValidationError, match=r"outputs_per_input\[0\] output is not JSON-serialisable"):
            persist_result(conn, settings.schema, broken, CYCLE, 1, "1.0.0")

    assert [ref for ref, _ in registry.outputs(version_id, CYCLE)] == [ref for ref, _ in AWKWARD]
    assert registry.metrics(version_id, CYCLE)["m"] == 1.5


def test_xcom_carries_a_small_reference_whatever_the_output_size(registry):
    version_id = registry.add_version("source", "1.0.0", params={"n": 20000})
    cycle = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    run = run_cycle(cycle)

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        values = (
            session.execute(
                select(XComModel.value).where(XComModel.run_id == run.run_id, XComModel.task_id == "source.primary")
            )
            .scalars()
            .all()
        )
    (value,) = values
    stored = value if isinstance(value, str) else json.dumps(value)
    assert len(stored.encode()) < 2048
    assert len(registry.outputs(version_id, cycle)) == 20000
