"""Parsing the DAG: cheap, deterministic, and alive through a registry outage."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from registry_helpers import ROOT

from models_core import discovery
from models_core.cycle.dag_factory import build_cycle_dag
from models_core.errors import RegistryUnavailableError
from models_core.settings import load_settings


def _serialized(dag) -> tuple[str, str]:
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.to_dict(dag)
    data["dag"].pop("fileloc", None)
    return json.dumps(data, sort_keys=True), SerializedDagModel.hash(DagSerialization.to_dict(dag))


def test_dag_folder_loads_without_import_errors(registry, chain):  # noqa: ARG001
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [
        "detection_model_approval_sweep",
        "detection_model_approvals",
        "detection_model_backend_health",
        "detection_model_backtest",
        "detection_model_partitions",
        "detection_model_registry_events",
        "detection_model_snapshots",
        "detection_models",
        "example_alert_feed",
        "example_registry_feed",
    ]


def test_two_parses_of_the_same_registry_serialize_identically(registry, chain):  # noqa: ARG001
    first_json, first_hash = _serialized(build_cycle_dag())
    second_json, second_hash = _serialized(build_cycle_dag())

    assert first_hash == second_hash
    assert first_json == second_json


def test_a_registry_change_changes_the_serialized_dag(registry, chain):  # noqa: ARG001
    _, before = _serialized(build_cycle_dag())
    registry.add_version("loner", "1.0.0")

    _, after = _serialized(build_cycle_dag())

    assert before != after


def test_params_change_does_not_create_a_new_dag_version(registry, chain):
    _, before = _serialized(build_cycle_dag())
    registry.execute("UPDATE detection_model_versions SET params = '{\"n\": 9}' WHERE id = %s", (chain["source"],))

    _, after = _serialized(build_cycle_dag())

    assert before == after


def test_unreachable_registry_uses_the_last_known_good_plan_with_a_warning(registry, chain, monkeypatch, caplog):  # noqa: ARG001
    good = build_cycle_dag()
    monkeypatch.setenv(
        "AIRFLOW_CONN_REGISTRY_DB",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "postgres", "schema": "nope"}),
    )

    stale = build_cycle_dag()

    assert sorted(stale.task_ids) == sorted(good.task_ids)
    assert "registry could not be read" in stale.doc_md
    assert any("last-known-good" in r.getMessage() for r in caplog.records)


def test_unreachable_registry_without_a_cached_plan_is_a_clear_error(registry, monkeypatch):  # noqa: ARG001
    monkeypatch.setenv(
        "AIRFLOW_CONN_REGISTRY_DB",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "postgres", "schema": "nope"}),
    )

    with pytest.raises(RegistryUnavailableError, match="registry_db"):
        build_cycle_dag()


def test_dependency_cycle_is_an_import_error_naming_every_model_on_it(registry):
    for model_id in ("source", "middle", "sink", "loner"):
        registry.add_version(model_id, "1.0.0")
    registry.add_dependency("source", "sink")  # source -> middle (class) -> ... sink -> source
    registry.add_dependency("sink", "middle")
    registry.add_dependency("loner", "sink")  # downstream of the cycle, not on it
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    (message,) = bag.import_errors.values()
    assert "['middle', 'sink', 'source']" in message
    assert "loner" not in message.split("Remove")[0]


class _CountingConnection:
    """Passes everything to a real connection and records each statement executed."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def cursor(self):
        outer = self
        cursor = self._conn.cursor()

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                cursor.close()

            def execute(self, query, params=None):
                outer.statements.append(query)
                return cursor.execute(query, params)

            def fetchall(self):
                return cursor.fetchall()

        return Cursor()

    def rollback(self) -> None:
        self._conn.rollback()


def test_parse_reads_the_registry_in_two_queries_under_a_statement_timeout(registry, chain):  # noqa: ARG001
    from models_core.store.connections import registry_connection
    from models_core.store.registry_reader import read_registry

    settings = load_settings()
    with registry_connection(settings, statement_timeout_ms=settings.parse_statement_timeout_ms) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
            assert cur.fetchone()[0] == str(settings.parse_statement_timeout_ms)
        counting = _CountingConnection(conn)
        versions, edges = read_registry(counting)

    assert len(counting.statements) == 2
    assert len(versions) == 5 and ("sink", "middle") in edges


