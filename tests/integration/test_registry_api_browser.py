"""The registry page in a real browser: Debian's chromium, driven by Playwright, against a real
``airflow api-server`` with the plugin, logged in through Airflow's own login page.

Screenshots of each step are kept in ``MODEL_REGISTRY_TEST_ARTEFACTS`` (default
``test-artefacts/browser``); the README's and the docs' pictures are these, refreshed with
``MODEL_REGISTRY_TEST_ARTEFACTS=docs/screenshots make test PYTEST_ARGS=tests/integration/test_registry_api_browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from registry_api_helpers import PASSWORDS, ApiServer, api_server, auth_environment
from registry_helpers import backtest_runs, person, run_cycle

from harness.browser import CHROMIUM, MISSING_REASON, chromium_page, shot
from models_core.registry.demo_registry import seed_demo_if_empty

BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING_REASON)


@pytest.fixture
def demo_airflow(registry, monkeypatch, tmp_path) -> Iterator[tuple[ApiServer, datetime]]:
    """The demo registry after three real cycles, and an API server with the plugin on it;
    also the first whole second after the demo rows went in."""
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE", "example_models")
    seed_demo_if_empty(registry.conn)
    seeded = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    runs = [run_cycle(BASE + timedelta(minutes=5 * n)) for n in range(3)]
    assert [run.state for run in runs] == ["success"] * 3
    with api_server(tmp_path, auth_environment(tmp_path)) as server:
        yield server, seeded


@pytest.fixture
def browser_page(demo_airflow):
    server, _seeded = demo_airflow
    with chromium_page(server.url, timezone_id="UTC") as page:
        yield page


def log_in(page, user: str) -> None:
    """Through Airflow's own login page, as a person would."""
    page.goto("/")
    page.get_by_label(re.compile("username", re.I)).fill(user)
    page.get_by_label(re.compile("password", re.I)).fill(PASSWORDS[user])
    shot(page, "00-airflow-login")
    page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))


def version_row(page, version: str):
    return page.get_by_test_id("versions-table").get_by_role("row").filter(has_text=version)


def test_an_operator_promotes_a_shadow_from_the_registry_page(browser_page, demo_airflow, registry):
    from playwright.sync_api import expect

    page = browser_page
    log_in(page, "alice")
    page.get_by_role("link", name="Model registry").click()
    models = page.get_by_test_id("models-table")
    for model_id in (
        "ais_ingest",
        "track_quality",
        "spoof_detector",
        "dark_gap_detector",
        "identity_collision",
        "alert_router",
    ):
        expect(models).to_contain_text(model_id)
    expect(models.get_by_test_id("challenger-1.1.0")).to_contain_text("agreement")
    shot(page, "01-models")

    page.get_by_role("link", name="dark_gap_detector").click()
    page.get_by_label("window").select_option(label="1 hour")
    expect(page.get_by_test_id("trend-chart").locator("circle")).to_have_count(6)  # 3 cycles x 2 versions
    shot(page, "02-model")

    version_row(page, "1.1.0").get_by_role("button", name="Promote").click()
    panel = page.get_by_test_id("action-panel")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("error-line")).to_have_text(
        "modelreg promote: promotion of dark_gap_detector@1.1.0 refused by its quality gates: min_cycles needs >= 12,"
        " measured 3. Let it run longer, change the gates, or use --force --reason"
    )
    expect(panel.get_by_test_id("gate-table")).to_contain_text("FAIL")
    expect(panel.get_by_role("button", name="Confirm")).to_be_disabled()
    shot(page, "03-promote-refused")
    panel.get_by_label(re.compile("^Force")).check()
    panel.get_by_label(re.compile("^Reason")).fill("incident 42: 1.0.0 calls vessels dark too late")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("preview-plan")).to_contain_text("dark_gap_detector.shadow_1_1_0")
    assert registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'dark_gap_detector' ORDER BY id"
    ) == [("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW")], "a preview changes nothing"
    shot(page, "04-promote-forced-preview")

    panel.get_by_role("button", name="Confirm").click()
    expect(panel.get_by_test_id("next-parse-plan")).to_contain_text("dark_gap_detector.shadow_1_1_0")
    expect(version_row(page, "1.1.0")).to_contain_text("PRIMARY")
    newest = page.get_by_test_id("history-table").get_by_role("row").nth(1)
    for text in ("promote", "1.1.0", "ACTIVE PRIMARY", "alice (api)", "incident 42", "min_cycles 3 (>= 12) FAIL"):
        expect(newest).to_contain_text(text)
    shot(page, "05-promoted")
    _, seeded = demo_airflow
    page.get_by_label("time").fill(seeded.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Which version was PRIMARY?").click()
    expect(page.get_by_test_id("primary-at")).to_contain_text(": 1.0.0")
    newest.scroll_into_view_if_needed()
    shot(page, "06-audit-history")
    assert registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'dark_gap_detector' ORDER BY id"
    ) == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    assert registry.query(
        "SELECT DISTINCT actor, reason FROM detection_model_transitions WHERE action = 'promote'"
    ) == [("alice", "incident 42: 1.0.0 calls vessels dark too late")]

    # The shadow's last task instance, and its stored outputs in the task's "Model outputs" tab.
    version_row(page, "1.1.0").get_by_role("link").click()
    page.get_by_role("link", name="Model outputs").click()
    outputs = page.get_by_test_id("task-outputs")
    ((count,),) = registry.query(
        "SELECT count(*) FROM detection_model_run_outputs o JOIN detection_model_versions v ON v.id = o.version_id"
        " WHERE v.model_id = 'dark_gap_detector' AND v.version = '1.1.0' AND o.cycle_started_at = %s",
        (BASE + timedelta(minutes=10),),
    )
    expect(outputs.get_by_text("SHADOW", exact=True)).to_be_visible()
    expect(outputs).to_contain_text("in this cycle; now ACTIVE PRIMARY")
    expect(outputs).to_contain_text(f"{count} output rows stored")
    expect(outputs).to_contain_text("against its PRIMARY: coverage 1")
    expect(outputs.get_by_test_id("output-rows").get_by_role("row")).to_have_count(21)  # header + first 20
    shot(page, "07-task-instance-outputs")


