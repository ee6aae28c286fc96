"""Where the benchmarks run: PostgreSQL servers, throw-away databases, Airflow's settings.

Everything is configured through Airflow's environment conventions before Airflow is
imported, as tests/conftest.py does, so the product runs as it does under ``make test``.
The embedded PostgreSQL (a new user's default) always runs; the server named by
``MODEL_REGISTRY_BENCH_PG`` joins it when set. Benchmarks whose figures depend on the
server (persistence, snapshots) measure on every server, side by side; the others run on
the main one, the ``MODEL_REGISTRY_BENCH_PG`` server when set, else the embedded one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from psycopg2.extensions import parse_dsn

from harness.airflow_env import airflow_settings, registry_connection_json, sqlalchemy_url
from models_core.store import embedded_postgres

ROOT = Path(__file__).resolve().parents[1]
SERVER_ENV = "MODEL_REGISTRY_BENCH_PG"
T = TypeVar("T")


@dataclass
class Server:
    """A PostgreSQL server of the run and the registry database the benchmarks use on it."""

    label: str  # e.g. "embedded PG 18.4" or "PG 15.19 at 127.0.0.1"
    admin_dsn: str
    registry_db: str


@dataclass
class BenchEnv:
    """One suite run's servers, databases (``bench_*``, dropped at the end) and temp folder."""

    tmp: Path
    servers: list[Server]  # the embedded one first
    airflow_db: str
    embedded: Any = None  # the embedded server, kept attached while the suite runs
    _airflow_migrated: bool = field(default=False, repr=False)

    @classmethod
    def create(cls) -> BenchEnv:
        tmp = Path(tempfile.mkdtemp(prefix="models-core-bench-"))
        embedded = embedded_postgres.start(tmp / "pgdata", stop_at_exit=True)
        suffix = uuid.uuid4().hex[:8]
        admin_dsns = [("embedded", embedded.get_uri("postgres"))]
        if os.environ.get(SERVER_ENV):
            admin_dsns.append(("service", os.environ[SERVER_ENV]))
        servers = [Server(_label(kind, dsn), dsn, f"bench_registry_{suffix}") for kind, dsn in admin_dsns]
        env = cls(tmp, servers, f"bench_airflow_{suffix}", embedded)
        for server in servers:
            embedded_postgres.create_database(server.admin_dsn, server.registry_db)
        embedded_postgres.create_database(env.main.admin_dsn, env.airflow_db)
        env.models_root.mkdir()
        env.dags_folder.mkdir()
        shutil.copy(ROOT / "dags" / "detection_models.py", env.dags_folder)  # the product's DAG file
        os.environ.update(env.airflow_environment())
        sys.path.insert(0, str(env.models_root))
        return env

    @property
    def main(self) -> Server:
        """Where Airflow's metadata and the server-independent benchmarks live."""
        return self.servers[-1]

    @property
    def admin_dsn(self) -> str:
        return self.main.admin_dsn

    @property
    def registry_db(self) -> str:
        return self.main.registry_db

    @contextmanager
    def on(self, server: Server) -> Iterator[Server]:
        """Point the ``registry_db`` connection at ``server`` for the ``with`` block."""
        main = os.environ["AIRFLOW_CONN_REGISTRY_DB"]
        os.environ["AIRFLOW_CONN_REGISTRY_DB"] = self.registry_conn(server)
        try:
            yield server
        finally:
            os.environ["AIRFLOW_CONN_REGISTRY_DB"] = main

    def on_every_server(self, measure: Callable[[Server], list[T]]) -> list[T]:
        """``measure`` on every server of the run, embedded first: figures that depend on the server."""
        results: list[T] = []
        for server in self.servers:
            with self.on(server):
                results += measure(server)
        return results

    def close(self) -> None:
        """Drop every database (whoever is still connected), stop the embedded server, remove the temp folder."""
        if "airflow.settings" in sys.modules:
            from airflow.settings import dispose_orm

            dispose_orm()
        for server in self.servers:
            embedded_postgres.drop_database(server.admin_dsn, server.registry_db)
        embedded_postgres.drop_database(self.main.admin_dsn, self.airflow_db)
        self.embedded.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def dags_folder(self) -> Path:
        return self.tmp / "dags"

    def registry_conn(self, server: Server | None = None, **overrides: Any) -> str:
        """The ``registry_db`` connection to ``server`` (default: the main one) in Airflow's JSON format."""
        server = server or self.main
        return registry_connection_json(server.admin_dsn, server.registry_db, **overrides)

    def airflow_environment(self) -> dict[str, str]:
        """Airflow and ``[model_registry]`` settings shared by this process and its children."""
        return {
            **airflow_settings(
                home=self.tmp / "airflow_home",
                metadata_url=sqlalchemy_url(self.main.admin_dsn, self.airflow_db),
                dags_folder=self.dags_folder,
                registry_connection=self.registry_conn(),
                plan_cache_path=self.tmp / "plan_cache.json",
                pythonpath=[str(ROOT), str(self.models_root), *filter(None, [os.environ.get("PYTHONPATH")])],
            ),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }

    @property
    def models_root(self) -> Path:
        """Folder on sys.path (and PYTHONPATH) holding the generated models packages."""
        return self.tmp / "models"

    def migrate_airflow(self) -> None:
        """``airflow db migrate`` once per suite run, for the benchmarks that need it."""
        if self._airflow_migrated:
            return
        done = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"airflow db migrate exited {done.returncode}: {done.stderr[-2000:]}")
        self._airflow_migrated = True


def _label(kind: str, admin_dsn: str) -> str:
    """``embedded PG 18.4`` or ``PG 15.19 at 127.0.0.1``: how the results table names a server."""
    conn = psycopg2.connect(admin_dsn, connect_timeout=10)
    try:
        version = conn.server_version  # e.g. 180004
    finally:
        conn.close()
    number = f"{version // 10000}.{version % 10000}"
    return (
        f"embedded PG {number}"
        if kind == "embedded"
        else f"PG {number} at {parse_dsn(admin_dsn).get('host', 'localhost')}"
    )
