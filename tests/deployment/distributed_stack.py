"""A real distributed Airflow on this machine: CeleryExecutor, two workers, PostgreSQL, Redis.

Used by ``test_distributed.py``. Everything is a separate OS process in its own process
group (``start_new_session``), configured only through the environment built here, with
fresh databases ``dist_airflow_<suffix>`` (Airflow metadata and Celery results) and
``dist_registry_<suffix>`` (the model registry). :meth:`DistributedStack.close` stops every
process group it started (SIGTERM, wait, SIGKILL, plus any descendant that left its group)
and drops both databases.

The metadata database is read with plain SQL through psycopg2: the test process's own
Airflow configuration (set up by ``tests/conftest.py``) is never used for the stack.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from psycopg2.extensions import parse_dsn

from harness.celery_broker import CeleryBroker
from harness.sql import fetch_rows
from harness.task_logs import skip_reasons, task_errors, task_log_records
from models_core.store import embedded_postgres

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
DAG_ID = "detection_models"
REGISTRY_SCHEMA = "kcg"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"

T = TypeVar("T")
S = TypeVar("S", bound="DistributedStack")


# --------------------------------------------------------------------------- availability


def _reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_base_url() -> str:
    return os.environ.get("MODEL_REGISTRY_TEST_REDIS", DEFAULT_REDIS_URL).rstrip("/")


def unavailable_reason() -> str | None:
    """Why the distributed test cannot run here, or None when it can."""
    admin = os.environ.get("MODEL_REGISTRY_TEST_PG")
    if not admin:
        return "MODEL_REGISTRY_TEST_PG is not set (a PostgreSQL server for dist_* databases is needed)"
    try:
        psycopg2.connect(admin, connect_timeout=3).close()
    except psycopg2.Error as exc:
        return f"PostgreSQL {admin} is not reachable: {str(exc).strip()}"
    if importlib.util.find_spec("airflow.providers.celery") is None:
        return "apache-airflow-providers-celery is not installed (CeleryExecutor unavailable)"
    if importlib.util.find_spec("redis") is None:
        return "the redis client package is not installed"
    import redis

    url = redis_base_url()
    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis broker {url} is not reachable: {exc}"
    return None


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def stopped_even_on_sigterm(stack: S) -> Iterator[S]:
    """Close ``stack`` on the way out, also when pytest is sent SIGTERM (a CI timeout, say).

    A second SIGTERM must not cut the cleanup short: its processes stop and its databases drop.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield stack
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stack.close()
        finally:
            signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    argv: list[str]
    process: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class TimeoutReached(AssertionError):
    pass


