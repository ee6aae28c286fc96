"""A real distributed run: CeleryExecutor, two Celery workers, scheduler, DAG processor, API server.

Separate processes (each in its own process group) share a fresh PostgreSQL metadata
database, a fresh registry database and a Redis broker, as the docker-compose deployment
does. ``detection_models`` runs on a one-minute schedule while a backfill runs 12 past
cycles in a month that has no partition yet, and the registry changes under them: the
SHADOW of ``source`` is promoted (old PRIMARY ARCHIVED, SHADOW made ACTIVE PRIMARY, in one
transaction). Everything is polled from the metadata and registry databases with
deadlines; nothing sleeps for a fixed long time.

Runs only when MODEL_REGISTRY_TEST_PG names a reachable PostgreSQL, Redis answers
(MODEL_REGISTRY_TEST_REDIS, default redis://127.0.0.1:6379) and the Celery provider is
installed; otherwise it is skipped with the reason.

Two races this test once caught are now product behaviour it checks: cycles that create
month partitions at the same time all succeed (the backfill does that), and a PRIMARY task
parsed before the promotion and run after it runs the model's new PRIMARY, so no cycle
loses its results.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

import psycopg2
import pytest
from distributed_stack import DAG_ID, DistributedStack, stopped_even_on_sigterm, unavailable_reason

pytestmark = pytest.mark.integration

#: key -> (model_id, version, role, params); tests/models_for_tests/chain.py, n = outputs per cycle.
VERSIONS = {
    "source": ("source", "1.0.0", "PRIMARY", {"n": 3}),
    "source_shadow": ("source", "1.1.0", "SHADOW", {"n": 5}),
    "source_challenger": ("source", "2.0.0", "CHALLENGER", {"n": 7}),
    "middle": ("middle", "1.0.0", "PRIMARY", {"n": 2}),
    "sink": ("sink", "1.0.0", "PRIMARY", {"n": 2}),
}
# A past month with no partition yet; the DAG's schedule is one minute, so 12 cycles.
BACKFILL_FROM = "2025-06-10T10:00:00+00:00"
BACKFILL_TO = "2025-06-10T10:11:00+00:00"
BACKFILL_RUNS = 12
BACKFILL_PARTITION = "detection_model_run_outputs_p202506"
BACKFILL_MAX_ACTIVE_RUNS = "3"
FINISHED = ("success", "failed")
#: How long to look for a run between source.primary and middle.primary to promote inside.
MID_RUN_SEARCH_S = 30
#: The whole test (start to stop) must stay well inside 8 minutes on a 2-core machine.
BUDGET_S = 420


def seed_chain(stack: DistributedStack) -> dict[str, int]:
    """source -> middle -> sink with a SHADOW and a CHALLENGER of source, as plain SQL."""
    ids = {}
    for key, (model_id, version, role, params) in VERSIONS.items():
        ids[key] = stack.registry(
            "INSERT INTO detection_model_versions (model_id, version, status, role, params)"
            " VALUES (%s, %s, 'ACTIVE', %s, %s) RETURNING id",
            (model_id, version, role, json.dumps(params)),
        )[0][0]
    stack.registry("INSERT INTO detection_model_dependencies (model_id, depends_on) VALUES ('sink', 'middle')")
    return ids


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"distributed run not possible here: {reason}")
    started = time.monotonic()
    stack = DistributedStack(tmp_path_factory.mktemp("distributed"))
    with stopped_even_on_sigterm(stack):  # a CI timeout's SIGTERM still stops it and drops its databases
        stack.ids = stack.prepare(seed_chain)
        stack.start_services()
        stack.wait_ready()
        stack.timings["setup total"] = time.monotonic() - started
        yield stack
    stops = {key: round(value, 1) for key, value in stack.timings.items() if key.startswith("stop ")}
    print(f"\ndistributed stack stopped and dropped {stops}; logs in {stack.workdir}")


def _runs(stack: DistributedStack) -> list[tuple]:
    return stack.meta(
        "SELECT run_id, run_type, state, logical_date FROM dag_run WHERE dag_id = %s ORDER BY logical_date", (DAG_ID,)
    )


def _source_primary_by_cycle(stack: DistributedStack) -> dict[datetime, set[int]]:
    found: dict[datetime, set[int]] = defaultdict(set)
    for cycle, version_id in stack.registry(
        "SELECT DISTINCT cycle_started_at, version_id FROM detection_model_run_outputs"
        " WHERE model_id = 'source' AND role = 'PRIMARY'"
    ):
        found[cycle].add(version_id)
    return found


def _promote(stack: DistributedStack, old_primary: int, shadow: int) -> datetime:
    """In one transaction: the old PRIMARY ARCHIVED, the SHADOW made the ACTIVE PRIMARY."""
    conn = psycopg2.connect(stack.dsn(stack.registry_db), options="-c search_path=kcg,public")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE detection_model_versions SET status = 'ARCHIVED', updated_at = now()"
                " WHERE id = %s AND status = 'ACTIVE' AND role = 'PRIMARY'",
                (old_primary,),
            )
            assert cur.rowcount == 1
            cur.execute(
                "UPDATE detection_model_versions SET role = 'PRIMARY', updated_at = now()"
                " WHERE id = %s AND status = 'ACTIVE' AND role = 'SHADOW'",
                (shadow,),
            )
            assert cur.rowcount == 1
        with conn.cursor() as cur:
            cur.execute("SELECT clock_timestamp()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _run_between_source_and_middle(stack: DistributedStack, within_s: float) -> str | None:
    """A running run whose source.primary succeeded and whose middle.primary has not started."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        rows = stack.meta(
            "SELECT r.run_id FROM dag_run r"
            " JOIN task_instance s ON s.dag_id = r.dag_id AND s.run_id = r.run_id AND s.task_id = 'source.primary'"
            " JOIN task_instance m ON m.dag_id = r.dag_id AND m.run_id = r.run_id AND m.task_id = 'middle.primary'"
            " WHERE r.dag_id = %s AND r.state = 'running' AND s.state = 'success'"
            "   AND (m.state IS NULL OR m.state IN ('scheduled', 'queued'))"
            " ORDER BY r.logical_date LIMIT 1",
            (DAG_ID,),
        )
        if rows:
            return rows[0][0]
        time.sleep(0.1)
    return None


