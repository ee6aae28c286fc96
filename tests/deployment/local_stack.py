"""A real Airflow on this machine with the LocalExecutor: API server, scheduler, DAG processor.

The distributed stack without its broker and Celery workers (no worker names: none started), so it runs wherever the
integration tests run (the embedded PostgreSQL too). The API server has one user the tests
know the password of, and the ``airflow_api`` connection points at it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from distributed_stack import DistributedStack


def admin_dsn_of_the_test_server() -> str:
    """The server the test session uses, from its registry connection (its ``postgres`` database)."""
    conn = json.loads(os.environ["AIRFLOW_CONN_REGISTRY_DB"])
    parts = {
        "host": conn.get("host"),
        "port": conn.get("port"),
        "user": conn.get("login"),
        "password": conn.get("password"),
        "dbname": "postgres",
    }
    return " ".join(f"{key}={value}" for key, value in parts.items() if value)


@dataclass
class LocalStack(DistributedStack):
    worker_names: tuple[str, ...] = ()
    models_package: str = "models_for_tests"
    api_user: str = "healer"

    def __post_init__(self) -> None:
        self.api_password = secrets.token_urlsafe(16)
        super().__post_init__()

    def _environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in super()._environment().items()
            if not key.startswith("AIRFLOW__CELERY__") and key != "AIRFLOW__OPERATORS__DEFAULT_QUEUE"
        }
        passwords = self.workdir / "passwords.json"
        passwords.write_text(json.dumps({self.api_user: self.api_password}))
        api: dict[str, Any] = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.api_port,
            "schema": "http",
            "login": self.api_user,
            "password": self.api_password,
        }
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.api_user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW_CONN_AIRFLOW_API": json.dumps(api),
                "AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE": self.models_package,
            }
        )
        return env

    def clean_broker(self) -> None:
        """No broker here."""
