"""The registry page in a real browser: Debian's chromium, driven by Playwright, against a real
``airflow api-server`` with the plugin, logged in through Airflow's own login page.

Screenshots of each step are kept in ``MODEL_REGISTRY_TEST_ARTEFACTS`` (default
``test-artefacts/browser``); the README's pictures are these
(``MODEL_REGISTRY_TEST_ARTEFACTS=docs/screenshots make test PYTEST_ARGS=tests/integration/test_registry_api_browser.py``).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from models_core.registry.demo_registry import seed_demo_if_empty
from registry_api_helpers import PASSWORDS, ApiServer, api_server, auth_environment
from registry_helpers import ROOT, run_cycle

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google and, on a closed
# network, its own connections get refused.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTEFACTS = Path(os.environ.get("MODEL_REGISTRY_TEST_ARTEFACTS", ROOT / "test-artefacts" / "browser"))
BASE = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=30)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
def demo_airflow(registry, monkeypatch, tmp_path) -> Iterator[tuple[ApiServer, datetime]]:
    """The demo registry after three real cycles, and an API server with the plugin on it;
    also the first whole second after the demo rows went in."""
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE", "example_models")
    seed_demo_if_empty(registry.conn)
    seeded = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    runs = [run_cycle(BASE + timedelta(minutes=5 * n)) for n in range(3)]
    assert [run.state for run in runs] == ["success"] * 3
    with api_server(tmp_path, auth_environment(tmp_path)) as server:
        yield server, seeded


@pytest.fixture
def browser_page(demo_airflow):
    from playwright.sync_api import sync_playwright

    server, _seeded = demo_airflow
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, base_url=server.url, timezone_id="UTC")
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


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
    for model_id in ("ais_ingest", "track_quality", "spoof_detector", "dark_gap_detector", "identity_collision",
                     "alert_router"):
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
        " measured 3. Let it run longer, change the gates, or use --force --reason")
    expect(panel.get_by_test_id("gate-table")).to_contain_text("FAIL")
    expect(panel.get_by_role("button", name="Confirm")).to_be_disabled()
    shot(page, "03-promote-refused")
    panel.get_by_label(re.compile("^Force")).check()
    panel.get_by_label(re.compile("^Reason")).fill("incident 42: 1.0.0 calls vessels dark too late")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_test_id("preview-plan")).to_contain_text("dark_gap_detector.shadow_1_1_0")
    assert registry.query("SELECT version, status, role FROM detection_model_versions"
                          " WHERE model_id = 'dark_gap_detector' ORDER BY id") == [
        ("1.0.0", "ACTIVE", "PRIMARY"), ("1.1.0", "ACTIVE", "SHADOW")], "a preview changes nothing"
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
    assert registry.query("SELECT version, status, role FROM detection_model_versions"
                          " WHERE model_id = 'dark_gap_detector' ORDER BY id") == [
        ("1.0.0", "ARCHIVED", "PRIMARY"), ("1.1.0", "ACTIVE", "PRIMARY")]
    assert registry.query("SELECT DISTINCT actor, reason FROM detection_model_transitions WHERE action = 'promote'") == [
        ("alice", "incident 42: 1.0.0 calls vessels dark too late")]

    # The shadow's last task instance, and its stored outputs in the task's "Model outputs" tab.
    version_row(page, "1.1.0").get_by_role("link").click()
    page.get_by_role("link", name="Model outputs").click()
    outputs = page.get_by_test_id("task-outputs")
    (count,), = registry.query(
        "SELECT count(*) FROM detection_model_run_outputs o JOIN detection_model_versions v ON v.id = o.version_id"
        " WHERE v.model_id = 'dark_gap_detector' AND v.version = '1.1.0' AND o.cycle_started_at = %s",
        (BASE + timedelta(minutes=10),))
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
        "Forbidden: this needs edit access to the detection_models DAG")
    shot(page, "08-viewer-refused")
    assert registry.query("SELECT status FROM detection_model_versions"
                          " WHERE model_id = 'spoof_detector' AND version = '2.0.0'") == [("ACTIVE",)]