def test_worker_parse_for_a_task_the_registry_dropped_gives_a_task_that_skips(registry, chain, monkeypatch):
    from datetime import datetime

    from registry_helpers import run_cycle

    registry.execute(
        "UPDATE detection_model_versions SET status = 'INACTIVE' WHERE id = %s", (chain["source_challenger"],)
    )
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "detection_models")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "source.challenger_2_0_0")

    dag = build_cycle_dag()
    run = run_cycle(datetime(2026, 11, 21, tzinfo=UTC), dag=dag)

    assert "source.challenger_2_0_0" in dag.task_ids
    assert run.task_states["source.challenger_2_0_0"] == "skipped"
    assert run.state == "success"


def test_a_worker_builds_only_the_task_it_runs_and_the_tasks_whose_xcom_it_reads(registry, chain, monkeypatch):
    from datetime import datetime

    from registry_helpers import run_cycle

    from models_core.cycle.dag_factory import SUMMARY_TASK_ID

    full = build_cycle_dag()
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "detection_models")
    expected = {
        "source.primary": {"source.primary"},
        "source.shadow_1_1_0": {"source.shadow_1_1_0", "source.primary"},
        "middle.primary": {"middle.primary", "source.primary"},
        "sink.primary": {"sink.primary", "middle.primary"},
        SUMMARY_TASK_ID: {SUMMARY_TASK_ID},
    }
    for task_id, needed in expected.items():
        monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", task_id)
        worker_dag = build_cycle_dag()
        assert set(worker_dag.task_ids) == needed, task_id
        for kept in needed:  # the same task as on the DAG processor, with the edges among the kept ones
            assert worker_dag.get_task(kept).upstream_task_ids == full.get_task(kept).upstream_task_ids & needed
            assert worker_dag.get_task(kept).execution_timeout == full.get_task(kept).execution_timeout
    assert worker_dag.get_task(SUMMARY_TASK_ID).op_args[0].keys() == {t for t in full.task_ids if t != SUMMARY_TASK_ID}

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "sink.primary")
    run = run_cycle(datetime(2026, 11, 21, tzinfo=UTC), dag=build_cycle_dag())
    assert run.state == "success" and set(run.task_states) == {"sink.primary", "middle.primary"}


def test_a_worker_reuses_the_cached_plan_only_while_the_registry_and_the_models_are_unchanged(
    registry, chain, monkeypatch, tmp_path
):
    import sys

    build_cycle_dag()  # the DAG processor's parse: writes the cache with what it was built from
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "detection_models")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "middle.primary")
    for name in [n for n in sys.modules if n.startswith("models_for_tests")]:  # a worker: a process of its own
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(discovery, "_discovered", {})

    build_cycle_dag()
    assert not any(n.startswith("models_for_tests") for n in sys.modules)  # no model module imported

    registry.add_version("middle", "1.1.0", "SHADOW")  # the registry changed: the plan is built afresh
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "middle.shadow_1_1_0")
    assert "middle.shadow_1_1_0" in build_cycle_dag().task_ids
    assert "models_for_tests.chain" in sys.modules


def test_a_workers_parse_leaves_its_connection_to_the_task_and_a_dropped_one_is_replaced(registry, chain, monkeypatch):
    from datetime import datetime

    from registry_helpers import run_cycle

    from models_core.store import connections
    from models_core.store.connections import registry_connection

    settings = load_settings()
    build_cycle_dag()  # the DAG processor's parse keeps nothing
    assert connections._kept_for_task is None
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "detection_models")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "middle.primary")

    build_cycle_dag()
    parse_pid = connections._kept_for_task.get_backend_pid()
    with registry_connection(settings, application_name="model:middle", reuse_kept=True) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pg_backend_pid(), current_setting('statement_timeout'), "
            "current_setting('application_name'), current_setting('search_path')"
        )
        pid, timeout, name, search_path = cur.fetchone()
    assert (pid, timeout, name) == (parse_pid, "0", "model:middle")  # the parse's timeout does not stay
    assert search_path.startswith(f"{settings.schema},") or search_path.startswith(f'"{settings.schema}",')
    assert connections._kept_for_task is None  # taken once, closed by the task

    build_cycle_dag()
    registry.execute("SELECT pg_terminate_backend(%s)", (connections._kept_for_task.get_backend_pid(),))
    with registry_connection(settings, reuse_kept=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)

    build_cycle_dag()  # and the task itself runs on it
    run = run_cycle(datetime(2026, 11, 21, tzinfo=UTC), dag=build_cycle_dag())
    assert run.state == "success" and run.task_states["middle.primary"] == "success"
    assert connections._kept_for_task is None