def test_scheduled_cycles_backfill_and_promotion_on_two_celery_workers(stack: DistributedStack):
    started = time.monotonic()
    ids = stack.ids
    expected_n = {ids[key]: params.get("n", 2) for key, (_, _, _, params) in VERSIONS.items()}
    deadline = lambda: max(5.0, BUDGET_S - stack.timings["setup total"] - (time.monotonic() - started))  # noqa: E731

    partition = f"kcg.{BACKFILL_PARTITION}"
    assert stack.registry("SELECT to_regclass(%s)", (partition,))[0][0] is None, "the month has a partition"
    stack.airflow("dags", "unpause", DAG_ID)
    stack.airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        BACKFILL_FROM,
        "--to-date",
        BACKFILL_TO,
        "--max-active-runs",
        BACKFILL_MAX_ACTIVE_RUNS,
    )
    backfill_ids = [run_id for run_id, run_type, *_ in _runs(stack) if run_type == "backfill"]
    assert len(backfill_ids) == BACKFILL_RUNS, backfill_ids

    # 1. Real scheduled cycles and the first backfill cycles run on the registry as seeded.
    def first_cycles_done() -> bool:
        done = Counter((run_type, state) for _, run_type, state, _ in _runs(stack))
        return done[("scheduled", "success")] >= 1 and done[("backfill", "success")] >= 2

    stack.wait_until("a scheduled cycle and two backfill cycles to succeed", first_cycles_done, deadline())
    stack.timings["first cycles"] = time.monotonic() - started
    versions_before = stack.meta("SELECT count(*) FROM dag_version WHERE dag_id = %s", (DAG_ID,))[0][0]

    # 2. Promote the SHADOW while cycles run, preferably inside a run whose source.primary
    #    has finished and whose middle.primary has not started yet.
    mid_run = _run_between_source_and_middle(stack, within_s=MID_RUN_SEARCH_S)
    running_at_promotion = [run_id for run_id, _, state, _ in _runs(stack) if state == "running"]
    promoted_at = _promote(stack, ids["source"], ids["source_shadow"])
    stack.timings["promoted at"] = time.monotonic() - started

    # 3. Wait for the first scheduled cycles after the promotion (one or two), the new DAG
    #    version, and the end of the backfill.
    def after_promotion() -> list[tuple] | None:
        runs = _runs(stack)
        later = [run for run in runs if run[1] == "scheduled" and run[3] > promoted_at]
        finished_later = [run for run in later if run[2] in FINISHED]
        backfill_done = all(state in FINISHED for _, run_type, state, _ in runs if run_type == "backfill")
        if not backfill_done or not finished_later:
            return None
        new_dag_version = (
            stack.meta("SELECT count(*) FROM dag_version WHERE dag_id = %s", (DAG_ID,))[0][0] > versions_before
        )
        primaries = _source_primary_by_cycle(stack)
        took_effect = any(primaries.get(run[3]) == {ids["source_shadow"]} for run in finished_later[:2])
        if (took_effect and new_dag_version) or len(finished_later) >= 2:
            return finished_later
        return None

    stack.wait_until("the promotion to reach a scheduled cycle and the backfill to finish", after_promotion, deadline())
    stack.timings["promotion observed"] = time.monotonic() - started

    # 4. Every run that exists now must finish; later runs are left to the teardown.
    snapshot = {run_id for run_id, *_ in _runs(stack)}
    stack.wait_until(
        "every run so far to finish",
        lambda: all(state in FINISHED for run_id, _, state, _ in _runs(stack) if run_id in snapshot),
        deadline(),
    )
    stack.timings["all runs finished"] = time.monotonic() - started
    runs = [run for run in _runs(stack) if run[0] in snapshot]

    # ---------------------------------------------------------------- every run succeeded
    tis = stack.meta(
        "SELECT run_id, task_id, state, hostname, try_number, start_date FROM task_instance"
        " WHERE dag_id = %s AND run_id = ANY(%s)",
        (DAG_ID, list(snapshot)),
    )
    bad = [ti for ti in tis if ti[2] not in ("success", "skipped", "removed")]
    failed_runs = [run for run in runs if run[2] != "success"]
    if bad or failed_runs:
        errors = {
            f"{run_id} {task_id} [{state}]": stack.task_errors(run_id, task_id) for run_id, task_id, state, *_ in bad
        }
        raise AssertionError(
            f"runs not successful: {failed_runs}\ntask errors: {json.dumps(errors, indent=1)}\n{stack.diagnostics()}"
        )
    scheduled = [run for run in runs if run[1] == "scheduled"]
    assert {run[0] for run in runs if run[1] == "backfill"} == set(backfill_ids)
    # Every run has all its PRIMARY results, also a run whose tasks were parsed before the
    # promotion and ran after it (the PRIMARY task then runs the model's PRIMARY of now).
    for run_id, *_ in runs:
        states = {task_id: state for rid, task_id, state, *_ in tis if rid == run_id}
        assert states["cycle_summary"] == "success", (run_id, states)
        assert all(states.get(task) == "success" for task in ("source.primary", "middle.primary", "sink.primary")), (
            run_id,
            states,
            stack.skip_reasons(run_id, "source.primary"),
        )
    summaries = stack.registry("SELECT dag_run_id, failed, shadows_failed FROM detection_model_cycle_summaries")
    assert {row[0] for row in summaries} >= snapshot
    assert all(row[1] == 0 and row[2] == 0 for row in summaries), summaries

    # ---------------------------------------------------------------- both workers ran tasks
    spread = Counter(ti[3] for ti in tis if ti[2] in ("success", "skipped") and ti[3])
    assert set(spread) <= set(stack.worker_names), spread
    assert all(spread[name] > 0 for name in stack.worker_names), f"tasks per worker: {dict(spread)}"

    # ---------------------------------------------------------------- exactly one set of rows
    groups = stack.registry(
        "SELECT cycle_started_at, version_id, count(*), count(DISTINCT output_seq), max(output_seq)"
        " FROM detection_model_run_outputs GROUP BY 1, 2"
    )
    for cycle, version_id, count, distinct_seq, max_seq in groups:
        assert count == expected_n[version_id] == distinct_seq == max_seq + 1, (cycle, version_id, count)
    metric_counts = dict(
        ((cycle, version_id), value)
        for cycle, version_id, value in stack.registry(
            "SELECT cycle_started_at, version_id, metric_value FROM detection_model_metrics"
            " WHERE metric_key = 'output_count'"
        )
    )
    assert {key: int(v) for key, v in metric_counts.items()} == {(c, v): n for c, v, n, *_ in groups}

    cycles = {run[3] for run in runs}
    primaries = _source_primary_by_cycle(stack)
    shared = {
        (cycle, model): (json.loads(seen) if isinstance(seen, str) else seen)
        for cycle, model, seen in stack.registry(
            "SELECT cycle_started_at, model_id, outputs->'seen' FROM detection_model_run_outputs"
            " WHERE model_id IN ('middle', 'sink') AND output_seq = 0"
        )
    }
    for cycle in cycles:
        assert len(primaries.get(cycle, ())) == 1, f"cycle {cycle}: source PRIMARY versions {primaries.get(cycle)}"
        (primary,) = primaries[cycle]
        seen_source = shared[(cycle, "middle")]["source"]
        assert seen_source["version_id"] == primary, f"cycle {cycle}: middle saw {seen_source['version_id']}"
        assert len(seen_source["outputs"]) == expected_n[primary]
        assert shared[(cycle, "sink")]["middle"]["version_id"] == ids["middle"]

    # ---------------------------------------------------------------- the promotion took effect
    later_cycles = [run[3] for run in scheduled if run[3] > promoted_at]
    switched = [cycle for cycle in later_cycles if primaries[cycle] == {ids["source_shadow"]}]
    assert switched and switched[0] in later_cycles[:2], (
        f"promotion at {promoted_at} not seen in the first two later cycles {later_cycles}: {dict(primaries)}"
    )
    assert all(primaries[cycle] == {ids["source_shadow"]} for cycle in later_cycles if cycle >= switched[0])
    first_scheduled = min(run[3] for run in scheduled)
    assert primaries[first_scheduled] == {ids["source"]}, "the first scheduled cycle ran before the promotion"
    assert stack.meta("SELECT count(*) FROM dag_version WHERE dag_id = %s", (DAG_ID,))[0][0] > versions_before, (
        "the DAG processor did not store a new DAG version after the promotion"
    )
    old_rows_later = stack.registry(
        "SELECT count(*) FROM detection_model_run_outputs WHERE version_id = %s AND cycle_started_at >= %s",
        (ids["source"], switched[0]),
    )[0][0]
    assert old_rows_later == 0

    if mid_run is not None:  # its source.primary ran before the promotion; middle saw that result
        cycle = next(run[3] for run in runs if run[0] == mid_run)
        assert primaries[cycle] == {ids["source"]}
        assert shared[(cycle, "middle")]["source"]["version_id"] == ids["source"]

    # ---------------------------------------------------------------- the backfill's month
    backfill_cycles = [run[3] for run in runs if run[1] == "backfill"]
    assert all(cycle.year == 2025 and cycle.month == 6 for cycle in backfill_cycles)
    in_partition = stack.registry(f"SELECT count(*) FROM ONLY kcg.{BACKFILL_PARTITION}")[0][0]
    backfill_rows = stack.registry(
        "SELECT count(*) FROM detection_model_run_outputs WHERE cycle_started_at = ANY(%s)", (backfill_cycles,)
    )[0][0]
    assert in_partition == backfill_rows > 0
    assert stack.registry("SELECT count(*) FROM ONLY kcg.detection_model_run_outputs_default")[0][0] == 0

    stack.timings["test body"] = time.monotonic() - started
    not_run = Counter((ti[1], ti[2]) for ti in tis if ti[2] != "success")
    report = {
        "timings_s": {key: round(value, 1) for key, value in stack.timings.items()},
        "runs": Counter(run[1] for run in runs),
        "tasks_per_worker": dict(spread),
        "not_success_tasks": {f"{task} {state}": count for (task, state), count in not_run.items()},
        "promoted_at": promoted_at.isoformat(),
        "running_at_promotion": running_at_promotion,
        "promoted_inside_run": mid_run,
        "tasks_of_that_run": {task: state for rid, task, state, *_ in tis if rid == mid_run},
        "later_scheduled_cycles": [cycle.isoformat() for cycle in later_cycles],
        "first_switched_cycle": switched[0].isoformat(),
        "dag_versions": stack.meta("SELECT count(*) FROM dag_version WHERE dag_id = %s", (DAG_ID,))[0][0],
        "checked_at": datetime.now(UTC).isoformat(),
    }
    (stack.workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print("\n" + json.dumps(report, indent=2, default=str))


def test_concurrent_first_writers_of_months_share_their_partitions():
    """Workers store the first results of two months at once: each finds or makes its partition.

    What ``backfill create --max-active-runs 3`` (Airflow's default is 10) next to the
    scheduled cycles does when months have no partition yet. Needs PostgreSQL only, so it
    runs wherever the integration tests run; three writers of one month and two of another.
    """
    import threading
    import uuid

    from psycopg2 import sql

    from models_core.store.migrate import migrate
    from models_core.store.partitions import ensure_month_partition

    admin = os.environ.get("MODEL_REGISTRY_TEST_PG")
    if not admin:
        pytest.skip("MODEL_REGISTRY_TEST_PG is not set")
    database = f"dist_partitions_{uuid.uuid4().hex[:8]}"
    params = {
        k: v for k, v in psycopg2.extensions.parse_dsn(admin).items() if k in ("host", "port", "user", "password")
    }

    def connect():
        return psycopg2.connect(
            **params, dbname=database, connect_timeout=5, options="-c search_path=kcg,public -c lock_timeout=20s"
        )

    admin_conn = psycopg2.connect(admin, connect_timeout=5)
    admin_conn.autocommit = True
    admin_conn.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    errors: list[str] = []
    rounds = 6
    try:
        setup = connect()
        migrate(setup, "kcg")
        setup.close()
        for month in range(1, rounds + 1):
            moments = [datetime(2024, month, 15, tzinfo=UTC)] * 3 + [datetime(2023, month, 15, tzinfo=UTC)] * 2
            conns = [connect() for _ in moments]
            barrier = threading.Barrier(len(conns))

            def store(conn, moment, barrier=barrier):
                try:
                    barrier.wait(timeout=10)
                    ensure_month_partition(conn, "kcg", moment)
                except Exception as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(f"{moment:%Y-%m}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")

            threads = [threading.Thread(target=store, args=pair) for pair in zip(conns, moments, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            for conn in conns:
                conn.close()
        check = connect()
        with check.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'kcg.detection_model_run_outputs'::regclass"
            )
            partitions = cur.fetchone()[0]
        check.close()
    finally:
        admin_conn.cursor().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin_conn.close()
    assert not errors, f"{len(errors)} of {5 * rounds} concurrent first writes failed: {sorted(set(errors))[:4]}"
    assert partitions == 1 + 2 * rounds  # DEFAULT and every month
