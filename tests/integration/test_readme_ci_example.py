"""The docs' CI example (docs/how-to/ci-step.md), run as written: its bash blocks, the real
`modelreg` executable and the example models, against the test registry (issue 15: a promotion
through checks and approval, as a CI step; issue 23: the people in it log in to a real Airflow
API server, the pipeline is a service account in direct database mode)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from registry_api_helpers import PASSWORDS, api_server, auth_environment
from registry_helpers import ROOT

PAGE = ROOT / "docs" / "how-to" / "ci-step.md"


def _section() -> str:
    """The page's blocks in order: the lead's setup, the pipeline's push, gate and merge, the decision."""
    return PAGE.read_text()


def test_the_docs_ci_promotion_runs_as_documented(registry, tmp_path):
    setup, prepare, gate, merge, decide = re.findall(r"```bash\n(.*?)```", _section(), re.S)
    (documented,) = re.findall(r"```json\n(.*?)```", _section(), re.S)
    registry.add_version("dark_gap_detector", "1.0.0", params={"threshold_s": 600, "min_sog_kn": 1.0})
    (tmp_path / "params.json").write_text('{"threshold_s": 480, "min_sog_kn": 1.0}')
    (tmp_path / "meta.json").write_text(json.dumps({"framework": {"name": "python"}, "created_by": "ci"}))
    models = {"AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE": "example_models"}
    base = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]), **models)
    base.pop("AIRFLOW__MODEL_REGISTRY__API_TOKEN", None)
    # The CI runner: never logged in (no saved login where it looks for one).
    ci = dict(
        base,
        AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH=str(tmp_path / "ci" / "credentials.json"),
        CI_MERGE_REQUEST_TITLE="Dark after 8 minutes",
    )

    def run(script: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
        # A session of its own has no terminal, so `modelreg login` reads the password from stdin.
        return subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            start_new_session=True,
        )

    with api_server(tmp_path, {**auth_environment(tmp_path), **models}) as server:
        # The lead's (and later the approver's) workstation: logged in to the API server as alice.
        person = dict(
            base,
            AIRFLOW__MODEL_REGISTRY__API_URL=server.url,
            AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH=str(tmp_path / "alice" / "credentials.json"),
        )
        done = run(setup, person, stdin=PASSWORDS["alice"] + "\n")
        assert done.returncode == 0, done.stderr
        done = run(prepare, ci)
        assert done.returncode == 0, done.stderr
        assert run(gate, ci).returncode == 1  # the SHADOW has not run yet
        report = json.loads((tmp_path / "promotion-check.json").read_text())
        assert report["passed"] is False and {g["name"]: g["actual"] for g in report["gates"]}["min_cycles"] == 0.0

        (version_id,) = registry.query("SELECT id FROM detection_model_versions WHERE version = '1.2.0'")[0]
        registry.seed_cycles("dark_gap_detector", version_id, ["success"] * 12)  # the SHADOW ran for an hour
        assert run(gate, ci).returncode == 0
        report = json.loads((tmp_path / "promotion-check.json").read_text())
        shown = json.loads(documented)
        assert report["passed"] is True and set(report) == set(shown)
        assert [c["name"] for c in report["checks"]] == [c["name"] for c in shown["checks"]]
        assert [g["name"] for g in report["gates"]] == [g["name"] for g in shown["gates"]]

        merged = run(merge, ci)
        assert merged.returncode == 0, merged.stderr
        assert json.loads(merged.stdout)["request"]["status"] == "PENDING"
        decided = run(decide, person)
        assert decided.returncode == 0, decided.stderr

    assert registry.query(
        "SELECT version, status, role, description, tags FROM detection_model_versions ORDER BY id"
    ) == [
        ("1.0.0", "ARCHIVED", "PRIMARY", None, {}),
        (
            "1.2.0",
            "ACTIVE",
            "PRIMARY",
            "Dark after 8 minutes",
            {"validated": "true", "data_version": "2026-11-01", "promoted_by": "ci"},
        ),
    ]
    service = registry.db_user
    assert registry.query(
        "SELECT requested_by, requested_by_kind, status, decided_by FROM detection_model_approval_requests"
    ) == [(service, "service", "APPROVED", "alice")]
    assert registry.query(
        "SELECT DISTINCT action, actor, actor_kind FROM detection_model_transitions"
        " WHERE action IN ('checks', 'approvals', 'register', 'request_promotion', 'approve',"
        " 'promote') ORDER BY 1, 2"
    ) == [
        ("approvals", "alice", "person"),
        ("approve", "alice", "person"),
        ("checks", "alice", "person"),
        ("promote", "alice", "person"),
        ("register", service, "service"),
        ("request_promotion", service, "service"),
    ]
