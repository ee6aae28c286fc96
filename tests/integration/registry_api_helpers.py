"""Airflow with the registry plugin for the API and browser tests: users with roles, logins,
Airflow's API app in-process and a real ``airflow api-server`` process.

The users are SimpleAuthManager's, with passwords in a file, and ``simple_auth_manager_all_admins``
is never set: it would turn authentication off and no access test could fail.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deployment.distributed_stack import free_port
from models_core.devstack import stop_group

#: user -> SimpleAuthManager role: admin and op may change the registry and govern it (force,
#: change a guarded model's guards alone: they may edit Airflow's configuration), user may
#: request and approve (edit on DAGs), viewer may only read.
ROLES = {
    "alice": "admin",
    "olga": "op",
    "uma": "user",
    "bob": "user",
    "carol": "user",
    "dave": "user",
    "victor": "viewer",
}
PASSWORDS = {user: f"{user}-{secrets.token_hex(4)}" for user in ROLES}


def auth_environment(folder: Path) -> dict[str, str]:
    """Airflow settings for logins with :data:`ROLES`; writes the passwords file into ``folder``."""
    passwords = folder / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in ROLES.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
    }


@contextmanager
def airflow_api_app(folder: Path) -> Iterator:
    """Airflow's whole API app (``create_app``), the plugin mounted by Airflow's own loader."""
    import pytest
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        for key, value in auth_environment(folder).items():
            patch.setenv(key, value)
        from airflow.api_fastapi.app import create_app, purge_cached_app

        purge_cached_app()
        try:
            with TestClient(create_app()) as client:
                yield client
        finally:
            purge_cached_app()


def token(client, user: str) -> str:
    """A JWT from ``POST /auth/token``, as an API client logs in."""
    answer = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


class AirflowApi:
    """The in-process API app and a login per user (made once)."""

    def __init__(self, client) -> None:
        self.client = client
        self._tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = token(self.client, user)
        return self._tokens[user]

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


@dataclass
class ApiServer:
    """``airflow api-server`` on a free port of 127.0.0.1, in its own process group."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def api_server(workdir: Path, env: dict[str, str], timeout_s: float = 120) -> Iterator[ApiServer]:
    """Start the API server with ``env`` (on top of the test environment) and stop its group after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **env, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": url}
    log_path = workdir / "api-server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("airflow")),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = ApiServer(process, port, log_path)
    try:
        _wait_until_answering(server, timeout_s)
        yield server
    finally:
        stop_group(process.pid, [process], timeout_s=20)


def _wait_until_answering(server: ApiServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"airflow api-server exited {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/v2/monitor/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"airflow api-server did not answer within {timeout_s} s:\n{server.log_tail()}")