# --- issue 24, defect 8: a plan built while a model module failed to import ------------------

_NEEDS_HELPER = """
import flaky_models_helper  # noqa: F401 - a module outside the package, absent until the test writes it

from models_core import BaseDetectionModel, ModelContext, ModelResult


class NeedsHelper(BaseDetectionModel):
    model_id = "needs_helper"

    def run(self, ctx: ModelContext) -> ModelResult:
        return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                           outputs_per_input=[({"i": 0}, {"ok": True})], metrics={})
"""


@pytest.fixture
def flaky_models(tmp_path, monkeypatch):
    """Package ``flaky_models``, whose module ``needs_helper`` imports ``flaky_models_helper`` from
    outside the package; returns the path to write that helper at."""
    import importlib
    import sys

    package = tmp_path / "packages" / "flaky_models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "needs_helper.py").write_text(_NEEDS_HELPER)
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.syspath_prepend(str(outside))
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE", "flaky_models")
    importlib.invalidate_caches()
    yield outside / "flaky_models_helper.py"
    for name in [n for n in sys.modules if n.startswith("flaky_models")]:
        del sys.modules[name]


def test_a_worker_never_reuses_a_plan_built_while_a_model_module_failed_to_import_and_says_why(
    registry, flaky_models, monkeypatch
):
    import importlib
    from datetime import datetime

    from registry_helpers import run_cycle

    registry.add_version("needs_helper", "1.0.0")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "detection_models")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "needs_helper.primary")
    cycle = datetime(2026, 11, 21, tzinfo=UTC)

    broken = run_cycle(cycle, dag=build_cycle_dag())  # the worker parses while the helper is missing

    assert broken.task_states["needs_helper.primary"] == "failed"  # an ACTIVE PRIMARY that did not run
    ((reason,),) = registry.query(
        "SELECT reason FROM detection_model_task_outcomes WHERE dag_run_id = %s AND task_id = 'needs_helper.primary'",
        (broken.run_id,),
    )
    assert reason.startswith("LeftOutOfPlanError: needs_helper@1.0.0[PRIMARY] is ACTIVE but cannot run on this worker")
    assert (
        "module flaky_models.needs_helper failed to import: ModuleNotFoundError: No module named 'flaky_models_helper'"
    ) in reason

    flaky_models.write_text("")  # fixed outside the package: nothing the cache's fingerprint covers changed
    importlib.invalidate_caches()
    fixed = run_cycle(cycle, dag=build_cycle_dag())

    assert fixed.task_states["needs_helper.primary"] == "success"


def test_a_worker_on_its_last_known_good_plan_fails_a_task_missing_from_it_and_says_why(
    registry, chain, monkeypatch, capsys
):  # noqa: ARG001
    from datetime import datetime

    from registry_helpers import run_cycle

    build_cycle_dag()  # the last-known-good plan has no loner
    monkeypatch.setenv(
        "AIRFLOW_CONN_REGISTRY_DB",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "postgres", "schema": "nope"}),
    )
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "detection_models")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "loner.primary")

    run = run_cycle(datetime(2026, 11, 21, tzinfo=UTC), dag=build_cycle_dag())

    assert run.task_states["loner.primary"] == "failed"
    task_log = "".join(capsys.readouterr())
    assert (
        "loner.primary did not run: it is not in the last-known-good plan this worker's parse fell back to "
        "because the registry could not be read"
    ) in task_log
    assert "no ACTIVE version" not in task_log and "no longer ACTIVE" not in task_log
