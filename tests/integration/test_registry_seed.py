"""The registry benchmark's seed (bench/registry_seed.py), at a small size: what it writes is a
registry the product reads as it reads its own, the same at every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.registry_seed import Scale, seed_registry
from models_core.registry.actors import service
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import read_registry

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SCALE = Scale(models=6, versions_per_model=20, active=3, days=2, cycle_minutes=60, output_hours=3)
_CHECKSUM = """
SELECT (SELECT md5(string_agg(concat_ws('|', id, model_id, version, status, role, params, description, tags,
                                        metadata), ',' ORDER BY id)) FROM detection_model_versions),
       (SELECT md5(string_agg(concat_ws('|', at, model_id, version_id, action, to_status, to_role), ','
                              ORDER BY id)) FROM detection_model_transitions),
       (SELECT md5(string_agg(concat_ws('|', cycle_started_at, version_id, metric_key, metric_value), ','
                              ORDER BY version_id, cycle_started_at, metric_key)) FROM detection_model_metrics)
"""


def _count(cur, table: str) -> int:
    cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a table name of this module
    return cur.fetchone()[0]


def test_seeded_registry_has_the_scale_asked_for(registry) -> None:  # noqa: ARG001 - empties the registry after
    settings = load_settings()
    with registry_connection(settings) as conn:
        seeded = seed_registry(conn, settings.schema, SCALE, end=END)
        cycles = SCALE.days * 24
        with conn.cursor() as cur:
            assert _count(cur, "detection_model_versions") == seeded.rows["versions"] == 120
            cur.execute(
                "SELECT model_id, count(*) FILTER (WHERE status = 'ACTIVE'),"
                " count(*) FILTER (WHERE status = 'ACTIVE' AND role = 'PRIMARY') FROM detection_model_versions"
                " GROUP BY model_id"
            )
            assert {(active, primaries) for _model, active, primaries in cur.fetchall()} == {(3, 1)}
            assert _count(cur, "detection_model_task_outcomes") == 18 * cycles
            # three metrics per version and cycle, a fourth (eval_agreement) for shadows/challengers
            assert _count(cur, "detection_model_metrics") == (6 * 3 + 12 * 4) * cycles
            assert _count(cur, "detection_model_cycle_summaries") == cycles
            assert _count(cur, "detection_model_run_outputs") == 18 * 3 * 2
            cur.execute('SELECT count(*) FROM detection_model_versions WHERE tags @> \'{"team": "team_01"}\'')
            assert cur.fetchone()[0] == 20
            cur.execute("SELECT count(*) FROM detection_model_approval_requests WHERE status = 'PENDING'")
            assert cur.fetchone()[0] == 1
        conn.rollback()
        versions, edges = read_registry(conn)
        assert len(versions) == 18 and len(edges) == seeded.rows["dependencies"] > 0


def test_seeded_history_replays_to_the_seeded_primaries(registry) -> None:  # noqa: ARG001
    settings = load_settings()
    with registry_connection(settings) as conn:
        seeded = seed_registry(conn, settings.schema, SCALE, end=END)
        lifecycle = ModelRegistry(conn, service("bench")).lifecycle
        for model_id in seeded.model_ids:
            assert lifecycle.primary_at(model_id, END) == seeded.primary_of(model_id).version
            # earlier, an archived version was the PRIMARY: the history is a real trail
            earlier = lifecycle.primary_at(model_id, END - timedelta(days=SCALE.days + 10))
            assert earlier is not None and earlier != seeded.primary_of(model_id).version
        overview = ModelRegistry(conn, service("bench")).show(seeded.model(0.5))
        assert {v["status"] for v in overview["versions"]} >= {"ACTIVE", "ARCHIVED", "INACTIVE"}
        assert all(v["latest"] for v in overview["versions"] if v["status"] == "ACTIVE")


def test_seed_is_the_same_at_every_run(registry) -> None:  # noqa: ARG001
    settings = load_settings()
    sums = []
    for _ in range(2):
        with registry_connection(settings) as conn:
            seed_registry(conn, settings.schema, SCALE, end=END)
            with conn.cursor() as cur:
                cur.execute(_CHECKSUM)
                sums.append(cur.fetchone())
            conn.rollback()
    assert sums[0] == sums[1]
