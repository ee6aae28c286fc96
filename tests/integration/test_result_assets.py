"""Each model's PRIMARY output as an Airflow Asset: the events real cycle runs record."""

from __future__ import annotations

from datetime import UTC, datetime

from registry_helpers import run_cycle

from models_core.cycle.assets import primary_asset

CYCLE = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def asset_events(name: str, run_id: str) -> list[dict]:
    """The extras of the asset events the run's tasks recorded for the asset ``name``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == name, AssetEvent.source_run_id == run_id)
        ).all()
    return [dict(extra) for (extra,) in rows]


def test_each_primary_records_its_result_reference_in_its_models_asset_event(registry, chain):
    run = run_cycle(CYCLE)

    (source,) = asset_events("detection_model.source", run.run_id)
    assert source == {
        "model_id": "source",
        "version_id": chain["source"],
        "version": "1.0.0",
        "role": "PRIMARY",
        "cycle_started_at": CYCLE.isoformat(),
        "output_count": 3,
        "duration_ms": source["duration_ms"],
    }
    (sink,) = asset_events("detection_model.sink", run.run_id)
    assert (sink["version_id"], sink["output_count"]) == (chain["sink"], 2)
    assert sink["output_count"] == len(registry.outputs(chain["sink"], CYCLE))


def test_only_primary_tasks_have_the_asset_and_a_skipped_primary_records_no_event(registry, chain):
    from models_core.cycle.dag_factory import build_cycle_dag

    dag = build_cycle_dag()
    outlets = {t.task_id: [a.name for a in t.outlets] for t in dag.tasks}
    assert outlets["source.primary"] == [primary_asset("source").name] == ["detection_model.source"]
    assert outlets["source.shadow_1_1_0"] == outlets["source.challenger_2_0_0"] == outlets["cycle_summary"] == []
    registry.execute(
        "UPDATE detection_model_versions SET params = '{\"archive_self\": true}' WHERE id = %s", (chain["middle"],)
    )

    run = run_cycle(CYCLE, dag=dag)

    assert run.task_states["middle.primary"] == "skipped"
    assert asset_events("detection_model.middle", run.run_id) == []
    assert asset_events("detection_model.sink", run.run_id) == []
    assert len(asset_events("detection_model.source", run.run_id)) == 1
