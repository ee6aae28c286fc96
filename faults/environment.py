"""Where the faults run: PostgreSQL servers, one workspace (databases, Airflow settings) per fault.

The main server is the one ``MODEL_REGISTRY_FAULTS_PG`` names (a libpq URL) or else an
embedded one the suite starts. A fault that restarts a database asks for a server of its
own (:meth:`Suite.owned_server`), which is always an embedded one the suite started, never
the main server. Each workspace gets two fresh databases, ``faults_<fault>_registry_<id>``
and ``faults_<fault>_airflow_<id>``, dropped when the fault ends. The suite process never
imports Airflow: it reads Airflow's metadata with plain SQL and talks to Airflow through its
REST API and CLI, as an operator would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extensions import make_dsn

from faults.owned_server import OwnedServer
from harness.airflow_env import airflow_settings, registry_connection_json, sqlalchemy_url
from harness.sql import fetch_rows
from models_core.store import embedded_postgres

ROOT = Path(__file__).resolve().parents[1]
SERVER_ENV = "MODEL_REGISTRY_FAULTS_PG"
SCHEMA = "kcg"
PYTHON = sys.executable
COMMAND_TIMEOUT_S = 300


def _without_airflow_settings(environ: dict[str, str]) -> dict[str, str]:
    """This process's environment minus any Airflow configuration a developer's shell may carry."""
    return {
        key: value
        for key, value in environ.items()
        if not key.startswith(("AIRFLOW_", "AIRFLOW__", "_AIRFLOW")) and key != "PYTHONPATH"
    }


@dataclass
class Workspace:
    """One fault's databases, folder and the environment of every process it starts."""

    name: str
    folder: Path
    registry_admin_dsn: str
    registry_db: str
    metadata_admin_dsn: str
    airflow_db: str
    env: dict[str, str]

    @property
    def home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    @property
    def registry_dsn(self) -> str:
        return make_dsn(self.registry_admin_dsn, dbname=self.registry_db)

    def registry(self, **kwargs: Any) -> psycopg2.extensions.connection:
        """A connection to the registry database with the product's search_path (autocommit)."""
        conn = psycopg2.connect(
            self.registry_dsn, options=f"-c search_path={SCHEMA},public", connect_timeout=5, **kwargs
        )
        conn.autocommit = True
        return conn

    def registry_rows(self, statement: str, params: Any = None) -> list[tuple]:
        """Plain SQL on the registry database, with the product's search_path."""
        return fetch_rows(self.registry_dsn, statement, params, search_path=f"{SCHEMA},public")

    def meta_rows(self, statement: str, params: Any = None) -> list[tuple]:
        """Plain SQL on Airflow's metadata database."""
        return fetch_rows(make_dsn(self.metadata_admin_dsn, dbname=self.airflow_db), statement, params)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = COMMAND_TIMEOUT_S,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a command with this workspace's environment in its own process group.

        On timeout the whole group is killed (by its id, never by name).
        """
        process = subprocess.Popen(
            list(argv),
            env={**self.env, **(env or {})},
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise RuntimeError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from None
        if check and process.returncode:
            raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {(err or out)[-3000:]}")
        return subprocess.CompletedProcess(argv, process.returncode, out, err)

    def airflow(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        return self.run([str(Path(PYTHON).with_name("airflow")), *args], **kwargs)

    def modelreg(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        """The product's registry CLI (``python -m models_core``), as an operator runs it."""
        return self.run([PYTHON, "-m", "models_core", *args], **kwargs)


@dataclass
class Suite:
    """The servers of one ``make faults`` run and its temp folder."""

    tmp: Path
    admin_dsn: str
    keep: bool = False
    overrides: dict[str, str] = field(default_factory=dict)  # ``--set``: applied to every workspace, last
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    _servers: list[OwnedServer] = field(default_factory=list)

    @classmethod
    def create(cls, keep: bool = False, overrides: dict[str, str] | None = None) -> Suite:
        tmp = Path(tempfile.mkdtemp(prefix="models-core-faults-"))
        servers = []
        admin_dsn = os.environ.get(SERVER_ENV)
        if not admin_dsn:
            servers.append(OwnedServer(tmp / "main_pgdata"))
            admin_dsn = servers[0].admin_dsn
        return cls(tmp, admin_dsn, keep, overrides or {}, _servers=servers)

    def owned_server(self, name: str) -> OwnedServer:
        """A server of the suite's own, which a fault may stop, restart or kill."""
        server = OwnedServer(self.tmp / f"{name}_pgdata")
        self._servers.append(server)
        return server

    @contextmanager
    def workspace(
        self,
        name: str,
        *,
        models_package: str,
        settings: dict[str, str] | None = None,
        registry_server: OwnedServer | None = None,
        registry_address: tuple[str, int] | None = None,
    ) -> Iterator[Workspace]:
        """Fresh databases and an Airflow home for fault ``name``, migrated, for the ``with`` block.

        ``registry_server`` puts the registry on a server of the suite's own (else the main
        one); ``registry_address`` makes the Airflow processes reach it through that
        (host, port), a proxy. ``settings`` adds or overrides environment variables.
        """
        folder = self.tmp / name
        (folder / "dags").mkdir(parents=True)
        shutil.copy(ROOT / "dags" / "detection_models.py", folder / "dags")  # the product's DAG file
        registry_admin = registry_server.admin_dsn if registry_server else self.admin_dsn
        registry_db, airflow_db = f"faults_{name}_registry_{self.suffix}", f"faults_{name}_airflow_{self.suffix}"
        overrides: dict[str, Any] = {}
        if registry_address:
            overrides = {"host": registry_address[0], "port": registry_address[1]}
        env = {
            **_without_airflow_settings(dict(os.environ)),
            **airflow_settings(
                home=folder / "airflow_home",
                metadata_url=sqlalchemy_url(self.admin_dsn, airflow_db),
                dags_folder=folder / "dags",
                registry_connection=registry_connection_json(registry_admin, registry_db, **overrides),
                plan_cache_path=folder / "plan_cache.json",
                pythonpath=[str(ROOT / "include"), str(ROOT)],
            ),
            "PATH": os.pathsep.join([str(Path(PYTHON).parent), os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__PARALLELISM": "6",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE": models_package,
            "AIRFLOW__MODEL_REGISTRY__SCHEDULE": "none",
            "AIRFLOW__MODEL_REGISTRY__REPORTS_DIR": str(folder / "reports"),
            **(settings or {}),
            **self.overrides,
        }
        created: list[tuple[str, str]] = []
        try:
            for admin, db in ((registry_admin, registry_db), (self.admin_dsn, airflow_db)):
                embedded_postgres.create_database(admin, db)
                created.append((admin, db))
            workspace = Workspace(name, folder, registry_admin, registry_db, self.admin_dsn, airflow_db, env)
            workspace.airflow("db", "migrate")
            workspace.modelreg("migrate")  # the registry schema and the shadow pool, as `make run` does
            yield workspace
        finally:
            for admin, db in reversed(created):
                with suppress(psycopg2.Error):
                    embedded_postgres.drop_database(admin, db)

    def close(self) -> None:
        for server in reversed(self._servers):
            server.close()
        if self.keep:
            print(f"[faults] kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