@dataclass
class DistributedStack:
    workdir: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    services: dict[str, Service] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    worker_names: tuple[str, ...] = ("dist-worker-1", "dist-worker-2")
    worker_concurrency: int = 2
    admin_dsn: str = field(default_factory=lambda: os.environ["MODEL_REGISTRY_TEST_PG"])

    def __post_init__(self) -> None:
        self.parts = parse_dsn(self.admin_dsn)
        self.airflow_db = f"dist_airflow_{self.suffix}"
        self.registry_db = f"dist_registry_{self.suffix}"
        self.api_port = free_port()
        # One Redis database index and one queue of our own, so a concurrent run on the
        # same Redis neither takes our tasks nor hands us its own.
        self.redis_db = 1 + int(self.suffix, 16) % 15
        self.queue = f"dist_{self.suffix}"
        self.broker_url = f"{redis_base_url()}/{self.redis_db}"
        self.home = self.workdir / "airflow_home"
        self.home.mkdir(parents=True, exist_ok=True)
        self._created_dbs: list[str] = []
        self.env = self._environment()

    # ----------------------------------------------------------------- configuration

    def _pg(self, key: str, default: str | None = None) -> str | None:
        return self.parts.get(key) or default

    def sqlalchemy_url(self, database: str) -> str:
        user = self._pg("user", "postgres")
        password = self._pg("password")
        auth = f"{user}:{password}" if password else user
        host = self._pg("host", "127.0.0.1")
        if host.startswith("/"):
            return f"postgresql+psycopg2://{auth}@/{database}?host={host}"
        return f"postgresql+psycopg2://{auth}@{host}:{self._pg('port', '5432')}/{database}"

    def dsn(self, database: str) -> str:
        keys = {k: v for k, v in self.parts.items() if k in ("host", "port", "user", "password")}
        keys["dbname"] = database
        return " ".join(f"{k}={v}" for k, v in keys.items())

    def _registry_conn_json(self) -> str:
        conn: dict[str, Any] = {
            "conn_type": "postgres",
            "host": self._pg("host", "127.0.0.1"),
            "login": self._pg("user", "postgres"),
            "schema": self.registry_db,
            "extra": {"connect_timeout": 5},
        }
        if self._pg("password"):
            conn["password"] = self._pg("password")
        if self._pg("port"):
            conn["port"] = int(self._pg("port"))
        return json.dumps(conn)

    def _environment(self) -> dict[str, str]:
        """The environment of every process: nothing inherited from the test's Airflow config."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_", "AIRFLOW__", "_AIRFLOW")) and k != "PYTHONPATH"
        }
        metadata = self.sqlalchemy_url(self.airflow_db)
        env.update(
            {
                "PATH": os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
                # This tree's models_core first (the venv's editable install points here too),
                # then models_for_tests and worker_hostname.
                "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(TESTS), str(HERE)]),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.workdir / "plugins"),  # empty: the entry point's plugin
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                # Sending a task to Redis on a busy two-core machine can exceed the 1 s default.
                "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW_CONN_REGISTRY_DB": self._registry_conn_json(),
                "AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE": "models_for_tests",
                "AIRFLOW__MODEL_REGISTRY__SCHEDULE": "* * * * *",
                "AIRFLOW__MODEL_REGISTRY__PLAN_CACHE_PATH": str(self.workdir / "plan_cache.json"),
                "AIRFLOW__MODEL_REGISTRY__EMBEDDED_PGDATA": str(self.workdir / "embedded_unused"),
                "AIRFLOW__MODEL_REGISTRY__REPORTS_DIR": str(self.workdir / "reports"),
            }
        )
        return env

    # ----------------------------------------------------------------- databases

    def create_databases(self) -> None:
        for name in (self.airflow_db, self.registry_db):
            assert name.startswith("dist_")
            embedded_postgres.create_database(self.admin_dsn, name)
            self._created_dbs.append(name)

    def drop_databases(self) -> None:
        for name in reversed(self._created_dbs):
            try:
                embedded_postgres.drop_database(self.admin_dsn, name)
            except psycopg2.Error as exc:
                print(f"could not drop {name}: {exc}", file=sys.stderr)
        self._created_dbs.clear()

    def query(
        self, database: str, statement: str, params: Iterable[Any] | dict | None = None, search_path: str | None = None
    ) -> list[tuple]:
        return fetch_rows(self.dsn(database), statement, params, search_path=search_path)

    def meta(self, statement: str, params: Any = None) -> list[tuple]:
        return self.query(self.airflow_db, statement, params)

    def registry(self, statement: str, params: Any = None) -> list[tuple]:
        """Plain SQL on the registry, with search_path set as ``models_core`` sets it."""
        return self.query(self.registry_db, statement, params, search_path=f"{REGISTRY_SCHEMA},public")

    # ----------------------------------------------------------------- commands

    def run(self, *argv: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        """Run a one-off command (``airflow ...``, ``python -m models_core ...``) in its own group."""
        started = time.monotonic()
        log = self.workdir / "commands.log"
        with open(log, "a") as out:
            out.write(f"\n$ {' '.join(argv)}\n")
            out.flush()
            proc = subprocess.Popen(
                list(argv),
                env=self.env,
                cwd=self.workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            try:
                output, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
                raise TimeoutReached(f"{' '.join(argv)} did not finish in {timeout} s:\n{output[-3000:]}") from None
            out.write(output)
        label = " ".join(argv[:3]) if argv[0] == AIRFLOW else " ".join(argv[2:4])
        self.timings[label.replace(AIRFLOW, "airflow")] = time.monotonic() - started
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{output[-4000:]}")
        return subprocess.CompletedProcess(argv, proc.returncode, output, "")

    def airflow(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(AIRFLOW, *args, timeout=timeout, check=check)

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Service:
        log_path = self.workdir / f"{name}.log"
        env = {**self.env, **(extra_env or {})}
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.workdir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        service = Service(name, argv, process, log_path)
        self.services[name] = service
        return service

    # ----------------------------------------------------------------- lifecycle

    def prepare(self, seed: Callable[[DistributedStack], Any]) -> Any:
        """Airflow metadata, registry schema and rows, and the shadow pool, as the init service does."""
        started = time.monotonic()
        self.create_databases()
        self.airflow("db", "migrate", timeout=300)
        self.run(sys.executable, "-m", "models_core", "migrate")
        seeded = seed(self)
        self.airflow("pools", "set", "model_shadows", "4", "SHADOW/CHALLENGER model tasks")
        self.timings["prepare"] = time.monotonic() - started
        return seeded

    def start_services(self) -> None:
        self.start(
            "api-server", [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"]
        )
        self.start("scheduler", [AIRFLOW, "scheduler", "--skip-serve-logs"])
        self.start("dag-processor", [AIRFLOW, "dag-processor"])
        for name in self.worker_names:
            self.start(
                name,
                [
                    AIRFLOW,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{name}-{self.suffix}@%h",
                    "--concurrency",
                    str(self.worker_concurrency),
                    "--queues",
                    self.queue,
                    "--skip-serve-logs",
                    "--without-mingle",
                    "--without-gossip",
                ],
                extra_env={
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_hostname.hostname",
                    "DIST_WORKER_HOSTNAME": name,
                },
            )

    def check_alive(self) -> None:
        for service in self.services.values():
            code = service.process.poll()
            if code is not None:
                raise AssertionError(f"{service.name} exited with {code}; last log lines:\n{service.tail(60)}")

    def wait_until(self, what: str, probe: Callable[[], T], timeout: float, interval: float = 1.0) -> T:
        """Poll ``probe`` until it returns something truthy; fail with diagnostics after ``timeout``."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.check_alive()
            try:
                value = probe()
                if value:
                    return value
            except (psycopg2.Error, OSError, ValueError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise TimeoutReached(
                    f"timed out after {timeout:.0f} s waiting for {what}"
                    f" (last error: {last_error})\n{self.diagnostics()}"
                )
            time.sleep(interval)

    def health(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.load(response)

    def workers_answering(self) -> set[str]:
        from celery import Celery

        app = Celery(broker=self.broker_url)
        try:
            replies = app.control.ping(timeout=1.5)
        finally:
            app.close()
        names = {name for reply in replies for name in reply}
        return {name.split("-" + self.suffix)[0] for name in names if self.suffix in name}

    def wait_ready(self, timeout: float = 150) -> None:
        started = time.monotonic()

        def healthy() -> bool:
            health = self.health()
            return all(
                health.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            )

        self.wait_until("the API server, scheduler and DAG processor to be healthy", healthy, timeout)
        self.wait_until(
            f"{DAG_ID} to be parsed and serialized",
            lambda: self.meta("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,)),
            max(10.0, timeout - (time.monotonic() - started)),
        )
        if self.worker_names:
            self.wait_until(
                "both Celery workers to answer a ping",
                lambda: self.workers_answering() >= set(self.worker_names),
                max(10.0, timeout - (time.monotonic() - started)),
                interval=0.5,
            )
        self.timings["services ready"] = time.monotonic() - started

    def task_log(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """The structured records of the task's log files (all attempts)."""
        return task_log_records(self.home, DAG_ID, run_id, task_id)

    def task_errors(self, run_id: str, task_id: str) -> list[str]:
        """``ExcType: message (in <models_core function>)`` of each exception the task logged."""
        return task_errors(self.task_log(run_id, task_id))

    def skip_reasons(self, run_id: str, task_id: str) -> list[str]:
        return skip_reasons(self.task_log(run_id, task_id))

    def diagnostics(self, lines: int = 25) -> str:
        parts = [f"work dir: {self.workdir}"]
        for service in self.services.values():
            state = service.process.poll()
            parts.append(
                f"--- {service.name} ({'running' if state is None else f'exited {state}'}),"
                f" {service.log_path}:\n{service.tail(lines)}"
            )
        return "\n".join(parts)

    def stop_services(self, grace: float = 20) -> None:
        """SIGTERM each process group, wait up to ``grace`` s, then SIGKILL it and stray descendants.

        In order: the scheduler and DAG processor (no new work), the workers (their running
        tasks still reach the API server), then the API server.
        """
        import psutil

        descendants: list[psutil.Process] = []
        for service in self.services.values():
            try:
                descendants += psutil.Process(service.process.pid).children(recursive=True)
            except psutil.Error:
                pass
        phases = [["scheduler", "dag-processor"], list(self.worker_names), ["api-server"]]
        phases.append([name for name in self.services if not any(name in phase for phase in phases)])
        for phase in phases:
            group = [self.services[name] for name in phase if name in self.services]
            started = time.monotonic()
            for service in group:
                _kill_group(service.process.pid, signal.SIGTERM)
            deadline = started + grace
            for service in group:
                try:
                    service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    print(f"{service.name} ignored SIGTERM for {grace} s; killing it", file=sys.stderr)
            for service in group:
                _kill_group(service.process.pid, signal.SIGKILL)  # whatever is left in the group
                try:
                    service.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"{service.name} (pid {service.process.pid}) did not die", file=sys.stderr)
            if group:
                self.timings[f"stop {'+'.join(phase)}"] = time.monotonic() - started
        for proc in descendants:  # anything that left its process group
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.Error:
                pass

    def clean_broker(self) -> None:
        """Delete our queue's keys; Kombu's shared keys too when no other queue uses this index."""
        problem = CeleryBroker(redis_base_url(), self.redis_db, self.queue).clean()
        if problem:
            print(problem, file=sys.stderr)

    def close(self) -> None:
        try:
            self.stop_services()
        finally:
            try:
                self.clean_broker()
            finally:
                self.drop_databases()


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
