"""Registry requests answered in Airflow's Required Actions (issue 23): real runs of the approval DAGs.

The sweep and each approval round run with ``dag.test()``; a round's Human-in-the-loop task
parks in ``awaiting_input`` and ``dag.test()`` waits until an answer is recorded from outside.
The answers go through a real ``airflow api-server`` on the same metadata database, as the
Required Actions page sends them (``PATCH .../hitlDetails`` with the person's token), so
Airflow's own checks (logged in, assigned) run before the registry's (not the requester, not
twice, figures that still pass). ``dag.test()`` never times a waiting task out: every test
answers or ends the round, and a step that fails fails the waiting task, so no run hangs.
"""

from __future__ import annotations

import ast
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from registry_api_helpers import PASSWORDS, ApiServer, api_server, auth_environment
from registry_helpers import person

from models_core.registry.approval_dag import (
    APPROVAL_DAG_ID,
    APPROVE_TASK_ID,
    SWEEP_DAG_ID,
    build_approval_dag,
    build_sweep_dag,
    end_stale_rounds,
)
from models_core.registry.model_registry import ModelRegistry

ANSWER_WAIT_S = 90


@pytest.fixture(scope="module")
def airflow_server(tmp_path_factory) -> Iterator[ApiServer]:
    """An API server on the test's metadata database, and the ``airflow_api`` connection to it (alice, admin)."""
    folder = tmp_path_factory.mktemp("required_actions")
    with api_server(folder, auth_environment(folder)) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW_CONN_AIRFLOW_API",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "schema": "http",
                    "login": "alice",
                    "password": PASSWORDS["alice"],
                }
            ),
        )
        yield server


@pytest.fixture
def rounds(registry, airflow_server) -> Iterator[Rounds]:
    """No runs of the approval DAGs yet (request ids restart with each test's registry)."""
    _delete_runs()
    yield Rounds(airflow_server)
    _delete_runs()


@pytest.fixture
def loner(registry) -> ModelRegistry:
    """loner 1.0.0 PRIMARY and 1.1.0 SHADOW with 3 good cycles, gates of 3 cycles; approvals off."""
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    registry.seed_cycles("loner", shadow, ["success"] * 3)
    admin = ModelRegistry(registry.conn, person("alice"))
    admin.guards.set_gates("loner", min_cycles=3)
    return admin


def _delete_runs() -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id.in_([APPROVAL_DAG_ID, SWEEP_DAG_ID])))


