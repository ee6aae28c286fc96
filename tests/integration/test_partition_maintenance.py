"""Partition maintenance against a real PostgreSQL: premake, DEFAULT rows, retention, locks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg2
import pytest

from models_core.cycle.persistence import persist_result
from models_core.maintenance.dag_factory import build_partitions_dag
from models_core.maintenance.partition_maintenance import maintain_partitions
from models_core.model import ModelResult, Role
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.partitions import list_partitions
from models_core.store.sql_files import queries

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _run(conn, **overrides):
    args = {"now": NOW, "months_ahead": 3, "retention_months": 6, "retention_mode": "drop"} | overrides
    return maintain_partitions(conn, load_settings().schema, **args)


def _months(conn) -> list[str]:
    return sorted(p.name.rsplit("_p", 1)[1] for p in list_partitions(conn, load_settings().schema) if not p.is_default)


def _insert(registry, moment: datetime, version_id: int = 1, rows: int = 1) -> None:
    for _ in range(rows):
        registry.execute(
            "INSERT INTO detection_model_run_outputs (cycle_started_at, model_id, version_id, role)"
            " VALUES (%s, 'm', %s, 'PRIMARY')",
            (moment, version_id),
        )


@pytest.fixture
def conn(registry):
    with registry_connection(load_settings()) as connection:
        yield connection


def test_premakes_the_current_month_and_the_months_ahead(conn):
    report = _run(conn)

    assert _months(conn) == ["202611", "202612", "202701", "202702"]
    assert report.created == [f"detection_model_run_outputs_p{m}" for m in ("202611", "202612", "202701", "202702")]


def test_second_run_changes_nothing(conn, registry):
    _run(conn)
    second = _run(conn)

    assert (second.created, second.removed, second.moved_from_default) == ([], [], {})
    assert [s for (s,) in registry.query("SELECT status FROM detection_model_maintenance_runs ORDER BY id")] == [
        "SUCCESS",
        "SUCCESS",
    ]


def test_rows_in_the_default_partition_are_moved_then_the_partition_attaches(conn, registry):
    _insert(registry, datetime(2027, 1, 15, tzinfo=UTC), rows=3)
    _insert(registry, datetime(2026, 9, 1, tzinfo=UTC), rows=2)  # inside retention, month not premade

    report = _run(conn)

    assert report.moved_from_default == {
        "detection_model_run_outputs_p202701": 3,
        "detection_model_run_outputs_p202609": 2,
    }
    assert registry.query("SELECT count(*) FROM detection_model_run_outputs_default") == [(0,)]
    assert registry.query(
        "SELECT tableoid::regclass::text, count(*) FROM detection_model_run_outputs GROUP BY 1 ORDER BY 1"
    ) == [("detection_model_run_outputs_p202609", 2), ("detection_model_run_outputs_p202701", 3)]
    (details,) = registry.query("SELECT details FROM detection_model_maintenance_runs")[0]
    assert details["moved_from_default"]["detection_model_run_outputs_p202701"] == 3


def test_retention_drops_partitions_wholly_older_than_the_window_and_their_metrics(conn, registry):
    for month in (1, 4, 5):
        _insert(registry, datetime(2026, month, 10, tzinfo=UTC))
    registry.execute(
        "INSERT INTO detection_model_metrics (cycle_started_at, model_id, version_id, role, metric_key,"
        " metric_value) VALUES ('2026-04-30T23:59:59Z', 'm', 1, 'PRIMARY', 'k', 1),"
        " ('2026-05-01T00:00:00Z', 'm', 1, 'PRIMARY', 'k', 1)"
    )

    report = _run(conn)  # files the DEFAULT rows into their months, then applies retention

    assert report.removed == ["detection_model_run_outputs_p202601", "detection_model_run_outputs_p202604"]
    assert report.retention_cutoff == "2026-05-01T00:00:00+00:00"
    assert _months(conn)[0] == "202605"
    assert registry.query("SELECT to_regclass('detection_model_run_outputs_p202601')") == [(None,)]
    assert registry.query("SELECT count(*) FROM detection_model_run_outputs") == [(1,)]
    assert registry.query("SELECT cycle_started_at FROM detection_model_metrics") == [
        (datetime(2026, 5, 1, tzinfo=UTC),)
    ]


def test_retention_in_detach_mode_keeps_the_old_data_outside_the_table(conn, registry):
    _insert(registry, datetime(2026, 2, 10, tzinfo=UTC), rows=4)

    report = _run(conn, retention_mode="detach")

    assert report.removed == ["detection_model_run_outputs_p202602"]
    assert registry.query("SELECT count(*) FROM detection_model_run_outputs") == [(0,)]
    kept = report.detached_as["detection_model_run_outputs_p202602"]
    assert kept.startswith("detection_model_run_outputs_p202602_detached_")
    assert registry.query(f"SELECT count(*) FROM {kept}") == [(4,)]


def test_a_backfill_of_a_detached_month_gets_a_new_partition_not_the_default(conn, registry):
    _insert(registry, datetime(2026, 2, 10, tzinfo=UTC), rows=4)
    _run(conn, retention_mode="detach")
    backfilled = ModelResult("m", 9, Role.PRIMARY, [({"i": 1}, {"v": 1})], {})
    registry.execute(
        "INSERT INTO detection_model_versions (id, model_id, version, status, role)"
        " VALUES (9, 'm', '1.0.0', 'ACTIVE', 'PRIMARY')"
    )

    persist_result(conn, load_settings().schema, backfilled, datetime(2026, 2, 11, tzinfo=UTC), 1.0, "1.0.0")

    assert registry.query("SELECT tableoid::regclass::text, count(*) FROM detection_model_run_outputs GROUP BY 1") == [
        ("detection_model_run_outputs_p202602", 1)
    ]


def test_maintenance_repairs_a_month_whose_table_was_detached_under_its_own_name(conn, registry):
    _run(conn)
    registry.execute("ALTER TABLE detection_model_run_outputs DETACH PARTITION detection_model_run_outputs_p202612")
    _insert(registry, datetime(2026, 12, 3, tzinfo=UTC), rows=2)  # lands in DEFAULT

    report = _run(conn)

    assert report.created == ["detection_model_run_outputs_p202612"]
    assert report.moved_from_default == {"detection_model_run_outputs_p202612": 2}
    assert registry.query("SELECT count(*) FROM detection_model_run_outputs_default") == [(0,)]
    assert registry.query(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'detection\\_model\\_run\\_outputs\\_p202612\\_detached\\_%'"
    ) == [(1,)]


def test_a_second_run_at_the_same_time_skips_and_says_so(conn, registry, caplog):
    settings = load_settings()
    with registry_connection(settings) as other:
        with other.cursor() as cur:
            cur.execute(queries("maintenance/maintenance.sql")["try_lock"], {"schema": settings.schema})
            assert cur.fetchone()[0] is True
        other.commit()

        report = _run(conn)

    assert report.status == "SKIPPED" and report.created == []
    assert any("holds the lock" in r.getMessage() for r in caplog.records)
    assert registry.query("SELECT status FROM detection_model_maintenance_runs") == [("SKIPPED",)]


def test_concurrent_writers_keep_going_while_partitions_are_created(conn, registry):
    version_id = registry.add_version("loner", "1.0.0")
    settings = load_settings()
    cycle = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    with registry_connection(settings) as writer:
        persist_result(
            writer, settings.schema, ModelResult("loner", version_id, Role.PRIMARY, [({"i": 0}, {})]), cycle, 1, "1.0.0"
        )
        # A writer inside an open transaction on the current month holds its locks throughout.
        with writer.cursor() as cur:
            cur.execute(
                "INSERT INTO detection_model_run_outputs (cycle_started_at, model_id, version_id, role)"
                " VALUES (%s, 'loner', %s, 'PRIMARY')",
                (cycle, version_id),
            )
        stop = threading.Event()
        latencies: list[float] = []

        def keep_inserting() -> None:
            with registry_connection(settings) as busy:
                while not stop.is_set():
                    started = time.perf_counter()
                    with busy, busy.cursor() as cur:
                        cur.execute(
                            "INSERT INTO detection_model_run_outputs (cycle_started_at, model_id,"
                            " version_id, role) VALUES (%s, 'loner', %s, 'PRIMARY')",
                            (cycle, version_id),
                        )
                    latencies.append(time.perf_counter() - started)

        thread = threading.Thread(target=keep_inserting)
        thread.start()
        try:
            started = time.perf_counter()
            report = _run(conn, months_ahead=6)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            thread.join()
        writer.commit()

    assert len(report.created) == 6  # the current month existed already
    assert elapsed < 5, "maintenance waited for the open writer transaction"
    assert len(latencies) > 10 and max(latencies) < 2.0


def test_partitions_dag_runs_with_params_from_a_manual_trigger(registry):
    dag = build_partitions_dag()

    dag_run = dag.test(
        logical_date=NOW, run_conf={"months_ahead": 1, "retention_months": 3, "retention_mode": "detach"}
    )

    assert str(dag_run.state) == "success"
    assert registry.query(
        "SELECT status, details->>'retention_mode', details->'created' FROM detection_model_maintenance_runs"
    ) == [("SUCCESS", "detach", ["detection_model_run_outputs_p202611", "detection_model_run_outputs_p202612"])]


def test_a_run_that_fails_is_recorded_as_failed(conn, registry, monkeypatch):
    import models_core.maintenance.partition_maintenance as maintenance

    def broken(*args, **kwargs):
        raise psycopg2.errors.LockNotAvailable("canceling statement due to lock timeout")

    monkeypatch.setattr(maintenance, "create_month_partition", broken)
    with pytest.raises(psycopg2.errors.LockNotAvailable):
        _run(conn)

    assert registry.query("SELECT status, details->>'error' FROM detection_model_maintenance_runs") == [
        ("FAILED", "LockNotAvailable: canceling statement due to lock timeout")
    ]