def test_a_viewer_sees_the_registry_but_a_change_is_refused(browser_page, registry):
    from playwright.sync_api import expect

    page = browser_page
    log_in(page, "victor")
    page.goto("/plugin/model-registry?model=spoof_detector")
    version_row(page, "2.0.0").get_by_role("button", name="Deactivate").click()
    page.get_by_test_id("action-panel").get_by_role("button", name="Preview").click()

    expect(page.get_by_test_id("error-line")).to_have_text(
        "Forbidden: this needs edit access to the detection_models DAG"
    )
    shot(page, "08-viewer-refused")
    assert registry.query(
        "SELECT status FROM detection_model_versions WHERE model_id = 'spoof_detector' AND version = '2.0.0'"
    ) == [("ACTIVE",)]


def test_a_promotion_waits_for_a_second_person_who_approves_it_and_an_error_version_is_reactivated(
    browser_page, registry
):
    from playwright.sync_api import expect

    from fake_backend import FakeBackend
    from models_core.backends.catalog import Backend, add_backend
    from models_core.backends.health_check import check_backends
    from models_core.registry.actors import SYSTEM
    from models_core.registry.model_registry import ModelRegistry
    from models_core.settings import load_settings

    ModelRegistry(registry.conn, person("alice")).guards.set_approval(
        "dark_gap_detector", required=True, reason="four eyes"
    )
    ModelRegistry(registry.conn, SYSTEM).lifecycle.mark_error(
        "spoof_detector", "2.0.0", "3 failed cycles in a row: ValueError: sog_factor must be > 0"
    )
    server = FakeBackend()
    try:
        add_backend(registry.conn, Backend("gpu-a", server.url), actor=person("alice"))
        add_backend(registry.conn, Backend("gpu-b", "http://127.0.0.1:9", timeout_s=1), actor=person("alice"))
        with ThreadPoolExecutor(1) as apart:  # the probe runs its own event loop; Playwright's is running here
            apart.submit(check_backends, registry.conn, load_settings()).result()
    finally:
        server.close()
    registry.execute(
        'UPDATE detection_model_versions SET params = params || \'{"backend": "gpu-a"}\''
        " WHERE model_id = 'track_quality'"
    )

    page = browser_page
    log_in(page, "alice")
    page.goto("/plugin/model-registry?model=dark_gap_detector")
    panel = page.get_by_test_id("action-panel")
    approvals = page.get_by_test_id("approvals-table")
    page.get_by_role("button", name="Edit approval settings").click()
    expect(panel.get_by_label(re.compile("^Promotions and guard changes need"))).to_be_checked()
    panel.get_by_label(re.compile("^Approvers")).fill("uma, bob")
    panel.get_by_label(re.compile("^Approvals a request needs")).fill("1")
    panel.get_by_label(re.compile("^Reason")).fill("the on-call pair")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("change-result")).to_contain_text(
        'Would set the approval settings of dark_gap_detector to {"required":true,"approvers":["bob","uma"],'
        '"min_approvals":1}'
    )
    panel.get_by_role("button", name="Confirm").click()  # alice may govern: applied at once
    expect(page.get_by_test_id("approval-required")).to_contain_text("need 1 approval(s) from bob, uma")

    version_row(page, "1.1.0").get_by_role("button", name="Promote").click()
    panel.get_by_label(re.compile("^Force")).check()
    panel.get_by_label(re.compile("^Reason")).fill("incident 42: 1.0.0 calls vessels dark too late")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("approval-requested")).to_contain_text("confirming makes a promotion request")
    panel.get_by_role("button", name="Confirm").click()
    expect(panel.get_by_test_id("approval-requested")).to_contain_text("PENDING until")
    promotion_row = approvals.get_by_role("row").filter(has_text="promotion of dark_gap_detector@1.1.0")
    expect(promotion_row).to_contain_text("PENDING")
    expect(promotion_row.get_by_test_id("request-approvals")).to_have_text("none yet (0 of 1)")
    expect(version_row(page, "1.1.0")).to_contain_text("SHADOW")
    shot(page, "09-promotion-requested")
    ((promotion_id,),) = registry.query("SELECT id FROM detection_model_approval_requests WHERE kind = 'promote'")

    page.context.clear_cookies()
    log_in(page, "uma")
    page.get_by_role("link", name="Model registry").click()
    models = page.get_by_test_id("models-table")
    expect(models.get_by_test_id("pending-approvals")).to_have_text("1 request to approve")
    expect(models.get_by_test_id("error-2.0.0")).to_contain_text("sog_factor must be > 0")
    shot(page, "10-models-attention")

    page.get_by_role("link", name="dark_gap_detector").click()
    promotion_row.get_by_role("button", name="Approve").click()
    expect(panel.get_by_role("heading")).to_have_text(f"Approve request #{promotion_id}: dark_gap_detector@1.1.0")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("preview-plan")).to_contain_text("dark_gap_detector.shadow_1_1_0")
    panel.get_by_role("button", name="Confirm").click()
    expect(panel.get_by_test_id("next-parse-plan")).to_contain_text("dark_gap_detector.shadow_1_1_0")
    expect(panel.get_by_test_id("change-result")).to_contain_text(
        "Approved: dark_gap_detector@1.1.0 is now the ACTIVE PRIMARY; 1.0.0 is now ARCHIVED"
    )
    expect(version_row(page, "1.1.0")).to_contain_text("PRIMARY")
    expect(promotion_row).to_contain_text("APPROVED")
    expect(promotion_row.get_by_test_id("request-approvals")).to_have_text("uma")
    shot(page, "11-approved")
    assert registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = 'dark_gap_detector' ORDER BY id"
    ) == [("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    assert registry.query("SELECT requested_by, status, decided_by FROM detection_model_approval_requests") == [
        ("alice", "APPROVED", "uma")
    ]

    # uma may not change what guards a model under approval alone: the change becomes a request.
    page.get_by_role("button", name="Edit gates").click()
    panel.get_by_label(re.compile("^Minimum cycles")).fill("6")
    panel.get_by_label(re.compile("^Reason")).fill("hourly models settle in half an hour")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("approval-requested")).to_contain_text(
        "Changing the quality gates of dark_gap_detector needs a second person's approval: confirming makes a request"
    )
    panel.get_by_role("button", name="Confirm").click()
    expect(panel.get_by_test_id("approval-requested")).to_contain_text("made by uma, PENDING until")
    ((gates_id,),) = registry.query("SELECT id FROM detection_model_approval_requests WHERE kind = 'guards'")
    expect(panel.get_by_test_id("approval-requested")).to_contain_text(
        f"needs a second person's approval: request #{gates_id} made by uma, PENDING until"
    )
    gates_row = approvals.get_by_role("row").filter(has_text="guard change: quality gates")
    expect(gates_row).to_contain_text("PENDING")
    expect(page.get_by_test_id("gates")).to_contain_text("min_cycles >= 12")
    shot(page, "11b-guard-change-requested")

    page.context.clear_cookies()
    log_in(page, "bob")
    page.goto("/plugin/model-registry?model=dark_gap_detector")
    gates_row.get_by_role("button", name="Approve").click()
    expect(panel.get_by_role("heading")).to_have_text(f"Approve request #{gates_id}: dark_gap_detector")
    panel.get_by_label(re.compile("^Reason")).fill("agreed")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("change-result")).to_contain_text(
        'Approving would apply the guard change: {"min_cycles":6'
    )
    panel.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("gates")).to_contain_text("min_cycles >= 6")
    expect(gates_row).to_contain_text("APPROVED")
    expect(gates_row.get_by_test_id("request-approvals")).to_have_text("bob")
    approvals.scroll_into_view_if_needed()
    shot(page, "11c-guard-change-approved")
    assert registry.query(
        "SELECT actor, basis, request_id FROM detection_model_transitions WHERE action = 'gates'"
    ) == [("bob", "approved", gates_id)]

    version_row(page, "1.1.0").get_by_role("button", name="Tag", exact=True).click()
    panel.get_by_label(re.compile("^Tags to add")).fill("validated=true, reviewed_by=bob")
    panel.get_by_role("button", name="Preview").click()
    panel.get_by_role("button", name="Confirm").click()
    expect(version_row(page, "1.1.0").get_by_test_id("tags")).to_contain_text("validated=true")

    page.goto("/plugin/model-registry?model=spoof_detector")
    expect(version_row(page, "2.0.0").get_by_test_id("error-reason")).to_contain_text("sog_factor must be > 0")
    version_row(page, "2.0.0").get_by_role("button", name="Reactivate").click()
    panel.get_by_label(re.compile("^Reason")).fill("sog_factor fixed in the params")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("preview-plan")).to_contain_text("spoof_detector.challenger_2_0_0")
    shot(page, "12-reactivate-preview")
    panel.get_by_role("button", name="Confirm").click()
    expect(version_row(page, "2.0.0")).to_contain_text("ACTIVE")
    assert registry.query(
        "SELECT status, role FROM detection_model_versions WHERE model_id = 'spoof_detector' AND version = '2.0.0'"
    ) == [("ACTIVE", "CHALLENGER")]
    assert registry.query(
        "SELECT action, actor, reason FROM detection_model_transitions"
        " WHERE model_id = 'spoof_detector' ORDER BY id DESC LIMIT 1"
    ) == [("reactivate", "bob", "sog_factor fixed in the params")]

    page.goto("/plugin/model-registry?view=backends")
    backends = page.get_by_test_id("backends-table")
    gpu_a = backends.get_by_role("row").filter(has_text="gpu-a")
    expect(gpu_a).to_contain_text("UP")
    expect(gpu_a).to_contain_text("tasks call it")
    expect(gpu_a).to_contain_text("track_quality@1.0.0 PRIMARY")
    expect(backends.get_by_role("row").filter(has_text="gpu-b")).to_contain_text("tasks skip: backend gpu-b is DOWN")
    shot(page, "13-backends")


