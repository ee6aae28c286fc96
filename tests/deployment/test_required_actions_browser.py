"""A registry request approved in Airflow's Required Actions, in a real browser, on a real Airflow.

The stack is the native one of ``local_stack.py`` (API server, scheduler, DAG processor,
LocalExecutor) with three SimpleAuthManager users: ``uma`` and ``bob`` (role user: they may
edit DAGs, so request and approve) and the admin the ``airflow_api`` connection logs in as.
``loner`` needs one approval, from ``bob``. uma asks for the promotion through the registry
API with her own token; the sweep opens the request's approval round; bob logs in to
Airflow (Debian's chromium, driven by Playwright), finds the request in Required Actions and
clicks Approve. The registry then has the new PRIMARY, and its audit names uma for the
request and bob for the approval.

Screenshots of each step are kept in ``MODEL_REGISTRY_TEST_ARTEFACTS`` (default
``test-artefacts/browser``).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from distributed_stack import stopped_even_on_sigterm
from local_stack import LocalStack, admin_dsn_of_the_test_server

from harness.browser import CHROMIUM, MISSING_REASON, chromium_page, shot
from harness.task_logs import task_errors, task_log_records

SWEEP, APPROVALS, APPROVE = "detection_model_approval_sweep", "detection_model_approvals", "approve"
#: The worker that parks a Human-in-the-loop task exits up to ~5 s after the park; an answer
#: recorded before the scheduler has processed that exit fails the resumed task (Airflow 3.3.2).
#: A person never answers that fast; the test waits as long before it clicks.
PARK_SETTLE_S = 8

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING_REASON),
]


@dataclass
class ApprovalStack(LocalStack):
    """The local stack with two people besides the admin: ``uma`` and ``bob``, role user."""

    people: tuple[str, ...] = ("uma", "bob")

    def __post_init__(self) -> None:
        self.passwords = {user: secrets.token_urlsafe(12) for user in self.people}
        super().__post_init__()

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        (self.workdir / "passwords.json").write_text(json.dumps({self.api_user: self.api_password, **self.passwords}))
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(
            [f"{self.api_user}:admin", *(f"{user}:user" for user in self.people)]
        )
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self, user: str) -> httpx.Client:
        """Logged in as ``user`` with a token from ``POST /auth/token``, as an API client logs in."""
        password = self.api_password if user == self.api_user else self.passwords[user]
        token = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=30)
        assert token.status_code == 201, token.text
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )


def _seed(stack: ApprovalStack) -> None:
    """loner 1.0.0 PRIMARY and 1.1.0 SHADOW with three good cycles, written as an operator would."""
    (shadow,) = stack.registry(
        "INSERT INTO detection_model_versions (model_id, version, status, role) VALUES"
        " ('loner', '1.0.0', 'ACTIVE', 'PRIMARY'), ('loner', '1.1.0', 'ACTIVE', 'SHADOW') RETURNING id"
    )[1]
    start = datetime.now(UTC) - timedelta(hours=2)
    for i in range(3):
        cycle = start + timedelta(minutes=5 * i)
        stack.registry(
            "INSERT INTO detection_model_task_outcomes (dag_run_id, task_id, cycle_started_at, model_id,"
            " version_id, role, state) VALUES (%s, %s, %s, 'loner', %s, 'SHADOW', 'success')",
            (f"seed-{i}", f"loner.v{shadow}", cycle, shadow),
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = ApprovalStack(tmp_path_factory.mktemp("required_actions_stack"), admin_dsn=admin_dsn_of_the_test_server())
    with stopped_even_on_sigterm(stack):
        stack.prepare(_seed)
        stack.start_services()
        stack.wait_ready(timeout=240)
        stack.wait_until(
            "the approval DAGs to be parsed",
            lambda: (
                len(stack.meta("SELECT dag_id FROM serialized_dag WHERE dag_id IN (%s, %s)", (SWEEP, APPROVALS))) == 2
            ),
            timeout=120,
        )
        with stack.client(stack.api_user) as admin:
            for dag_id in (SWEEP, APPROVALS):  # the stack pauses new DAGs, as a deployment may
                assert admin.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200
            for path, body in (
                ("gates", {"min_cycles": 3}),
                ("approvals/settings", {"required": True, "approvers": ["bob"]}),
            ):  # may govern
                answer = admin.post(f"/model-registry/api/models/loner/{path}", json=body)
                assert answer.status_code == 200 and answer.json()["result"]["applied"], answer.text
        yield stack


def _approve_state(stack: ApprovalStack, run_id: str) -> str | None:
    rows = stack.meta(
        "SELECT state FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
        (APPROVALS, run_id, APPROVE),
    )
    return rows[0][0] if rows else None


def test_a_request_by_uma_is_approved_by_bob_in_required_actions_and_the_audit_names_both(stack: ApprovalStack):
    from playwright.sync_api import expect

    timings: dict[str, float] = {}
    started = time.monotonic()
    with stack.client("uma") as uma:
        asked = uma.post("/model-registry/api/models/loner/versions/1.1.0/promote", json={"reason": "better recall"})
    assert asked.status_code == 200, asked.text
    request: dict[str, Any] = asked.json()["result"]["request"]
    assert (request["status"], request["requested_by"]) == ("PENDING", "uma")
    with stack.client(stack.api_user) as admin:  # the sweep runs every minute; this one need not wait for it
        assert admin.post(f"/api/v2/dags/{SWEEP}/dagRuns", json={"logical_date": None}).status_code == 200

    run_id = f"request_{request['id']}_approval_1"
    stack.wait_until(
        f"{run_id} to wait for an answer",
        lambda: _approve_state(stack, run_id) == "awaiting_input",
        timeout=120,
        interval=0.5,
    )
    parked = time.monotonic()
    timings["request -> waiting in Required Actions"] = parked - started
    detail_path = f"/api/v2/dags/{APPROVALS}/dagRuns/{run_id}/taskInstances/{APPROVE}/-1/hitlDetails"
    with stack.client("bob") as bob:
        detail = bob.get(detail_path).json()
    assert [user["id"] for user in detail["assigned_users"]] == ["bob"]
    subject = detail["subject"]
    assert subject == f"Approve loner@1.1.0 as PRIMARY (request #{request['id']} by uma)"
    with stack.client("uma") as uma:  # the requester is not assigned: Airflow refuses her answer
        assert uma.patch(detail_path, json={"chosen_options": ["Approve"]}).status_code == 403

    time.sleep(max(0.0, PARK_SETTLE_S - (time.monotonic() - parked)))
    with chromium_page(stack.url) as page:
        page.goto("/auth/login?next=/required_actions")
        page.locator("input[name=username]").fill("bob")
        page.locator("input[name=password]").fill(stack.passwords["bob"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/required_actions")
        row = page.locator("tr", has_text=subject)
        expect(row.get_by_test_id("state-badge")).to_have_text("Approval Required")
        shot(page, "required-actions-01-list")
        row.get_by_role("link", name=subject).click()
        page.wait_for_url(f"**/tasks/{APPROVE}/required_actions")
        expect(page.get_by_text("asks to promote")).to_contain_text("uma")
        expect(page.get_by_text("min_cycles").first).to_be_visible()
        approve = page.get_by_test_id("hitl-option-Approve")
        expect(approve).to_be_enabled()  # the empty, optional reason does not block it
        shot(page, "required-actions-02-request")
        clicked = time.monotonic()
        approve.click()
        expect(page.get_by_text("Response received at")).to_contain_text("from bob")
        shot(page, "required-actions-03-approved")

        final = stack.wait_until(
            "the approval round to finish",
            lambda: (
                (state := _approve_state(stack, run_id)) in ("success", "failed", "skipped", "up_for_retry") and state
            ),
            timeout=120,
            interval=0.5,
        )
        timings["click -> registry decision"] = time.monotonic() - clicked
        assert final == "success", task_errors(task_log_records(stack.home, APPROVALS, run_id, APPROVE))
        page.goto("/required_actions")
        expect(page.locator("tr", has_text=subject).get_by_test_id("state-badge")).to_have_text("Approval Received")
        shot(page, "required-actions-04-list-after")

    assert stack.registry(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'loner' ORDER BY id"
    ) == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    audit = stack.registry(
        "SELECT action, version, actor, actor_kind, basis, request_id FROM"
        " detection_model_transitions WHERE actor_kind = 'person'"
        " AND action NOT IN ('gates', 'approvals') ORDER BY id"
    )
    assert audit == [
        ("request_promotion", "1.1.0", "uma", "person", None, None),
        ("approve", None, "bob", "person", None, request["id"]),
        ("approve", "1.1.0", "bob", "person", None, request["id"]),
        ("promote", "1.0.0", "bob", "person", None, request["id"]),
        ("promote", "1.1.0", "bob", "person", "approved", request["id"]),
    ]
    sweep_after = f"after__{run_id}"  # the approval round asks for a sweep at once
    stack.wait_until(
        f"{sweep_after} to finish",
        lambda: stack.meta(
            "SELECT 1 FROM dag_run WHERE dag_id = %s AND run_id = %s AND state IN ('success', 'failed')",
            (SWEEP, sweep_after),
        ),
        timeout=120,
        interval=0.5,
    )
    assert stack.meta(
        "SELECT DISTINCT state FROM dag_run WHERE dag_id = %s AND state IN ('success', 'failed')", (SWEEP,)
    ) == [("success",)]
    timings["whole test"] = time.monotonic() - started
    print("timings:", {name: round(seconds, 1) for name, seconds in timings.items()}, stack.timings)
