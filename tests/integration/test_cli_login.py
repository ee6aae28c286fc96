"""`modelreg login`: the CLI's changes are made as the person Airflow authenticated (issue 23, item 4).

A real ``airflow api-server`` with SimpleAuthManager users; ``modelreg`` runs as a process,
as a person types it. The login is a token from ``POST /auth/token``, kept in a file only
its owner can read; every change then goes through the registry API as that person.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from registry_api_helpers import PASSWORDS, api_server, auth_environment


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-server")
    with api_server(folder, auth_environment(folder)) as running:
        yield running


def _modelreg(env: dict[str, str], *argv: str, password: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "models_core", *argv],
        env=env,
        capture_output=True,
        text=True,
        input=password,
        timeout=120,
    )


def test_login_keeps_the_token_privately_and_changes_are_made_as_that_person(registry, server, tmp_path):
    registry.add_version("loner", "1.0.0")
    shadow = registry.add_version("loner", "1.1.0", "SHADOW")
    registry.seed_cycles("loner", shadow, ["success"] * 12, hours_ago=3)
    credentials = tmp_path / "config" / "modelreg" / "credentials.json"
    env = {**os.environ, "AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH": str(credentials)}

    login = _modelreg(
        env, "login", "--url", server.url, "--username", "uma", "--password-stdin", password=PASSWORDS["uma"] + "\n"
    )

    assert login.returncode == 0, login.stderr
    assert login.stdout.startswith(f"logged in to {server.url} as uma (permissions: approve, request)")
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
    assert json.loads(credentials.read_text())["user"] == "uma"
    whoami = _modelreg(env, "whoami", "--json")
    assert json.loads(whoami.stdout)["id"] == "uma" and json.loads(whoami.stdout)["mode"] == "api"

    assert _modelreg(env, "tag", "loner", "1.1.0", "validated=true").returncode == 0
    assert _modelreg(env, "--json", "approvals", "set", "loner", "on").returncode == 0
    requested = _modelreg(env, "--json", "promote", "loner", "1.1.0", "--reason", "recall")
    assert requested.returncode == 0, requested.stderr
    own = _modelreg(env, "approve", "loner")
    assert own.returncode == 1 and own.stderr.strip().splitlines() == [
        "modelreg approve: uma cannot approve request #1 for loner@1.1.0: they made it, and a change under approval "
        "needs a second person; ask a different actor to approve it"
    ]
    assert registry.query(
        "SELECT DISTINCT actor, actor_kind FROM detection_model_transitions WHERE source = 'api'"
        " AND action <> 'sql_insert'"
    ) == [("uma", "person")]

    env_bob = {**os.environ, "AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH": str(tmp_path / "bob.json")}
    assert (
        _modelreg(
            env_bob,
            "login",
            "--url",
            server.url,
            "--username",
            "bob",
            "--password-stdin",
            password=PASSWORDS["bob"] + "\n",
        ).returncode
        == 0
    )
    approved = _modelreg(env_bob, "--json", "approve", "loner", "1.1.0", "--reason", "agreed")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["promotion"]["promoted"] == "1.1.0"
    assert registry.query("SELECT requested_by, decided_by FROM detection_model_approval_requests") == [("uma", "bob")]

    logout = _modelreg(env, "logout")
    assert logout.returncode == 0 and not credentials.exists()
    direct = _modelreg(env, "--json", "whoami")
    assert json.loads(direct.stdout)["mode"] == "direct" and json.loads(direct.stdout)["kind"] == "service"


def test_a_token_in_the_environment_logs_in_a_ci_job(registry, server, tmp_path):
    registry.add_version("loner", "1.0.0")
    token = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            f"{server.url}/auth/token",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"username": "bob", "password": PASSWORDS["bob"]}),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    env = {
        **os.environ,
        "AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH": str(tmp_path / "none.json"),
        "AIRFLOW__MODEL_REGISTRY__API_URL": server.url,
        "AIRFLOW__MODEL_REGISTRY__API_TOKEN": json.loads(token.stdout)["access_token"],
    }

    assert _modelreg(env, "describe", "loner", "1.0.0", "from the CI job").returncode == 0

    assert registry.query("SELECT actor, actor_kind FROM detection_model_transitions WHERE action = 'describe'") == [
        ("bob", "person")
    ]


def test_a_wrong_password_or_an_expired_token_is_one_clear_line(registry, server, tmp_path):
    env = {**os.environ, "AIRFLOW__MODEL_REGISTRY__CREDENTIALS_PATH": str(tmp_path / "c.json")}

    wrong = _modelreg(env, "login", "--url", server.url, "--username", "uma", "--password-stdin", password="nope\n")
    assert wrong.returncode == 1 and wrong.stderr.strip().splitlines() == [
        f"modelreg login: {server.url} did not accept the user name and password of 'uma'"
    ]
    assert not Path(tmp_path / "c.json").exists()
    stale = {**env, "AIRFLOW__MODEL_REGISTRY__API_URL": server.url, "AIRFLOW__MODEL_REGISTRY__API_TOKEN": "not-a-jwt"}
    refused = _modelreg(stale, "describe", "loner", "1.0.0", "x")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "did not accept your login" in refused.stderr and "run `modelreg login` again" in refused.stderr
    unreachable = _modelreg({**stale, "AIRFLOW__MODEL_REGISTRY__API_URL": "http://127.0.0.1:9"}, "whoami")
    assert unreachable.returncode == 1 and "cannot reach the registry API at http://127.0.0.1:9" in unreachable.stderr
