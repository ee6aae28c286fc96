"""The documented names only: a models package of its own, `python -m models_core migrate`
and `airflow dags test detection_models <ISO datetime>`, each as a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from registry_helpers import ROOT

SCHEMA = "acceptance"


def _airflow(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """``airflow ARGS`` from the venv, run from the project's folder, its output captured as text."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        cwd=ROOT,
    )


@pytest.fixture
def team_registry(tmp_path, migrated):  # noqa: ARG001 - a migrated registry
    """A models package of a team's own (positions -> speeding), migrated into a schema of its own.

    Yields the environment the documented commands run in and a connection to the registry.
    """
    package = tmp_path / "team_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "detectors.py").write_text(
        textwrap.dedent("""
        from models_core import BaseDetectionModel, ModelContext, ModelResult

        class Positions(BaseDetectionModel):
            model_id = "positions"

            def run(self, ctx: ModelContext) -> ModelResult:
                rows = [({"id": i}, {"x": i * 1.5}) for i in range(int(self.params["count"]))]
                return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                                   outputs_per_input=rows, metrics={"rows": float(len(rows))})

        class Speeding(BaseDetectionModel):
            model_id = "speeding"
            depends_on = ["positions"]

            def run(self, ctx: ModelContext) -> ModelResult:
                upstream = ctx.shared["positions"].outputs_per_input
                rows = [(ref, {"fast": out["x"] > 2}) for ref, out in upstream]
                return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                                   outputs_per_input=rows, metrics={})
    """)
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE="team_models",
        # Airflow keeps a DAG's serialized copy for 30 s after an earlier test wrote one, and
        # `airflow tasks test` runs that copy: always store this package's DAG.
        AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL="0",
        AIRFLOW__MODEL_REGISTRY__SCHEMA=SCHEMA,
        AIRFLOW__MODEL_REGISTRY__PLAN_CACHE_PATH=str(tmp_path / "plan.json"),
    )
    conn_info = json.loads(os.environ["AIRFLOW_CONN_REGISTRY_DB"])
    conn = psycopg2.connect(
        host=conn_info["host"], port=conn_info.get("port"), user=conn_info["login"], dbname=conn_info["schema"]
    )
    try:
        migrated_now = subprocess.run(
            [sys.executable, "-m", "models_core", "migrate"], env=env, capture_output=True, text=True, check=True
        )
        assert f"schema {SCHEMA}: applied 0001" in migrated_now.stdout
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
            cur.execute(
                "INSERT INTO detection_model_versions (model_id, version, status, role, params) VALUES"
                " ('positions', '1.0.0', 'ACTIVE', 'PRIMARY', '{\"count\": 4}'),"
                " ('positions', '1.1.0', 'ACTIVE', 'SHADOW', '{\"count\": 6}'),"
                " ('speeding', '0.1.0', 'ACTIVE', 'PRIMARY', '{}')"
            )
        yield env, conn
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.close()


def test_own_models_package_runs_through_the_documented_commands(team_registry):
    env, conn = team_registry
    moment = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)

    test = _airflow("dags", "test", "detection_models", moment.isoformat(), env=env)

    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    with conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT model_id, role, count(*) FROM {} WHERE cycle_started_at = %s GROUP BY 1, 2 ORDER BY 1, 2"
            ).format(sql.Identifier(SCHEMA, "detection_model_run_outputs")),
            (moment,),
        )
        assert cur.fetchall() == [("positions", "PRIMARY", 4), ("positions", "SHADOW", 6), ("speeding", "PRIMARY", 4)]


def test_tasks_test_of_a_primary_without_its_upstream_result_names_it_and_how_to_make_it(team_registry):
    env, conn = team_registry
    moment = datetime(2026, 6, 1, 0, 10, tzinfo=UTC).isoformat()

    alone = _airflow("tasks", "test", "detection_models", "speeding.primary", moment, env=env)

    output = alone.stdout + alone.stderr  # `airflow tasks test` exits 0 whatever the task's end
    assert "TypeError" not in output, output[-3000:]
    assert "speeding@0.1.0[PRIMARY] needs the PRIMARY result of positions for this cycle" in output, output[-3000:]
    assert f"airflow dags test detection_models {moment}" in output, output[-3000:]

    # Made as the message says (the cycle first), the task reads the stored result and succeeds.
    cycle = _airflow("dags", "test", "detection_models", moment, env=env)
    assert cycle.returncode == 0, (cycle.stdout + cycle.stderr)[-3000:]
    again = _airflow("tasks", "test", "detection_models", "speeding.primary", moment, env=env)
    output = again.stdout + again.stderr
    assert "new_state=success" in output and "new_state=failed" not in output, output[-3000:]
    assert "needs the PRIMARY result" not in output, output[-3000:]


def test_every_dag_of_the_product_has_the_one_configured_owner_and_airflow_dags_show_draws_it(migrated):  # noqa: ARG001
    env = dict(
        os.environ,
        AIRFLOW__MODEL_REGISTRY__DAG_OWNER="platform-team",
        AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL="0",
    )
    serialized = _airflow("dags", "reserialize", env=env)
    assert serialized.returncode == 0, serialized.stderr[-3000:]
    listed = _airflow("dags", "list", "--output", "json", check=True)
    owners = {dag["dag_id"]: dag["owners"] for dag in json.loads(listed.stdout)}
    # the cycle, partitions, snapshots, backend health, the approval sweep and rounds, the registry
    # events' publisher, the backtest, and the two example consumers (of results and of registry events)
    assert len(owners) == 10, owners
    assert all(owner in (["platform-team"], "platform-team") for owner in owners.values()), owners
    dag_ids = sorted(owners)

    for dag_id in dag_ids:
        shown = _airflow("dags", "show", dag_id)

        assert shown.returncode == 0, f"{dag_id}: {shown.stderr[-3000:]}"
        assert shown.stdout.startswith(f"digraph {dag_id} {{"), f"{dag_id}: {shown.stdout[:500]}"
        assert "warn" not in shown.stderr.lower(), f"{dag_id}: {shown.stderr[-3000:]}"


def test_migrate_creates_the_shadow_pool_and_keeps_an_operators_size(migrated):  # noqa: ARG001
    from airflow.models.pool import Pool

    Pool.delete_pool("model_shadows") if Pool.get_pool("model_shadows") else None

    first = subprocess.run([sys.executable, "-m", "models_core", "migrate"], capture_output=True, text=True, check=True)
    assert "created pool model_shadows (4 slots)" in first.stdout
    assert Pool.get_pool("model_shadows").slots == 4
    _airflow("pools", "set", "model_shadows", "9", "resized", check=True)
    again = subprocess.run([sys.executable, "-m", "models_core", "migrate"], capture_output=True, text=True, check=True)
    assert "pool model_shadows exists (9 slots)" in again.stdout


def test_migrate_says_how_to_create_the_pool_when_airflow_is_out_of_reach(migrated, tmp_path):  # noqa: ARG001
    env = dict(os.environ, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path}/no_airflow_here.db")

    done = subprocess.run([sys.executable, "-m", "models_core", "migrate"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr  # the registry itself is migrated
    (warning,) = [line for line in done.stderr.splitlines() if line.startswith("modelreg migrate: warning:")]
    assert "could not create the Airflow pool model_shadows" in warning
    assert 'airflow pools set model_shadows 4 "SHADOW/CHALLENGER model tasks of detection_models"' in warning
