"""The wheel and the files of dags/ are a whole deployment, on every Airflow the wheel claims.

The wheel is built from this tree (sdist, then the wheel from the sdist) and installed into a
fresh venv with nothing but Apache Airflow, twice:

- ``pinned``: the Airflow of requirements.txt, with requirements.txt as uv constraints, so the
  wheel's ranges are shown to hold the set `make run` and CI use;
- ``oldest``: the oldest Airflow the wheel's ``apache-airflow`` range allows, with every
  dependency the wheel declares at the lowest version its range and Airflow allow
  (``--resolution lowest-direct``; the rest as PyPI had it on :data:`EXCLUDE_NEWER`, so the
  resolution is the same on every run).

Each venv gets a fresh AIRFLOW_HOME, a DAG folder holding copies of dags/*.py, an empty plugins
folder, and two fresh databases on ``MODEL_REGISTRY_TEST_PG`` (Airflow's metadata and the
registry). Every command runs with another working directory and none of the session's Airflow
settings or PYTHONPATH: whatever works, works from the installed wheel alone.

About 3 minutes on 2 cores once uv's cache holds the packages (the first run downloads them).
"""

from __future__ import annotations

import ast
import email
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from psycopg2.extensions import parse_dsn

from deployment.distributed_stack import free_port
from models_core.devstack import stop_group
from models_core.store import embedded_postgres

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))
ADMIN_DSN = os.environ.get("MODEL_REGISTRY_TEST_PG", "")
#: The oldest venv resolves what the wheel does not bound as PyPI had it then; moving it is a choice.
EXCLUDE_NEWER = "2026-12-01T00:00:00Z"
#: The DAG ids of dags/ that DESIGN.md names.
CORE_DAG_IDS = {"detection_models", "detection_model_partitions", "detection_model_snapshots"}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ADMIN_DSN, reason="MODEL_REGISTRY_TEST_PG is not set: no PostgreSQL to deploy against"),
]


