"""docker-compose.yaml, Dockerfile and .env.example, checked without a Docker engine.

The compose file is parsed with PyYAML (anchors and ``<<`` merges resolved), its variables
interpolated the way ``docker compose`` does with the values of .env.example (fake values
for the secrets it leaves empty), and then checked: the services, their startup order and
healthchecks, the volumes, the environment (Airflow options that exist, the registry
connection, ``[model_registry]`` keys that ``models_core.settings`` reads), that no secret
is committed, and that every command the services run exists: ``airflow ...`` in Airflow's
own CLI parser, ``python -m models_core ...`` in ours, the files the Dockerfile copies.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS = ROOT / "include" / "models_core" / "settings.py"

DATA_SERVICES = {"airflow-db", "registry-db", "redis"}
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-1",
    "airflow-worker-2",
}
WORKERS = ("airflow-worker-1", "airflow-worker-2")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME, and $$.
_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
HAS_CELERY = importlib.util.find_spec("airflow.providers.celery") is not None


# --------------------------------------------------------------------------- helpers


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation; a missing required variable raises KeyError."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        current = env.get(name)
        if op in (":-", "-"):
            return current if current or (op == "-" and current is not None) else arg
        if op in (":?", "?"):
            if not current and not (op == "?" and current is not None):
                raise KeyError(f"${{{name}}} is required: {arg}")
            return current
        return current or ""

    return _VAR.sub(replace, value)


def variables(text: str) -> dict[str, str | None]:
    """Every variable the text references, with its operator (None when bare)."""
    found: dict[str, str | None] = {}
    for match in _VAR.finditer(text):
        name = match.group("name") or match.group("bare")
        if name:
            found.setdefault(name, match.group("op"))
    return found


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    return node


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_lines(service: dict) -> list[list[str]]:
    """The argv of each command a service runs: its command (or script) and its healthcheck."""
    lines: list[list[str]] = []
    entrypoint = service.get("entrypoint") or []
    command = service.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    if entrypoint and entrypoint[-1] == "-c" and command:  # a shell script
        for line in command[0].splitlines():
            if line.strip() and not line.strip().startswith("#"):
                lines.append(shlex.split(line))
    elif command:
        lines.append(list(command))
    test = (service.get("healthcheck") or {}).get("test") or []
    if test and test[0] == "CMD-SHELL":
        for part in re.split(r"\|\||&&", test[1]):
            lines.append(shlex.split(part))
    elif test and test[0] == "CMD":
        lines.append(list(test[1:]))
    return lines


def settings_keys() -> set[str]:
    """The [model_registry] keys models_core.settings reads (``conf.get*(SECTION, "key"``)."""
    return set(re.findall(r"conf\.get\w*\(\s*SECTION,\s*\"(\w+)\"", SETTINGS.read_text()))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def dotenv(env_example) -> dict[str, str]:
    """.env.example with a fake value for each secret it leaves empty."""
    return {key: value or f"fake-{key.lower().replace('_', '-')}" for key, value in env_example.items()}


@pytest.fixture(scope="module")
def compose(raw, dotenv) -> dict:
    return resolve(raw, dotenv)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


# --------------------------------------------------------------------------- services


def test_services_are_the_celery_deployment(services):
    assert set(services) == DATA_SERVICES | AIRFLOW_SERVICES
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands["airflow-apiserver"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-triggerer"] == ["airflow", "triggerer"]
    hostnames = set()
    for worker in WORKERS:
        argv = commands[worker]
        assert argv[:3] == ["airflow", "celery", "worker"]
        hostnames.add(argv[argv.index("--celery-hostname") + 1] if "--celery-hostname" in argv else None)
        hostnames.add(services[worker].get("hostname"))
    assert None not in hostnames and len(hostnames) == 2 * len(WORKERS), "workers need distinct names"


def test_airflow_services_share_the_image_built_from_the_dockerfile(services):
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1
    for name in AIRFLOW_SERVICES:
        build = services[name]["build"]
        context = ROOT / build["context"]
        assert context.resolve() == ROOT
        assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    for name in DATA_SERVICES:
        assert "build" not in services[name] and ":" in services[name]["image"], f"{name}: pin an image tag"


def test_the_registry_has_its_own_server_and_airflow_its_metadata_database(services):
    for name in ("airflow-db", "registry-db"):
        assert services[name]["image"].startswith("postgres:")
    airflow_db, registry_db = environment(services["airflow-db"]), environment(services["registry-db"])
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert metadata.scheme.startswith("postgresql") and metadata.hostname == "airflow-db"
        assert (metadata.username, metadata.password, metadata.path.lstrip("/")) == (
            airflow_db["POSTGRES_USER"],
            airflow_db["POSTGRES_PASSWORD"],
            airflow_db["POSTGRES_DB"],
        )
        backend = env["AIRFLOW__CELERY__RESULT_BACKEND"]
        assert backend.startswith("db+postgresql") and urlsplit(backend[3:]).hostname == "airflow-db"
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis"
        registry = urlsplit(env["AIRFLOW_CONN_REGISTRY_DB"])
        assert registry.hostname == "registry-db" != metadata.hostname
        assert (registry.username, registry.password, registry.path.lstrip("/")) == (
            registry_db["POSTGRES_USER"],
            registry_db["POSTGRES_PASSWORD"],
            registry_db["POSTGRES_DB"],
        )


def test_registry_connection_is_a_postgres_connection_airflow_understands(services):
    from airflow.models.connection import Connection

    uri = environment(services["airflow-worker-1"])["AIRFLOW_CONN_REGISTRY_DB"]
    conn = Connection(conn_id="registry_db", uri=uri)
    assert conn.conn_type == "postgres"
    assert (conn.host, conn.port, conn.schema) == ("registry-db", 5432, "registry")
    assert "connect_timeout" in conn.extra_dejson


def test_every_airflow_service_gets_the_same_configuration(services):
    common = environment(services["airflow-scheduler"])
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env == common, f"{name} differs: {set(env.items()) ^ set(common.items())}"
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        assert common[key], key
    api = services["airflow-apiserver"]["command"]
    port = api[api.index("--port") + 1] if "--port" in api else "8080"
    assert common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{port}/execution/"
    assert any(mapping.endswith(f":{port}") for mapping in services["airflow-apiserver"]["ports"])


def test_airflow_options_exist():
    """Each AIRFLOW__SECTION__KEY names an option Airflow (or the Celery provider) defines."""
    from airflow.configuration import conf

    described = conf.configuration_description
    raw_env = environment(yaml.safe_load(COMPOSE.read_text())["x-airflow-common"])
    unknown = []
    for key in raw_env:
        if not key.startswith("AIRFLOW__") or key.startswith("AIRFLOW__MODEL_REGISTRY__"):
            continue
        section, option = key[len("AIRFLOW__") :].lower().split("__", 1)
        if section == "celery" and not HAS_CELERY:
            continue
        if option not in described.get(section, {}).get("options", {}):
            unknown.append(key)
    assert not unknown, f"options Airflow does not know: {unknown}"


def test_model_registry_settings_are_keys_models_core_reads(services, raw):
    keys = settings_keys()
    assert {"models_package", "schema", "conn_id", "schedule"} <= keys  # the regex still finds them
    env = environment(services["airflow-worker-1"])
    ours = {
        key[len("AIRFLOW__MODEL_REGISTRY__") :].lower(): value
        for key, value in env.items()
        if key.startswith("AIRFLOW__MODEL_REGISTRY__")
    }
    assert ours and set(ours) <= keys, f"unknown [model_registry] keys: {set(ours) - keys}"
    assert ours["conn_id"] == "registry_db" and "AIRFLOW_CONN_REGISTRY_DB" in env
    assert ours["shadow_pool"] == "model_shadows" and ours["shadow_pool_slots"] == "4"
    assert ours["models_package"] == "example_models"
    assert ours["schedule"] == "*/5 * * * *"
    assert importlib.util.find_spec(ours["models_package"]) is not None


# --------------------------------------------------------------------------- secrets


def test_no_secret_is_committed(raw, env_example):
    """Secrets come only from required variables; .env.example names every variable, no secret."""
    used = variables(json.dumps(raw))  # the values, not the comments
    required = {name for name, op in used.items() if op in (":?", "?")}
    assert {
        "AIRFLOW_DB_PASSWORD",
        "REGISTRY_DB_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
    } <= required
    assert set(used) <= set(env_example), f"not in .env.example: {set(used) - set(env_example)}"
    assert all(not env_example[name] for name in required), "secrets in .env.example must stay empty"

    def check(env: dict[str, str], where: str) -> None:
        for key, value in env.items():
            if SECRET_KEY.search(key) and not key.endswith("_FILE"):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value), f"{where} {key} must be a required variable"
                assert SECRET_KEY.search(variables(value).popitem()[0])
            for url_password in re.findall(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@\s]+)@", value):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", url_password), f"{where} {key}: password in a URL"

    check(environment(raw["x-airflow-common"]), "x-airflow-common")
    for name, service in raw["services"].items():
        check(environment(service), name)


def test_compose_refuses_to_start_without_the_secrets(raw, dotenv):
    resolve(raw, dotenv)
    for name in ("AIRFLOW_DB_PASSWORD", "REGISTRY_DB_PASSWORD", "AIRFLOW_JWT_SECRET"):
        with pytest.raises(KeyError, match=name):
            resolve(raw, {**dotenv, name: ""})


# --------------------------------------------------------------------------- order and health


def test_healthchecks_and_startup_order(services):
    for name, service in services.items():
        if name == "airflow-init":
            assert service.get("restart", "no") == "no"
            continue
        assert (service.get("healthcheck") or {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "always", name
    init_deps = services["airflow-init"]["depends_on"]
    assert set(init_deps) == {"airflow-db", "registry-db"}
    assert all(dep["condition"] == "service_healthy" for dep in init_deps.values())
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        for data in DATA_SERVICES:
            assert deps[data]["condition"] == "service_healthy", (name, data)
    for worker in WORKERS:
        # Task workers fetch connections through the execution API.
        assert services[worker]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
        assert services[worker].get("stop_grace_period"), "a worker needs time for its warm shutdown"
    # depends_on names services and has no cycle.
    graph = {name: set(service.get("depends_on") or {}) for name, service in services.items()}
    assert all(deps <= set(services) for deps in graph.values())
    seen: set[str] = set()
    while len(seen) < len(graph):
        ready = {name for name, deps in graph.items() if name not in seen and deps <= seen}
        assert ready, f"depends_on cycle among {set(graph) - seen}"
        seen |= ready


def test_worker_healthchecks_ping_their_own_celery_hostname(services):
    for worker in WORKERS:
        argv = services[worker]["command"]
        celery_hostname = argv[argv.index("--celery-hostname") + 1].replace("%h", "${HOSTNAME}")
        ping = services[worker]["healthcheck"]["test"][1]
        assert f'-d "{celery_hostname}"' in ping, (worker, ping)


# --------------------------------------------------------------------------- volumes


def test_volumes(raw, services):
    declared = set(raw.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for mount in service.get("volumes") or []:
            source, target = mount.split(":")[:2]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    data = {
        name: [m for m in services[name]["volumes"] if m.endswith("/var/lib/postgresql/data")]
        for name in ("airflow-db", "registry-db")
    }
    assert all(len(mounts) == 1 for mounts in data.values())
    assert data["airflow-db"] != data["registry-db"], "the two databases need their own volumes"
    for name in AIRFLOW_SERVICES:
        mounts = dict(m.split(":")[1::-1] for m in services[name]["volumes"])
        env = environment(services[name])
        assert "/opt/airflow/logs" in mounts  # one log volume: the API server reads the workers' logs
        for key in ("AIRFLOW__MODEL_REGISTRY__PLAN_CACHE_PATH", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"):
            assert str(Path(env[key]).parent) in mounts, f"{name}: {key} is not on a volume"


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, one list per FROM (the global ARGs before the first)."""
    stages: list[list[tuple[str, str]]] = [[]]
    for op, value in instructions:
        if op == "FROM":
            stages.append([])
        stages[-1].append((op, value))
    return stages


def _copied(stage: list[tuple[str, str]]) -> set[str]:
    """The project files a stage copies from the build context (not from another stage)."""
    copied = set()
    for op, value in stage:
        if op == "COPY" and "--from=" not in value:
            *sources, _ = shlex.split(value)
            copied |= {source.rstrip("/") for source in sources if not source.startswith("--")}
    return copied


def test_dockerfile_builds_the_project_image(services):
    instructions = _dockerfile_instructions()
    args = dict(re.match(r"(\w+)=?(.*)", value).groups() for op, value in instructions if op == "ARG")
    _, builder, final = _stages(instructions)
    for _, value in (builder[0], final[0]):
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], value.split()[0])
        assert base.startswith(("python:3.11-slim", "apache/airflow:3.3.2")), base
    for source in _copied(builder) | _copied(final):
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the project"
    # The wheel is built from the package's sources; the image gets the wheel and dags/ only.
    assert {"pyproject.toml", "include"} <= _copied(builder)
    assert "pip wheel" in " ".join(value for op, value in builder if op == "RUN")
    assert _copied(final) == {"requirements.txt", "dags"}, "the image holds no source tree and no plugins folder"
    stage_name = builder[0][1].split()[-1]
    assert any(op == "COPY" and f"--from={stage_name}" in value for op, value in final)
    run = " && ".join(value for op, value in final if op == "RUN")
    assert "pip install -r requirements.txt" in run
    assert re.search(r"pip install --constraint requirements\.txt \S+\.whl", run), "the wheel is installed, pinned"
    assert not re.search(r"pip install[^&]* -e ", run), "no editable install: there is no source tree"
    assert re.search(r"apt-get install[^&]*\bcurl\b", run), "the healthchecks use curl"
    env = " ".join(value for op, value in final if op == "ENV")
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags" in env
    entrypoint = json.loads(next(value for op, value in final if op == "ENTRYPOINT"))
    assert entrypoint[0] == "/usr/bin/tini" and "tini" in run
    init = services["airflow-init"]["entrypoint"]
    assert init[0] == entrypoint[0]


