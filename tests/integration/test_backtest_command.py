"""``modelreg backtest`` (issue 25): checked as the run would check it, then triggered through
Airflow's own API as the person logged in, so Airflow decides who may run a backtest and
records who did. Against the in-process Airflow API app, with the DAG files parsed into its
metadata database by the cycle runs (``dag.test()`` syncs the whole DAG folder)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from registry_helpers import backtest_runs, modelreg, run_cycle

from models_core.backtest.request import BACKTEST_DAG_ID
from models_core.cycle.dag_factory import build_cycle_dag

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def test_a_backtest_is_checked_like_its_run_and_triggered_as_the_person_logged_in(registry, capsys, airflow_api):
    registry.add_version("loner", "1.0.0", params={"n": 3})
    registry.add_version("loner", "1.1.0", "SHADOW", params={"n": 5})
    dag = build_cycle_dag()
    cycles = [BASE + timedelta(minutes=5 * i) for i in range(3)]
    for cycle in cycles:
        assert run_cycle(cycle, dag).state == "success"
    span = ("--start", cycles[0].isoformat(), "--end", cycles[-1].isoformat())
    before = backtest_runs()
    conf = {"model_id": "loner", "version": "1.1.0", "start": cycles[0].isoformat(), "end": cycles[-1].isoformat()}

    code, checked, _ = modelreg(capsys, "backtest", "loner", "1.1.0", *span, "--check")
    assert code == 0, checked
    assert checked == {"dag_id": BACKTEST_DAG_ID, "conf": conf, "cycles": 3, "tasks": 1, "cycles_per_task": 48}

    refusals = {
        ("loner", "1.0.0", *span): "modelreg backtest: loner@1.0.0 is the model's PRIMARY",
        ("loner", "9.9.9", *span): "modelreg backtest: loner@9.9.9 is not registered",
        ("loner", "1.1.0", "--start", cycles[0].isoformat(), "--end", "2999-01-01T00:00:00"): "is in the future",
        ("loner", "1.1.0", "--start", cycles[-1].isoformat(), "--end", cycles[0].isoformat()): "is before start",
        ("loner", "1.1.0", "--start", "yesterday", "--end", cycles[0].isoformat()): "start must be an ISO timestamp",
        (
            "loner",
            "1.1.0",
            "--start",
            (cycles[0] + timedelta(minutes=1)).isoformat(),
            "--end",
            (cycles[0] + timedelta(minutes=2)).isoformat(),
        ): "holds no cycle of the schedule",
    }
    for argv, expected in refusals.items():
        for user in (None, "uma"):  # refused before anything is triggered, logged in or not
            code, out, err = modelreg(capsys, "backtest", *argv, api=airflow_api, user=user)
            assert code == 1 and expected in err and len(err.strip().splitlines()) == 1, (argv, user, out, err)

    code, _, err = modelreg(capsys, "backtest", "loner", "1.1.0", *span)  # direct mode: a service, no person
    assert code == 1
    assert "log in first (`modelreg login`)" in err and f"airflow dags trigger {BACKTEST_DAG_ID} -c '" in err

    code, _, err = modelreg(capsys, "backtest", "loner", "1.1.0", *span, api=airflow_api, user="victor")
    assert code == 1 and f"permission to trigger the {BACKTEST_DAG_ID} DAG" in err, err
    assert backtest_runs() == before

    code, started, err = modelreg(capsys, "backtest", "loner", "1.1.0", *span, api=airflow_api, user="uma")

    assert code == 0, err
    assert started["run"]["triggering_user_name"] == "uma" and started["cycles"] == 3
    made = [run for run in backtest_runs() if run not in before]
    assert made == [(started["run"]["dag_run_id"], conf, "uma", "queued")]