class Rounds:
    """The approval DAGs run for real, answered through the API server as people would."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self._tokens: dict[str, str] = {}

    def client(self, user: str) -> httpx.Client:
        if user not in self._tokens:
            answer = httpx.post(f"{self.server.url}/auth/token", json={"username": user, "password": PASSWORDS[user]})
            answer.raise_for_status()
            self._tokens[user] = answer.json()["access_token"]
        return httpx.Client(
            base_url=f"{self.server.url}/api/v2", timeout=30, headers={"Authorization": f"Bearer {self._tokens[user]}"}
        )

    def sweep(self) -> dict[str, Any]:
        """One run of the sweep: its state and task states, and every run of the approval DAG (run id -> conf)."""
        run = build_sweep_dag().test()
        return {
            "state": str(run.state),
            "tasks": _task_states(SWEEP_DAG_ID, run.run_id),
            "rounds": _runs(APPROVAL_DAG_ID),
        }

    def waiting(self, run_over: threading.Event) -> dict[str, Any]:
        """The one required action of the approval DAG waiting for an answer, as the list API gives it."""
        deadline = time.monotonic() + ANSWER_WAIT_S
        with self.client("alice") as alice:
            while time.monotonic() < deadline and not run_over.is_set():
                found = alice.get(
                    f"/dags/{APPROVAL_DAG_ID}/dagRuns/~/hitlDetails", params={"response_received": False}
                ).json()["hitl_details"]
                found = [d for d in found if d["task_instance"]["state"] == "awaiting_input"]
                if found:
                    (detail,) = found
                    return detail
                time.sleep(0.3)
        raise AssertionError(
            "the approval round ended before it waited for an answer"
            if run_over.is_set()
            else f"no approval round waited for an answer within {ANSWER_WAIT_S} s"
        )

    def answer(self, user: str, detail: dict[str, Any], option: str, reason: str | None = None) -> httpx.Response:
        """``user``'s answer, as the Required Actions page sends it."""
        run_id = quote(detail["task_instance"]["dag_run_id"], safe="")
        with self.client(user) as client:
            return client.patch(
                f"/dags/{APPROVAL_DAG_ID}/dagRuns/{run_id}/taskInstances/{APPROVE_TASK_ID}/-1/hitlDetails",
                json={"chosen_options": [option], "params_input": {"reason": reason}},
            )

    def run(self, conf: dict[str, Any], *steps: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Run one approval round with ``conf`` while a helper thread takes the steps, each given the required
        action waiting then (each try of the task asks anew). Returns the run's id, state and task states."""
        failure: list[str] = []
        run_over = threading.Event()

        def answer_each_try() -> None:
            try:
                for step in steps:
                    step(self.waiting(run_over))
            except BaseException:  # noqa: BLE001 - reported by the main thread
                failure.append(traceback.format_exc())
                _fail_waiting_rounds()

        helper = threading.Thread(target=answer_each_try, daemon=True)
        helper.start()
        run = build_approval_dag().test(run_conf=conf)
        run_over.set()
        helper.join(timeout=ANSWER_WAIT_S)
        assert not failure, failure[0]
        return {"state": str(run.state), "run_id": run.run_id, "tasks": _task_states(APPROVAL_DAG_ID, run.run_id)}


def _task_states(dag_id: str, run_id: str) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return {task_id if index < 0 else f"{task_id}[{index}]": str(state) for task_id, index, state in rows}


def _runs(dag_id: str) -> dict[str, dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {
            run_id: conf
            for run_id, conf in session.execute(select(DagRun.run_id, DagRun.conf).where(DagRun.dag_id == dag_id))
        }


def _fail_waiting_rounds() -> None:
    """End every waiting round so that a failed step never leaves ``dag.test()`` waiting for ever."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == APPROVAL_DAG_ID, TaskInstance.state == "awaiting_input")
            .values(state="failed")
        )


def _promote_as(user: str, registry, **kwargs: Any) -> None:
    """``user`` asks to promote loner 1.1.0 (a PENDING request: the model is under approval)."""
    ModelRegistry(registry.conn, person(user, govern=False)).lifecycle.promote(
        "loner", "1.1.0", window=timedelta(hours=168), **kwargs
    )


def _state(registry) -> list[tuple]:
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'loner' ORDER BY id"
    )


def _audit(registry) -> list[tuple]:
    return registry.query(
        "SELECT action, version, actor, actor_kind, basis, request_id FROM"
        " detection_model_transitions WHERE actor_kind = 'person'"
        " AND action NOT IN ('gates', 'approvals') ORDER BY id"
    )


def test_a_request_is_asked_of_its_approvers_and_approving_in_required_actions_promotes(registry, rounds, loner):
    loner.guards.set_approval("loner", required=True, approvers=["uma", "bob", "carol"])
    _promote_as("uma", registry, reason="better recall")
    swept = rounds.sweep()

    assert swept["state"] == "success"
    assert swept["rounds"] == {"request_1_approval_1": {"request_id": 1, "model_id": "loner", "round": 1}}
    assert swept["tasks"]["open_round[0]"] == "success"
    assert rounds.sweep()["rounds"] == swept["rounds"]  # a second sweep opens nothing more

    def bob_approves(detail: dict[str, Any]) -> None:
        assert [user["id"] for user in detail["assigned_users"]] == ["bob", "carol"]
        assert detail["subject"] == "Approve loner@1.1.0 as PRIMARY (request #1 by uma)"
        assert "**uma** asks to promote **loner@1.1.0** to PRIMARY" in detail["body"]
        assert "| gate | min_cycles | >= 3 | 3 | yes |" in detail["body"], detail["body"]
        assert rounds.answer("uma", detail, "Approve").status_code == 403  # Airflow: not assigned
        assert rounds.answer("bob", detail, "Approve", reason="figures look right").status_code == 200

    run = rounds.run(swept["rounds"]["request_1_approval_1"], bob_approves)

    assert run["tasks"] == {"approve": "success", "sweep_now": "success"}
    assert _state(registry) == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    assert _audit(registry) == [
        ("request_promotion", "1.1.0", "uma", "person", None, None),
        ("approve", None, "bob", "person", None, 1),
        ("approve", "1.1.0", "bob", "person", None, 1),
        ("promote", "1.0.0", "bob", "person", None, 1),
        ("promote", "1.1.0", "bob", "person", "approved", 1),
    ]
    assert registry.query("SELECT approver, reason FROM detection_model_approval_votes") == [
        ("bob", "figures look right")
    ]
    assert f"after__{run['run_id']}" in _runs(SWEEP_DAG_ID)  # the sweep ran again at once


def test_n_of_m_opens_a_round_per_approval_asking_only_those_who_may_still_approve(registry, rounds, loner):
    loner.guards.set_approval("loner", required=True, approvers=["bob", "carol", "dave"], min_approvals=2)
    _promote_as("uma", registry)
    first = rounds.sweep()["rounds"]["request_1_approval_1"]

    def bob_approves(detail: dict[str, Any]) -> None:
        assert [user["id"] for user in detail["assigned_users"]] == ["bob", "carol", "dave"]
        assert detail["subject"] == "Approve loner@1.1.0 as PRIMARY (request #1 by uma, approval 1 of 2)"
        assert rounds.answer("bob", detail, "Approve").status_code == 200

    assert rounds.run(first, bob_approves)["tasks"] == {"approve": "success", "sweep_now": "success"}
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")  # one approval of two: nothing applied yet
    second = rounds.sweep()["rounds"]["request_1_approval_2"]
    assert second == {"request_id": 1, "model_id": "loner", "round": 2}

    def carol_approves(detail: dict[str, Any]) -> None:
        assert [user["id"] for user in detail["assigned_users"]] == ["carol", "dave"]  # bob approved already
        assert "Approval 2 of 2 (so far: bob)" in detail["body"]
        assert rounds.answer("carol", detail, "Approve").status_code == 200

    assert rounds.run(second, carol_approves)["tasks"]["approve"] == "success"
    assert _state(registry) == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    assert registry.query("SELECT approver FROM detection_model_approval_votes ORDER BY at") == [("bob",), ("carol",)]
    assert registry.query("SELECT status, decided_by FROM detection_model_approval_requests") == [("APPROVED", "carol")]


def test_a_guard_change_request_is_asked_with_its_new_values_and_approving_applies_it(registry, rounds, loner):
    loner.guards.set_approval("loner", required=True, approvers=["bob"])
    ModelRegistry(registry.conn, person("uma", govern=False)).guards.set_gates(
        "loner", reason="fewer | cycles", min_cycles=2
    )
    conf = rounds.sweep()["rounds"]["request_1_approval_1"]

    def bob_approves(detail: dict[str, Any]) -> None:
        assert detail["subject"] == "Approve a change of loner's gates (request #1 by uma)"
        assert "Reason: fewer \\| cycles" in detail["body"]
        assert "| min_cycles | 2 |" in detail["body"]
        assert rounds.answer("bob", detail, "Approve").status_code == 200

    assert rounds.run(conf, bob_approves)["tasks"]["approve"] == "success"
    assert registry.query("SELECT min_cycles FROM detection_model_quality_gates") == [(2,)]
    assert registry.query("SELECT status, decided_by FROM detection_model_approval_requests") == [("APPROVED", "bob")]


def test_a_refused_answer_fails_the_try_with_the_registrys_message_and_the_round_asks_again(
    registry, rounds, loner, capsys
):
    loner.guards.set_approval("loner", required=True)  # no approvers named: anyone who may answer here
    _promote_as("uma", registry)
    conf = rounds.sweep()["rounds"]["request_1_approval_1"]

    def uma_approves_her_own(detail: dict[str, Any]) -> None:
        assert detail["assigned_users"] == []
        assert "Asked of: anyone who may edit this DAG's required actions except uma." in detail["body"]
        assert rounds.answer("uma", detail, "Approve").status_code == 200  # Airflow lets any editor answer

    def bob_approves_failing_figures(detail: dict[str, Any]) -> None:
        shadow = registry.query("SELECT id FROM detection_model_versions WHERE version = '1.1.0'")[0][0]
        registry.seed_cycles("loner", shadow, ["failed"] * 3, hours_ago=1)
        assert rounds.answer("bob", detail, "Approve").status_code == 200

    def bob_rejects(detail: dict[str, Any]) -> None:
        assert rounds.answer("bob", detail, "Reject", reason="fails half its cycles now").status_code == 200

    run = rounds.run(conf, uma_approves_her_own, bob_approves_failing_figures, bob_rejects)

    assert run["tasks"] == {"approve": "success", "sweep_now": "skipped"}
    assert _try_number(run["run_id"]) == 3
    refusals = [
        line
        for line in capsys.readouterr().out.splitlines()  # the task's log, in dag.test()
        if line.startswith("airflow.sdk.exceptions.AirflowException: the model registry refused")
    ]
    assert len(refusals) == 2
    assert "refused uma's approval: uma cannot approve request #1 for loner@1.1.0: they made it" in refusals[0]
    assert (
        "refused bob's approval: approval of request #1 for loner@1.1.0 refused by its quality gates: "
        "max_failure_rate needs <= 0.05, measured 0.5" in refusals[1]
    )
    assert registry.query("SELECT count(*) FROM detection_model_approval_votes") == [(0,)]
    assert registry.query("SELECT status, decided_by, decision_reason FROM detection_model_approval_requests") == [
        ("REJECTED", "bob", "fails half its cycles now")
    ]
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_a_waiting_round_of_a_request_decided_elsewhere_is_ended_by_the_sweep_with_the_reason(registry, rounds, loner):
    loner.guards.set_approval("loner", required=True, approvers=["bob"])
    _promote_as("uma", registry)
    conf = rounds.sweep()["rounds"]["request_1_approval_1"]
    ended: list[dict[str, Any]] = []

    def uma_withdraws_on_the_registry_page(detail: dict[str, Any]) -> None:  # noqa: ARG001 - nobody answers
        ModelRegistry(registry.conn, person("uma", govern=False)).approvals.reject("loner", None, "withdrawn")
        ended.append(end_stale_rounds())

    run = rounds.run(conf, uma_withdraws_on_the_registry_page)

    why = "request #1 for loner@1.1.0 is REJECTED by uma: withdrawn"
    assert ended == [{"waiting": 1, "ended": [{"run_id": run["run_id"], "why": why}]}]
    assert run["tasks"] == {"approve": "skipped", "sweep_now": "skipped"}
    assert _note(run["run_id"]) == f"Ended by {SWEEP_DAG_ID}: {why}."
    assert _state(registry)[1] == ("1.1.0", "ACTIVE", "SHADOW")


def test_an_answer_to_a_request_approved_elsewhere_meanwhile_is_skipped_and_changes_nothing(
    registry, rounds, loner, capsys
):
    loner.guards.set_approval("loner", required=True, approvers=["bob", "carol"])
    _promote_as("uma", registry)
    conf = rounds.sweep()["rounds"]["request_1_approval_1"]

    def carol_approves_in_the_cli_then_bob_in_airflow(detail: dict[str, Any]) -> None:
        ModelRegistry(registry.conn, person("carol", govern=False)).approvals.approve("loner", request_id=1)
        assert rounds.answer("bob", detail, "Approve").status_code == 200

    run = rounds.run(conf, carol_approves_in_the_cli_then_bob_in_airflow)

    assert run["tasks"] == {"approve": "skipped", "sweep_now": "skipped"}
    assert _skip_reasons(capsys) == [
        "bob's answer was not given to the registry: request #1 for loner@1.1.0 is APPROVED by carol"
    ]
    assert registry.query("SELECT approver FROM detection_model_approval_votes") == [("carol",)]
    assert registry.query("SELECT status, decided_by FROM detection_model_approval_requests") == [("APPROVED", "carol")]


def test_a_round_superseded_before_it_asks_skips_and_a_run_without_a_round_fails_at_once(
    registry, rounds, loner, capsys
):
    loner.guards.set_approval("loner", required=True, approvers=["bob", "carol"], min_approvals=2)
    _promote_as("uma", registry)
    conf = rounds.sweep()["rounds"]["request_1_approval_1"]
    ModelRegistry(registry.conn, person("carol", govern=False)).approvals.approve("loner", request_id=1)

    capsys.readouterr()
    assert rounds.run(conf)["tasks"] == {"approve": "skipped", "sweep_now": "skipped"}
    assert _skip_reasons(capsys) == [
        "round 1 not asked: request #1 for loner@1.1.0 has 1 approval(s) now (carol): round 1 is superseded"
    ]
    assert rounds.sweep()["rounds"]["request_1_approval_2"]["round"] == 2
    by_hand = rounds.run({"model_id": "loner"})
    assert (by_hand["state"], by_hand["tasks"]["approve"], _try_number(by_hand["run_id"])) == ("failed", "failed", 1)
    assert f"{APPROVAL_DAG_ID} run conf needs 'request_id' (a positive int), got None" in capsys.readouterr().out


def _skip_reasons(capsys) -> list[str]:
    """Why tasks skipped, from the task log ``dag.test()`` prints (``Skipping task. ... reason=...``)."""
    return [
        ast.literal_eval(line.split(" reason=", 1)[1])
        for line in capsys.readouterr().out.splitlines()
        if "Skipping task." in line and " reason=" in line
    ]


def _ti(run_id: str):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    with create_session() as session:
        ti = session.scalar(
            select(TaskInstance)
            .options(joinedload(TaskInstance.task_instance_note))
            .where(
                TaskInstance.dag_id == APPROVAL_DAG_ID,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == APPROVE_TASK_ID,
            )
        )
        session.expunge(ti)
        return ti


def _try_number(run_id: str) -> int:
    return _ti(run_id).try_number


def _note(run_id: str) -> str | None:
    return _ti(run_id).note


def test_a_round_nobody_answers_before_the_request_expires_ends_skipped_saying_so(
    registry, rounds, loner, monkeypatch, capsys
):
    loner.guards.set_approval("loner", required=True, approvers=["bob"])
    assert rounds.sweep()["rounds"] == {}  # warm: the round below asks within seconds of the request
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__APPROVAL_TTL_HOURS", str(15 / 3600))
    _promote_as("uma", registry)
    (expires_at,) = registry.query("SELECT expires_at FROM detection_model_approval_requests")[0]

    def nobody_answers(detail: dict[str, Any]) -> None:
        assert detail["task_instance"]["state"] == "awaiting_input"
        time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 1)
        _scheduler_timeout_sweep()

    capsys.readouterr()
    run = rounds.run({"request_id": 1, "model_id": "loner", "round": 1}, nobody_answers)

    assert run["tasks"] == {"approve": "skipped", "sweep_now": "skipped"}
    assert _skip_reasons(capsys) == [
        f"round 1 got no answer: request #1 for loner@1.1.0 expired at "
        f"{expires_at.isoformat(timespec='seconds')} with 0 approval(s); "
        "make the request again"
    ]
    assert set(rounds.sweep()["rounds"]) == {run["run_id"]}  # an expired request gets no new round


def _scheduler_timeout_sweep() -> None:
    """What the scheduler does on its loop for tasks waiting past their response time (dag.test() never does)."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