def test_celery_provider_is_installed_and_agrees_with_requirements():
    requirements = (ROOT / "requirements.txt").read_text()
    run = " ".join(value for op, value in _dockerfile_instructions() if op in ("RUN", "ARG"))
    assert (
        re.search(r"^apache-airflow-providers-celery==", requirements, re.M)
        or "apache-airflow-providers-celery==" in run
    )
    assert re.search(r"^apache-airflow==3\.3\.2$", requirements, re.M)
    for package in ("apache-airflow-providers-celery", "celery"):
        pinned = re.search(rf"^{re.escape(package)}==(\S+)$", requirements, re.M)
        in_docker = re.search(rf"(?<![\w-]){re.escape(package)}(?:\[\w+\])?==([\w.]+)", run)
        if pinned and in_docker:
            assert pinned.group(1) == in_docker.group(1), f"{package}: Dockerfile and requirements.txt disagree"


# --------------------------------------------------------------------------- commands exist

_PARSE_AIRFLOW = r"""
import contextlib, io, json, sys
from airflow.cli.cli_parser import get_parser
failures = {}
for argv in json.load(sys.stdin):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            get_parser().parse_args(argv[1:])
    except SystemExit as exc:
        if exc.code:
            failures[" ".join(argv)] = err.getvalue().strip().splitlines()[-1:]
print(json.dumps(failures))
"""