# --------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `make dist` builds, built the same way into a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, f"`python -m build` failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    (built,) = out.glob("*.whl")
    return built


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's ``Requires-Dist``: what it asks of an Airflow environment."""
    with zipfile.ZipFile(wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(whl.read(name))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def oldest_airflow(wheel: Path) -> str:
    """The floor of the wheel's ``apache-airflow`` range: the oldest Airflow it claims to run on."""
    (airflow,) = [r for r in wheel_requirements(wheel) if r.name == "apache-airflow"]
    (floor,) = [s.version for s in airflow.specifier if s.operator == ">="]
    return floor


def project_holds() -> list[str]:
    """requirements.in's ranges (not pins): the project's holds against drift under Airflow."""
    holds = []
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not any(s.operator == "==" for s in Requirement(line).specifier):
            holds.append(line)
    return holds


def pinned(package: str) -> str:
    """The version of ``package`` in requirements.txt."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.lower().startswith(f"{package.lower()}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_the_wheel_ships_every_file_of_the_packages_and_the_plugin_entry_point(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        declared = whl.read(entry_points).decode()
    tree = {
        path.relative_to(ROOT / "include").as_posix()
        for package in ("models_core", "example_models", "example_consumers")
        for path in (ROOT / "include" / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = tree - names
    assert not missing, f"files of include/ missing from the wheel: {sorted(missing)}"
    assert not {n for n in names if not n.startswith(("models_core/", "example_", "detection_model_pipeline-"))}
    assert "[airflow.plugins]\nmodel_registry = models_core.plugin:ModelRegistryPlugin" in declared
    assert "modelreg = models_core.registry.cli:main" in declared


def _third_party_imports() -> dict[str, str]:
    """Each top-level module the shipped packages import that is neither stdlib nor theirs: a file importing it."""
    own = {"models_core", "example_models", "example_consumers"}
    found: dict[str, str] = {}
    for package in own:
        for path in sorted((ROOT / "include" / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".", 1)[0]
                    if top not in sys.stdlib_module_names and top not in own:
                        found.setdefault(top, path.relative_to(ROOT).as_posix())
    return found


def _installed_with(declared: list[Requirement]) -> set[str]:
    """The distributions an install of ``declared`` brings: them and, transitively, what they require."""
    seen: set[str] = set()
    todo = [r for r in declared if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        name = canonicalize_name(todo.pop().name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [r for r in map(Requirement, requires) if r.marker is None or r.marker.evaluate({"extra": ""})]
    return seen


def test_every_package_the_code_imports_comes_with_the_wheels_dependencies():
    # CI once failed only at the 15-minute install: confidence.py imported scipy and numpy,
    # which requirements.txt pinned and pyproject.toml did not declare.
    declared = [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    brought = _installed_with(declared)
    providers = importlib.metadata.packages_distributions()
    missing = {
        module: f"{where} (distribution {', '.join(providers.get(module, ['unknown']))})"
        for module, where in _third_party_imports().items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & brought
    }
    assert not missing, f"imported but not brought by pyproject.toml's dependencies: {missing}"


# --------------------------------------------------------------------------- a deployment


def _sqlalchemy_url(database: str) -> str:
    parts = parse_dsn(ADMIN_DSN)
    auth = parts.get("user", "postgres") + (f":{parts['password']}" if parts.get("password") else "")
    host = parts.get("host", "127.0.0.1")
    if host.startswith("/"):
        return f"postgresql+psycopg2://{auth}@/{database}?host={host}"
    return f"postgresql+psycopg2://{auth}@{host}:{parts.get('port', '5432')}/{database}"


def _registry_conn_json(database: str) -> str:
    parts = parse_dsn(ADMIN_DSN)
    conn: dict[str, Any] = {
        "conn_type": "postgres",
        "host": parts.get("host", "127.0.0.1"),
        "login": parts.get("user", "postgres"),
        "schema": database,
        "extra": {"connect_timeout": 5},
    }
    if parts.get("password"):
        conn["password"] = parts["password"]
    if parts.get("port"):
        conn["port"] = int(parts["port"])
    return json.dumps(conn)


def _dsn(database: str) -> str:
    parts = {k: v for k, v in parse_dsn(ADMIN_DSN).items() if k in ("host", "port", "user", "password")}
    return " ".join(f"{k}={v}" for k, v in {**parts, "dbname": database}.items())


def _query(database: str, statement: str, params: tuple = ()) -> list[tuple]:
    with closing(psycopg2.connect(_dsn(database))) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def json_output(result: subprocess.CompletedProcess) -> Any:
    """The JSON an ``airflow ... --output json`` printed last (some versions log to stdout before it)."""
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class Deployment:
    """One venv with Airflow and the wheel, its own AIRFLOW_HOME, DAG folder and databases."""

    name: str
    root: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def __post_init__(self) -> None:
        self.venv = self.root / "venv"
        self.workdir = self.root / "cwd"
        self.dags = self.root / "dags"
        self.plugins = self.root / "plugins"
        self.airflow_db = f"wheel_airflow_{self.suffix}"
        self.registry_db = f"wheel_registry_{self.suffix}"

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    @property
    def env(self) -> dict[str, str]:
        """The caller's environment without Airflow, registry or Python path settings, then the deployment's."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "_AIRFLOW", "MODEL_REGISTRY", "PYTHON", "VIRTUAL_ENV"))
        }
        env.update(
            {
                "PATH": os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "")]),
                "AIRFLOW_HOME": str(self.root / "airflow_home"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(self.airflow_db),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.root / "passwords.json"),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW_CONN_REGISTRY_DB": _registry_conn_json(self.registry_db),
            }
        )
        return env

    def run(self, *argv: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command of the venv in the working directory; its own process group, ended on timeout."""
        log = self.root / "commands.log"
        with open(log, "a") as out:
            out.write(f"\n$ {' '.join(argv)}\n")
        process = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"[{self.name}] `{' '.join(argv)}` did not end in {timeout:g} s:\n{stderr[-3000:]}")
        with open(log, "a") as out:
            out.write(stdout + stderr)
        result = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            pytest.fail(
                f"[{self.name}] `{' '.join(argv)}` exited {result.returncode}:\n{stdout[-3000:]}\n{stderr[-3000:]}"
            )
        return result

    def create(self, install: list[str]) -> None:
        """The venv with ``uv pip install`` of ``install``, the folders and the two databases."""
        for folder in (self.workdir, self.dags, self.plugins):
            folder.mkdir(parents=True)
        for dag_file in sorted((ROOT / "dags").glob("*.py")):
            shutil.copy(dag_file, self.dags)
        (self.root / "passwords.json").write_text(json.dumps({"admin": self.password}))
        self.run(UV, "venv", "--quiet", "--python", sys.executable, str(self.venv))
        self.run(UV, "pip", "install", "--quiet", "--python", self.python, *install, timeout=900)
        for database in (self.airflow_db, self.registry_db):
            embedded_postgres.create_database(ADMIN_DSN, database)

    def drop(self) -> None:
        for database in (self.airflow_db, self.registry_db):
            embedded_postgres.drop_database(ADMIN_DSN, database)

    def registered_models(self) -> set[str]:
        return {row[0] for row in _query(self.registry_db, "SELECT model_id FROM kcg.detection_model_versions")}

    def version(self, package: str) -> str:
        code = f"import importlib.metadata as m; print(m.version({package!r}))"
        return self.run(self.python, "-c", code).stdout.strip()

    def api_server(self) -> ApiServer:
        return ApiServer(self)


@dataclass
class ApiServer:
    """``airflow api-server`` of a deployment on a free port, in its own process group."""

    deployment: Deployment
    port: int = field(default_factory=free_port)

    def __enter__(self) -> httpx.Client:
        self.log = open(self.deployment.root / f"api-server-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [self.deployment.bin("airflow"), "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.deployment.workdir,
            env=self.deployment.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                log = (self.deployment.root / f"api-server-{self.port}.log").read_text()[-4000:]
                pytest.fail(f"[{self.deployment.name}] the API server never answered on {base}:\n{log}")
            time.sleep(1)
        login = {"username": "admin", "password": self.deployment.password}
        token = httpx.post(f"{base}/auth/token", json=login, timeout=10).json()["access_token"]
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return self.client

    def __exit__(self, *exc: object) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        stop_group(self.process.pid, [self.process])
        self.log.close()


def _install_pinned(wheel: Path, root: Path) -> list[str]:
    """Airflow as requirements.txt pins it, and the wheel; every other package pinned there too."""
    return ["--constraint", str(ROOT / "requirements.txt"), "apache-airflow", str(wheel)]


def _install_oldest(wheel: Path, root: Path) -> list[str]:
    """The oldest Airflow the wheel claims, its declared dependencies at their lowest, the project's holds."""
    direct = root / "wheel-requirements.txt"
    direct.write_text("".join(f"{requirement}\n" for requirement in wheel_requirements(wheel)))
    holds = root / "holds.txt"
    holds.write_text("".join(f"{hold}\n" for hold in project_holds()))
    return [
        "--resolution",
        "lowest-direct",
        "--exclude-newer",
        EXCLUDE_NEWER,
        "--constraint",
        str(holds),
        "--requirement",
        str(direct),
        f"apache-airflow=={oldest_airflow(wheel)}",
        str(wheel),
    ]


@pytest.fixture(scope="module", params=["pinned", "oldest"])
def deployment(request: pytest.FixtureRequest, wheel: Path, tmp_path_factory) -> Iterator[Deployment]:
    """A deployment with its Airflow metadata migrated and the demo registry seeded."""
    root = tmp_path_factory.mktemp(f"wheel-{request.param}")
    deployment = Deployment(request.param, root)
    install = {"pinned": _install_pinned, "oldest": _install_oldest}[request.param](wheel, root)
    try:
        deployment.create(install)
        expected = pinned("apache-airflow") if request.param == "pinned" else oldest_airflow(wheel)
        assert deployment.version("apache-airflow") == expected, f"[{request.param}] not the Airflow meant"
        deployment.run(deployment.bin("airflow"), "db", "migrate", timeout=600)
        deployment.run(deployment.python, "-m", "models_core", "migrate", "--seed-demo")
        yield deployment
    finally:
        deployment.drop()


# --------------------------------------------------------------------------- what it proves


def test_the_package_comes_from_the_venv_not_the_checkout(deployment):
    code = "import models_core, example_models; print(models_core.__file__); print(example_models.__file__)"
    files = [Path(line) for line in deployment.run(deployment.python, "-c", code).stdout.split()]
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(deployment.run(deployment.python, "-c", purelib).stdout.strip())
    assert all(path.is_relative_to(site) for path in files), f"[{deployment.name}] imported from {files}, not {site}"
    assert not any(path.is_relative_to(ROOT) for path in files)


def test_airflow_lists_the_plugin_from_its_entry_point_with_an_empty_plugins_folder(deployment):
    assert not any(deployment.plugins.iterdir())
    plugins = json_output(deployment.run(deployment.bin("airflow"), "plugins", "--output", "json"))
    (plugin,) = [p for p in plugins if p["name"] == "model_registry"]
    assert "models_core.plugin:ModelRegistryPlugin" in plugin["source"], plugin["source"]
    errors = "from airflow import plugins_manager as p; p.ensure_plugins_loaded(); print(p.get_import_errors())"
    assert deployment.run(deployment.python, "-c", errors).stdout.strip() == "{}"


def test_the_dag_files_load_with_no_import_error(deployment):
    airflow = deployment.bin("airflow")
    # It exits 1 when it finds errors; they are on stdout either way.
    errors = json_output(deployment.run(airflow, "dags", "list-import-errors", "--local", "-o", "json", check=False))
    assert errors == [], f"[{deployment.name}] import errors: {json.dumps(errors, indent=1)}"
    dags = json_output(deployment.run(airflow, "dags", "list", "--local", "--output", "json"))
    assert CORE_DAG_IDS <= {dag["dag_id"] for dag in dags}


def test_one_cycle_runs_and_stores_its_rows(deployment):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    moment = now.replace(minute=now.minute - now.minute % 5)
    deployment.run(deployment.bin("airflow"), "dags", "test", "detection_models", moment.isoformat(), timeout=900)
    runs = _query(deployment.airflow_db, "SELECT state FROM dag_run WHERE dag_id = 'detection_models'")
    tasks = _query(
        deployment.airflow_db, "SELECT task_id, state FROM task_instance WHERE dag_id = 'detection_models' ORDER BY 1"
    )
    assert runs == [("success",)], f"[{deployment.name}] cycle {runs}; tasks: {tasks}"
    rows = dict(
        _query(
            deployment.registry_db,
            "SELECT role, count(*) FROM kcg.detection_model_run_outputs WHERE cycle_started_at = %s GROUP BY role",
            (moment,),
        )
    )
    assert rows.get("PRIMARY", 0) > 0, f"[{deployment.name}] no PRIMARY rows for {moment}: {rows}"


def test_the_registry_page_and_its_api_answer_on_the_api_server(deployment):
    registered = deployment.registered_models()
    with deployment.api_server() as client:
        listed = client.get("/api/v2/plugins").json()["plugins"]
        assert "model_registry" in {plugin["name"] for plugin in listed}
        assert client.get("/api/v2/plugins/importErrors").json()["total_entries"] == 0
        page = client.get("/model-registry/static/registry-page.js")
        assert page.status_code == 200 and "globalThis.AirflowPlugin" in page.text
        models = client.get("/model-registry/api/models")
        assert models.status_code == 200, models.text
        assert {model["model_id"] for model in models.json()["models"]} == registered


def test_modelreg_is_a_console_script_of_the_wheel(deployment):
    registered = deployment.registered_models()
    plan = deployment.run(deployment.bin("modelreg"), "plan").stdout
    assert {model for model in registered if f"`{model}`" not in plan} == set(), plan