def test_a_backtest_is_checked_then_started_from_a_version_row_as_the_person_logged_in(browser_page, registry):
    from playwright.sync_api import expect

    first = BASE.replace(minute=BASE.minute - BASE.minute % 5)
    last = first + timedelta(minutes=10)
    page = browser_page
    log_in(page, "alice")
    page.goto("/plugin/model-registry?model=dark_gap_detector")
    version_row(page, "1.1.0").get_by_role("button", name="Backtest").click()
    panel = page.get_by_test_id("backtest-panel")
    start, end = panel.get_by_label(re.compile("^First cycle")), panel.get_by_label(re.compile("^Last cycle"))
    start.fill(last.isoformat())
    end.fill(first.isoformat())
    panel.get_by_role("button", name="Check").click()
    expect(panel.get_by_test_id("error-line")).to_contain_text("modelreg backtest: end (")
    expect(panel.get_by_test_id("error-line")).to_contain_text("is before start")
    expect(panel.get_by_role("button", name="Start backtest")).to_be_disabled()

    start.fill(first.isoformat())
    end.fill(last.isoformat())
    panel.get_by_role("button", name="Check").click()
    expect(panel.get_by_test_id("backtest-plan")).to_have_text(
        "3 cycles in 1 task of up to 48: the backtest would run."
    )
    shot(page, "14-backtest-checked")
    before = backtest_runs()
    panel.get_by_role("button", name="Start backtest").click()

    expect(panel.get_by_test_id("backtest-started")).to_contain_text("Started detection_model_backtest run ")
    expect(panel.get_by_test_id("backtest-started")).to_contain_text(" as alice.")
    shot(page, "15-backtest-started")
    made = [(run[1], run[2]) for run in backtest_runs() if run not in before]  # earlier tests made runs too
    assert made == [
        (
            {
                "model_id": "dark_gap_detector",
                "version": "1.1.0",
                "start": first.isoformat(),
                "end": last.isoformat(),
            },
            "alice",
        )
    ]


def test_a_viewer_may_check_a_backtest_but_not_start_one(browser_page):
    from playwright.sync_api import expect

    first = BASE.replace(minute=BASE.minute - BASE.minute % 5)
    page = browser_page
    log_in(page, "victor")
    page.goto("/plugin/model-registry?model=dark_gap_detector")
    version_row(page, "1.1.0").get_by_role("button", name="Backtest").click()
    panel = page.get_by_test_id("backtest-panel")
    panel.get_by_label(re.compile("^First cycle")).fill(first.isoformat())
    panel.get_by_label(re.compile("^Last cycle")).fill((first + timedelta(minutes=5)).isoformat())
    panel.get_by_role("button", name="Check").click()
    expect(panel.get_by_test_id("backtest-plan")).to_contain_text("2 cycles in 1 task")
    panel.get_by_role("button", name="Start backtest").click()

    expect(panel.get_by_test_id("error-line")).to_have_text(
        "Forbidden: this needs permission to trigger the detection_model_backtest DAG"
    )