def _all_commands(services) -> list[list[str]]:
    return [argv for name in sorted(services) for argv in command_lines(services[name])]


def _airflow_parse_failures(argvs: list[list[str]], tmp_path: Path) -> dict[str, list[str]]:
    import os

    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_AIRFLOW],
        input=json.dumps(argvs),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_command_the_services_run_exists(services, tmp_path):
    argvs = _all_commands(services)
    programs = {argv[0] for argv in argvs}
    assert programs <= {"airflow", "python", "celery", "curl", "pg_isready", "redis-cli"}, programs
    airflow = [argv for argv in argvs if argv[0] == "airflow" and (HAS_CELERY or argv[1] != "celery")]
    assert {" ".join(argv[:3]) for argv in airflow} >= {"airflow db migrate", "airflow pools set", "airflow jobs check"}
    failures = _airflow_parse_failures(airflow, tmp_path)
    assert not failures, f"the airflow CLI rejects: {failures}"

    from models_core.registry.cli import build_parser

    python = [argv for argv in argvs if argv[0] == "python"]
    assert ["python", "-m", "models_core", "migrate", "--seed-demo"] in python
    for argv in python:
        assert argv[1:3] == ["-m", "models_core"], argv
        build_parser().parse_args(argv[3:])  # exits (fails the test) on an unknown command

    pools = [argv for argv in airflow if argv[1:3] == ["pools", "set"]]
    assert [argv[3:5] for argv in pools] == [["model_shadows", "4"]]


@pytest.mark.skipif(not HAS_CELERY, reason="apache-airflow-providers-celery is not installed")
def test_celery_commands_exist(services, tmp_path):
    argvs = _all_commands(services)
    workers = [argv for argv in argvs if argv[:3] == ["airflow", "celery", "worker"]]
    assert len(workers) == len(WORKERS)
    assert not _airflow_parse_failures(workers, tmp_path)
    for argv in (argv for argv in argvs if argv[0] == "celery"):
        app = argv[argv.index("--app") + 1]
        module, _, attribute = app.rpartition(".")
        from celery import Celery

        assert isinstance(getattr(importlib.import_module(module), attribute), Celery), app
        assert argv[argv.index("--app") + 2 : argv.index("--app") + 4] == ["inspect", "ping"]
