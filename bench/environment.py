"""Where the benchmarks run: a PostgreSQL server, two throw-away databases, Airflow's settings.

Everything is configured through Airflow's environment conventions before Airflow is
imported, as tests/conftest.py does, so the product runs as it does under ``make test``.
The server is the one named by ``MODEL_REGISTRY_BENCH_PG`` or else the embedded one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.airflow_env import airflow_settings, registry_connection_json, sqlalchemy_url
from models_core.store import embedded_postgres

ROOT = Path(__file__).resolve().parents[1]
SERVER_ENV = "MODEL_REGISTRY_BENCH_PG"


@dataclass
class BenchEnv:
    """One suite run's server, databases (``bench_*``, dropped at the end) and temp folder."""

    tmp: Path
    admin_dsn: str
    registry_db: str
    airflow_db: str
    server: Any = None  # the embedded server, kept attached while the suite runs
    _airflow_migrated: bool = field(default=False, repr=False)

    @classmethod
    def create(cls) -> BenchEnv:
        tmp = Path(tempfile.mkdtemp(prefix="models-core-bench-"))
        server = None
        admin_dsn = os.environ.get(SERVER_ENV)
        if not admin_dsn:
            server = embedded_postgres.start(tmp / "pgdata", stop_at_exit=True)
            admin_dsn = server.get_uri("postgres")
        suffix = uuid.uuid4().hex[:8]
        env = cls(tmp, admin_dsn, f"bench_registry_{suffix}", f"bench_airflow_{suffix}", server)
        for db in (env.registry_db, env.airflow_db):
            embedded_postgres.create_database(admin_dsn, db)
        env.models_root.mkdir()
        env.dags_folder.mkdir()
        shutil.copy(ROOT / "dags" / "detection_models.py", env.dags_folder)  # the product's DAG file
        os.environ.update(env.airflow_environment())
        sys.path.insert(0, str(env.models_root))
        return env

    def close(self) -> None:
        """Drop both databases (whoever is still connected), stop the embedded server, remove the temp folder."""
        if "airflow.settings" in sys.modules:
            from airflow.settings import dispose_orm

            dispose_orm()
        for db in (self.registry_db, self.airflow_db):
            embedded_postgres.drop_database(self.admin_dsn, db)
        if self.server is not None:
            self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def dags_folder(self) -> Path:
        return self.tmp / "dags"

    def registry_conn(self, **overrides: Any) -> str:
        """The ``registry_db`` connection in Airflow's JSON format (as tests/conftest.py)."""
        return registry_connection_json(self.admin_dsn, self.registry_db, **overrides)

    def airflow_environment(self) -> dict[str, str]:
        """Airflow and ``[model_registry]`` settings shared by this process and its children."""
        return {
            **airflow_settings(home=self.tmp / "airflow_home",
                               metadata_url=sqlalchemy_url(self.admin_dsn, self.airflow_db),
                               dags_folder=self.dags_folder, registry_connection=self.registry_conn(),
                               plan_cache_path=self.tmp / "plan_cache.json",
                               pythonpath=[str(ROOT), str(self.models_root),
                                           *filter(None, [os.environ.get("PYTHONPATH")])]),
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
        done = subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"airflow db migrate exited {done.returncode}: {done.stderr[-2000:]}")
        self._airflow_migrated = True
