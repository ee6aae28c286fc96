"""How ``modelreg`` makes a change: as the person logged in to Airflow, or as a service account.

Logged in (``modelreg login``, or a token in ``[model_registry] api_token``), a change is an
HTTP request to the registry API on the Airflow API server, so the actor is whoever Airflow
authenticated, exactly as on the registry page. Without a login, ``modelreg`` is in direct
database mode, for bootstrap and CI service accounts: it makes the very same change
in-process (:func:`~models_core.registry.changes.perform`), with the database user it
connects as for actor, marked as a service (a service never approves). Either way a change
passes the same body validation, the same registry calls and answers the same JSON, so the
CLI prints the same thing in both modes.

The login is kept like ``gh auth login`` keeps its token: a file only its owner can read
(``[model_registry] credentials_path``, by default ``~/.config/modelreg/credentials.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.encoders import jsonable_encoder

from models_core.errors import ModelRegistryError
from models_core.registry.actors import Actor
from models_core.registry.changes import CHANGES, parse_body, perform
from models_core.registry.errors import RegistryRefusal
from models_core.settings import Settings

#: Where the registry API is mounted on the Airflow API server (``models_core.api.URL_PREFIX``).
API_PREFIX = "/model-registry/api"
#: Airflow's own REST API on the same server (DAG runs are made there, as anyone makes them).
AIRFLOW_API_PREFIX = "/api/v2"
_TIMEOUT_S = 60.0


class CommandError(ModelRegistryError):
    """A refusal or failure, already worded as the one line ``modelreg`` prints."""


@dataclass(frozen=True)
class Credentials:
    """Where the Airflow API server is and the token that logs in to it."""

    url: str
    token: str
    user: str | None = None
    source: str = "file"  # or "environment" ([model_registry] api_token)


def read_credentials(settings: Settings) -> Credentials | None:
    """The login to use: ``api_token`` from the configuration first, else the saved login, else None."""
    if settings.api_token:
        return Credentials(settings.api_url, settings.api_token, None, "environment")
    try:
        saved = json.loads(settings.credentials_path.read_text())
        return Credentials(saved["url"], saved["token"], saved.get("user"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            f"modelreg: cannot read the saved login {settings.credentials_path} ({exc}); "
            "run `modelreg login` again or `modelreg logout`"
        ) from None


def save_credentials(path: Path, credentials: Credentials) -> None:
    """Keep the login in a file only its owner can read or write (0600 in a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": credentials.url, "token": credentials.token, "user": credentials.user}, handle)
    os.chmod(path, 0o600)


def log_in(url: str, username: str, password: str, http: httpx.Client | None = None) -> str:
    """A token from the auth manager's ``POST /auth/token``, or a :class:`CommandError` saying why not."""
    client = http or httpx.Client(timeout=_TIMEOUT_S)
    try:
        answer = client.post(f"{url.rstrip('/')}/auth/token", json={"username": username, "password": password})
    except httpx.HTTPError as exc:
        raise CommandError(
            f"modelreg login: cannot reach the Airflow API server at {url} ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        if http is None:
            client.close()
    if answer.status_code in (401, 403):
        raise CommandError(f"modelreg login: {url} did not accept the user name and password of {username!r}")
    if not answer.is_success or "access_token" not in _json(answer):
        raise CommandError(f"modelreg login: {url}/auth/token answered HTTP {answer.status_code}: {_detail(answer)}")
    return _json(answer)["access_token"]


class ApiTransport:
    """Changes as HTTP requests to the registry API, as the person the token logs in."""

    def __init__(self, credentials: Credentials, http: httpx.Client | None = None) -> None:
        self.credentials = credentials
        self._http = http
        self._owned: httpx.Client | None = None

    def describe(self) -> str:
        """Where the changes go; who they are made as is the server's to say (``/whoami``)."""
        return f"logged in to {self.credentials.url}" + (
            f" with the token from {self.credentials.source}" if self.credentials.source != "file" else ""
        )

    def get(self, path: str, command: str) -> dict[str, Any]:
        return self._call("GET", path, command, None)

    def change(self, name: str, path_params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        spec = CHANGES[name]
        path = spec.path.format(**{key: quote(value, safe="") for key, value in path_params.items()})
        return self._call("POST", path, spec.command, body)

    def trigger(self, dag_id: str, conf: dict[str, Any], command: str) -> dict[str, Any]:
        """A run of ``dag_id`` with ``conf`` (its Params), made through Airflow's own API as the person
        logged in: Airflow decides whether they may trigger that DAG and records them as its trigger."""
        return self._call(
            "POST",
            f"/dags/{quote(dag_id, safe='')}/dagRuns",
            command,
            {"logical_date": None, "conf": conf},
            prefix=AIRFLOW_API_PREFIX,
            forbidden=f"your user needs permission to trigger the {dag_id} DAG",
            missing="has the DAG processor parsed the DAG files yet?",
        )

    def _call(
        self,
        method: str,
        path: str,
        command: str,
        body: dict[str, Any] | None,
        *,
        prefix: str = API_PREFIX,
        forbidden: str = "your user needs edit access to the detection_models DAG to change the registry",
        missing: str | None = None,
    ) -> dict[str, Any]:
        """``forbidden``: what a 403 of Airflow's means here; ``missing``: what a 404 may mean (else
        the answer's own detail is the message)."""
        url = f"{self.credentials.url.rstrip('/')}{prefix}{path}" if self._http is None else f"{prefix}{path}"
        try:
            answer = self._client().request(
                method, url, json=body, headers={"Authorization": f"Bearer {self.credentials.token}"}
            )
        except httpx.HTTPError as exc:
            raise CommandError(
                f"modelreg {command}: cannot reach the registry API at {self.credentials.url} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if answer.is_success:
            return _json(answer)
        detail = _detail(answer)
        if detail.startswith("modelreg "):  # the registry's own refusal, worded as the CLI words it
            raise CommandError(detail)
        if answer.status_code == 401 or (answer.status_code == 403 and "token" in detail.lower()):
            raise CommandError(
                f"modelreg {command}: {self.credentials.url} did not accept your login "
                f"({detail}); run `modelreg login` again"
            )
        if answer.status_code == 403:
            raise CommandError(f"modelreg {command}: Airflow refused it ({detail}): {forbidden}")
        if answer.status_code == 404 and missing:
            raise CommandError(f"modelreg {command}: {self.credentials.url} does not know it ({detail}): {missing}")
        raise CommandError(f"modelreg {command}: {detail}")

    def _client(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        if self._owned is None:
            self._owned = httpx.Client(timeout=_TIMEOUT_S)
        return self._owned

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()


class DirectTransport:
    """Changes through the same route functions, in-process, as a service account."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def describe(self) -> str:
        return f"direct database mode as {self.actor.describe()} (not logged in: `modelreg login`)"

    def change(self, name: str, path_params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        try:
            return jsonable_encoder(perform(name, self.actor, path_params, parse_body(name, body)))
        except RegistryRefusal as exc:
            raise CommandError(exc.line) from None

    def close(self) -> None:
        """Nothing to close: each change opens and closes its own connection."""


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {"result": found}


def _detail(answer: httpx.Response) -> str:
    detail = _json(answer).get("detail")
    text = detail if isinstance(detail, str) else json.dumps(detail) if detail else answer.text
    return " ".join(str(text).split())[:500] or f"HTTP {answer.status_code}"
