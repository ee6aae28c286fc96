"""Registry: the registry's reads at 1,000 models x 100 versions, and how they grow.

For each size of ``--registry-versions`` (10,000 and 100,000 versions, 100 per model) the
registry is seeded with COPY (:mod:`bench.registry_seed`), on every server of the run, and
each read is measured ``--registry-calls`` times (whole processes ``--registry-process-calls``
times), interleaved call by call with its floor: the bare SQL reading the same rows through
the indexes on an open connection (:file:`registry_floors.sql`).

- The API reads go over HTTP to a real ``airflow api-server`` (one uvicorn worker, the
  registry plugin mounted by Airflow's own loader, SimpleAuthManager), with a JWT from
  ``POST /auth/token`` on a kept-alive connection: what the registry page's ``fetch``
  calls cost, Airflow's authentication and access checks included.
- ``modelreg list``, ``show`` and ``best`` are whole processes, as people run them; their
  floor is a fresh Python process that connects with psycopg2 and runs the floor's SQL (the
  least any Python command can cost: interpreter, driver, connection, query).
- The plan read at parse is :func:`models_core.cycle.plan_source.load_plan`, what the cycle
  DAG's factory calls at every parse, over a models package with a class per model.
- The hourly snapshot is :func:`models_core.maintenance.snapshots.take_snapshot` over the
  last hour.

Goals (the issue's): an API read's p50 <= 50 ms and p99 <= 200 ms at the largest size, and
its p50 within 3x its floor beyond the authenticated round trip every call pays (``GET
/whoami``, measured call by call alongside the read and its floor, so that the machine's drift
between one read's figures and another's does not move the bound); a read of one page or one
model no more than 2x slower at the largest size than at the smallest (the registry grew 10x:
linear growth would be 10x).
The other reads (``modelreg list``, the plan read, the snapshot) are reported with their
ratio to their floor, without a goal: they read the whole registry by design.
``make bench BENCH_ARGS=registry``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import make_dsn, parse_dsn

from bench.environment import BenchEnv, Server
from bench.measure import Comparison, Figure, Goal, Table, timed
from bench.registry_seed import Scale, Seeded, model_id_of, seed_registry
from bench.workload import write_models_package
from harness.airflow_processes import free_port
from models_core.api.summaries import PAGE_SIZE as PAGE
from models_core.api.summaries import TAGGED_SHOWN
from models_core.cycle.plan_source import load_plan
from models_core.devstack import stop_group
from models_core.maintenance.snapshots import Window, take_snapshot
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.sql_files import queries

API = "/model-registry/api"
P50_GOAL_S = 0.050
P99_GOAL_S = 0.200
FLOOR_RATIO = 3.0
GROWTH_RATIO = 2.0
ROUND_TRIP = "API round trip (GET /whoami)"
PROCESS_START = "modelreg start (modelreg --help)"
#: The tag filter's value: 1 version in 12 of every model carries it, so its first page is full at
#: every size (a team's, 1 model in 20, filled a fifth of it at 10,000 versions: unfair growth).
TAGGED_DATA = "2026-03-01"
USER = "bench_reader"


@dataclass(frozen=True)
class Read:
    """One read: how the product does it, its floor, and which goals apply."""

    name: str
    product: Callable[[], object]
    floor: Callable[[], object]
    api: bool  # an API read: the p50/p99 goals and the floor goal (beyond the round trip) apply
    paged: bool  # shows one page or one model: must not grow with the registry
    process: bool = False  # a whole process (or as slow): fewer calls
    fixed: bool = False  # this read *is* its kind's fixed cost (the round trip, a modelreg start)
    round_trip: Callable[[], object] | None = None  # its kind's fixed cost, timed alongside it

    @property
    def judged(self) -> bool:
        """Whether a goal applies (else its figures and ratio are reported only)."""
        return self.api or self.paged


@dataclass(frozen=True)
class Samples:
    product: list[float]
    floor: list[float]
    round_trip: list[float] = field(default_factory=list)

    def p(self, side: str, q: float) -> float:
        values = sorted(getattr(self, side))
        return values[max(0, math.ceil(q * len(values)) - 1)]


@dataclass(frozen=True)
class Outcome:
    """A read's figures at one size on one server."""

    read: Read
    server: str
    size: int
    samples: Samples

    @property
    def p50(self) -> float:
        return statistics.median(self.samples.product)

    @property
    def p99(self) -> float:
        return self.samples.p("product", 0.99)

    @property
    def floor(self) -> float:
        return statistics.median(self.samples.floor)

    @property
    def ratio(self) -> float:
        return self.p50 / self.floor

    @property
    def round_trip(self) -> float | None:
        """The p50 of the round trip timed alongside this read, if it had one."""
        return statistics.median(self.samples.round_trip) if self.samples.round_trip else None


@dataclass(frozen=True)
class RegistryGoal(Goal):
    """The issue's goals. An API read: p50 and p99 bounds, and within ``bound`` x its floor
    beyond ``fixed``, the authenticated HTTP round trip every call pays (measured in the same
    run; an empty call costs more than most floors). A read of one page or one model: no more
    than :data:`GROWTH_RATIO` x the smallest size's p50. Other reads are reported only."""

    outcome: Outcome | None = None
    growth: float | None = None
    fixed: float = 0.0

    def met(self, ratio: float) -> bool:  # noqa: ARG002 - judged on the outcome's figures
        o = self.outcome
        fast = o.p50 - self.fixed <= self.bound * o.floor and o.p50 <= P50_GOAL_S and o.p99 <= P99_GOAL_S
        steady = self.growth is None or self.growth <= GROWTH_RATIO
        return (not o.read.api or fast) and (not o.read.paged or steady)

    def __str__(self) -> str:
        o = self.outcome
        parts = []
        if o.read.api:
            floor = "the fixed cost of its kind" if o.read.fixed else f"<= {self.bound:g}x floor + round trip"
            parts += [floor, f"p50 <= {P50_GOAL_S * 1000:g} ms, p99 <= {P99_GOAL_S * 1000:g} ms"]
        if o.read.paged:
            parts.append(f"growth <= {GROWTH_RATIO:g}x")
        return "; ".join(parts) or "reported"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g}" if seconds < 10 else f"{seconds * 1000:.0f}"


# ---- the API server -------------------------------------------------------------------------


@dataclass
class ApiClient:
    """A logged-in client of one ``airflow api-server``."""

    base_url: str
    http: httpx.Client

    def get(self, path: str) -> Any:
        answer = self.http.get(f"{API}{path}")
        if answer.status_code != 200:
            raise RuntimeError(f"GET {API}{path} answered {answer.status_code}: {answer.text[:300]}")
        return answer.content


@contextmanager
def api_server(env: BenchEnv, server: Server, log: Path) -> Iterator[ApiClient]:
    """``airflow api-server`` (one worker) with the registry on ``server``, and a client logged in as a reader."""
    port = free_port()
    passwords = env.tmp / "simple_auth_manager_passwords.json"
    password = secrets.token_urlsafe(12)
    passwords.write_text(f'{{"{USER}": "{password}"}}')
    child_env = {
        **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "AIRFLOW_CONN_REGISTRY_DB": env.registry_conn(server),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"airflow api-server exited {process.returncode}; see {log}")
            with suppress(OSError):
                with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=2):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"airflow api-server did not answer within 180 s; see {log}")
            time.sleep(0.5)
        with httpx.Client(base_url=base_url, timeout=300) as http:
            answer = http.post("/auth/token", json={"username": USER, "password": password})
            if answer.status_code != 201:
                raise RuntimeError(f"POST /auth/token answered {answer.status_code}: {answer.text[:300]}")
            http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            yield ApiClient(base_url, http)
    finally:
        stop_group(process.pid, [process])


# ---- the reads ------------------------------------------------------------------------------


_FLOOR_PROCESS = """
import json, sys, psycopg2
conn = psycopg2.connect(sys.argv[1], options="-c search_path=" + sys.argv[2])
cur = conn.cursor()
cur.execute(sys.stdin.read(), json.loads(sys.argv[3]))
for row in cur.fetchall():
    print(*row, sep="\\t")
"""


#: Primary-at's floor is its one statement (lifecycle.sql ``primary_at``: the last entry into
#: PRIMARY and that version's moves after it), run bare.
PRODUCT_PRIMARY_AT = "lifecycle.sql primary_at"


def _floor_sql(conn: PgConnection, *statements: tuple[str, dict[str, Any]]) -> Callable[[], object]:
    q = {
        **queries("registry_floors.sql", package="bench"),
        PRODUCT_PRIMARY_AT: queries("lifecycle.sql", package="models_core.registry")["primary_at"],
    }

    def run() -> None:
        with conn.cursor() as cur:
            for name, params in statements:
                cur.execute(q[name], params)
                cur.fetchall()
        conn.rollback()

    return run


def _process(argv: list[str], env: dict[str, str], stdin: str | None = None) -> Callable[[], object]:
    def run() -> None:
        done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv[:4])} exited {done.returncode}: {done.stderr[-1000:]}")

    return run


def _reads(
    seeded: Seeded, client: ApiClient, conn: PgConnection, server: Server, env: BenchEnv, schema: str
) -> list[Read]:
    end = datetime.now(seeded.end.tzinfo)
    day = {"start": end - timedelta(hours=24), "end": end}
    week = {"start": end - timedelta(hours=168), "end": end}
    model = seeded.model(0.5)
    challenger = seeded.challenger_of(model)
    tagged = seeded.model_ids[:PAGE]  # every model has versions of each data version: a whole page at any size
    first_page = seeded.model_ids[:PAGE]
    at = seeded.end - timedelta(days=seeded.scale.days // 2)
    settings = load_settings()
    child_env = {**os.environ, "AIRFLOW_CONN_REGISTRY_DB": env.registry_conn(server)}
    modelreg = str(Path(sys.executable).with_name("modelreg"))
    dsn = make_dsn(**{**parse_dsn(server.admin_dsn), "dbname": server.registry_db})
    floors = queries("registry_floors.sql", package="bench")

    def floor_process(name: str, params: dict[str, Any]) -> Callable[[], object]:
        return _process(
            [sys.executable, "-c", _FLOOR_PROCESS, dsn, schema, json.dumps(params, default=str)],
            child_env,
            floors[name],
        )

    snapshot_window = Window(end - timedelta(hours=1), end)

    def api(name: str, path: str, *floor: tuple[str, dict[str, Any]], fixed: bool = False) -> Read:
        round_trip = None if fixed else (lambda: client.get("/whoami"))
        return Read(
            name, lambda: client.get(path), _floor_sql(conn, *floor), api=True, paged=True, fixed=fixed,
            round_trip=round_trip,
        )  # fmt: skip

    def command(name: str, argv: list[str], floor: str, params: dict[str, Any], *, paged: bool = True) -> Read:
        run = _process([modelreg, *argv], child_env)
        return Read(name, run, floor_process(floor, params), api=False, paged=paged, process=True)

    return [
        api(ROUND_TRIP, "/whoami", ("nothing", {}), fixed=True),
        api(
            "API models page (first page)",
            "/models",
            ("page_models", {"limit": PAGE}),
            ("page_versions", {**day, "models": first_page}),
        ),
        api(
            "API drift of the first page",
            "/drift?" + "&".join(f"model={quote(m)}" for m in first_page),
            ("page_drift", {**day, "models": first_page}),
        ),
        api(
            "API tag filter (a data version's models)",
            f"/models?tag={quote(f'data_version={TAGGED_DATA}')}",
            ("tagged_page_models", {"limit": PAGE, "key": "data_version", "value": TAGGED_DATA}),
            ("page_versions", {**day, "models": tagged}),
            (
                "tagged_versions",
                {"models": tagged, "tags": json.dumps({"data_version": TAGGED_DATA}), "shown": TAGGED_SHOWN},
            ),
        ),
        api(
            "API model page",
            f"/models/{model}",
            ("model_versions", {"model_id": model}),
            ("history", {"model_id": model}),
            ("page_versions", {**week, "models": [model]}),
        ),
        api(
            "API promote --check",
            f"/models/{model}/versions/{challenger.version}/check?action=promote",
            ("version_evidence", {**week, "model_id": model, "version": challenger.version}),
            ("model_statuses", {"model_id": model}),
            ("status_history", {"model_id": model}),
        ),
        api(
            "API primary-at",
            f"/models/{model}/primary-at?at={quote(at.isoformat())}",
            (PRODUCT_PRIMARY_AT, {"model_id": model, "at": at}),
        ),
        api("API history of one model", f"/models/{model}/history", ("history", {"model_id": model})),
        Read(
            PROCESS_START,
            _process([modelreg, "--help"], child_env),
            floor_process("nothing", {}),
            api=False,
            paged=True,
            process=True,
            fixed=True,
        ),
        command("modelreg list (process)", ["list"], "all_versions_brief", {}, paged=False),
        command("modelreg show (process)", ["show", model], "model_versions", {"model_id": model}),
        command(
            "modelreg best (process)",
            ["best", model, "--metric", "score_mean"],
            "metric_by_version",
            {**week, "model_id": model, "metric": "score_mean"},
        ),
        Read(
            "plan read at parse (load_plan)",
            lambda: load_plan(settings),
            _floor_sql(conn, ("active_versions", {}), ("dependencies", {})),
            api=False,
            paged=False,
        ),
        Read(
            "hourly snapshot",
            lambda: take_snapshot(
                conn,
                schema=settings.schema,
                models_package=settings.models_package,
                kind="hourly",
                window=snapshot_window,
                models=None,
                now=end,
                drift_band=settings.drift_band,
                months_ahead=1,
                settle_after=2 * settings.task_timeout,
                shadow_pool=settings.shadow_pool,
            ),
            _floor_sql(
                conn,
                *(
                    (name, {"start": snapshot_window.start, "end": snapshot_window.end})
                    for name in ("window_outcomes", "window_metrics", "window_drift", "window_outputs")
                ),
            ),
            api=False,
            paged=False,
            process=True,
        ),
    ]


def _measure(read: Read, calls: int, budget_s: float) -> Samples:
    """Up to ``calls`` calls of the product, of the floor and of the round trip (if the read has
    one), in turn (which goes first turns too), after one untimed call of each; stops early once
    ``budget_s`` is spent."""
    samples = Samples([], [], [])
    sides = [(read.product, samples.product), (read.floor, samples.floor)]
    if read.round_trip is not None:
        sides.append((read.round_trip, samples.round_trip))
    for action, _ in sides:
        action()
    started = time.monotonic()
    for call in range(calls):
        first = call % len(sides)
        for action, timings in sides[first:] + sides[:first]:
            timings.append(timed(action))
        if call >= 2 and time.monotonic() - started > budget_s:
            break
    return samples


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class _Results:
    outcomes: list[Outcome] = field(default_factory=list)
    seeding: list[str] = field(default_factory=list)

    def at(self, name: str, server: str, size: int) -> Outcome | None:
        return next((o for o in self.outcomes if o.read.name == name and o.server == server and o.size == size), None)


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison | Table]:
    sizes = sorted(args.registry_versions)
    per_model = args.registry_versions_per_model
    largest = max(sizes) // per_model
    package = f"bench_registry_models_{largest}"
    write_models_package(env.models_root, package, [model_id_of(n) for n in range(largest)])
    env.migrate_airflow()
    results = _Results()
    for server in env.servers:
        with env.on(server), api_server(env, server, env.tmp / f"api-server-{server.registry_db}.log") as client:
            settings = load_settings()
            for versions in sizes:
                scale = Scale(
                    models=versions // per_model,
                    versions_per_model=per_model,
                    days=args.registry_days,
                    cycle_minutes=args.registry_cycle_minutes,
                )
                with registry_connection(settings) as conn:
                    started = time.monotonic()
                    seeded = seed_registry(conn, settings.schema, scale)
                    results.seeding.append(
                        f"{server.label}, {scale.versions:,} versions: seeded in {time.monotonic() - started:.0f} s "
                        f"({', '.join(f'{table} {count:,}' for table, count in seeded.rows.items() if count)})"
                    )
                    print(f"[bench] registry: {results.seeding[-1]}", file=sys.stderr, flush=True)
                    # What exists now (the seeded registry's rows in Python, Airflow's modules) is
                    # left out of the collection each timed call starts with: else every call first
                    # walks that heap, and 200 calls no longer fit a figure's time budget.
                    gc.collect()
                    gc.freeze()
                    for read in _reads(seeded, client, conn, server, env, settings.schema):
                        calls = args.registry_process_calls if read.process else args.registry_calls
                        try:
                            samples = _measure(read, calls, args.registry_seconds)
                        except Exception as exc:  # one broken read must not hide the others
                            print(f"[bench] registry: {read.name} failed: {exc}", file=sys.stderr, flush=True)
                            continue
                        results.outcomes.append(Outcome(read, server.label, scale.versions, samples))
                        o = results.outcomes[-1]
                        print(
                            f"[bench] registry: {server.label} {scale.versions:,} {read.name}: p50 {_ms(o.p50)} ms "
                            f"p99 {_ms(o.p99)} ms floor {_ms(o.floor)} ms ({len(samples.product)} calls)",
                            file=sys.stderr,
                            flush=True,
                        )
                    gc.unfreeze()  # this size's registry may go now
    return [*_comparisons(results, sizes), _table(results, sizes, env)]


def _growth(results: _Results, outcome: Outcome, sizes: list[int]) -> float | None:
    smallest = results.at(outcome.read.name, outcome.server, sizes[0])
    return None if smallest is None or outcome.size == sizes[0] else outcome.p50 / smallest.p50


def _goal(results: _Results, o: Outcome, sizes: list[int]) -> RegistryGoal:
    """The goal of ``o``, with the API round trip timed alongside it as the fixed cost (else the
    one at its size on its server)."""
    found = results.at(ROUND_TRIP, o.server, o.size)
    if o.read.fixed:
        fixed = o.p50
    elif o.read.api:
        fixed = o.round_trip if o.round_trip is not None else (found.p50 if found else 0.0)
    else:
        fixed = 0.0
    return RegistryGoal("<=", FLOOR_RATIO, o, _growth(results, o, sizes), fixed)


def _comparisons(results: _Results, sizes: list[int]) -> list[Comparison]:
    found = []
    for o in (o for o in results.outcomes if o.size == sizes[-1] and o.read.judged):
        growth = _growth(results, o, sizes)
        found.append(
            Comparison(
                f"registry {o.read.name} at {o.size:,} versions [{o.server}]",
                Figure(f"p99 {_ms(o.p99)} ms; p50", o.p50, "s"),
                Figure("floor p50", o.floor, "s"),
                _goal(results, o, sizes),
                f"{len(o.samples.product)} calls"
                + (f"; round trip alongside {_ms(o.round_trip)} ms" if o.round_trip is not None else "")
                + (f"; {growth:.2g}x the p50 at {sizes[0]:,}" if growth else ""),
            )
        )
    return found


def _table(results: _Results, sizes: list[int], env: BenchEnv) -> Table:
    header = ["read", "server"]
    header += [f"{size:,} versions: p50 / p99 (floor) ms, ratio" for size in sizes]
    header += [f"growth {sizes[0]:,} -> {sizes[-1]:,}", "goal", "result"]
    rows = []
    names = list(dict.fromkeys(o.read.name for o in results.outcomes))
    for name in names:
        for server in (s.label for s in env.servers):
            cells = [name, server]
            top = None
            for size in sizes:
                o = results.at(name, server, size)
                cells.append("-" if o is None else f"{_ms(o.p50)} / {_ms(o.p99)} ({_ms(o.floor)}), {o.ratio:.2g}x")
                top = o or top
            if top is None:
                continue
            growth = _growth(results, top, sizes)
            goal = _goal(results, top, sizes)
            verdict = ("PASS" if goal.met(top.ratio) else "MISS") if top.read.judged else "-"
            cells += ["-" if growth is None else f"{growth:.2g}x", str(goal), verdict]
            rows.append(cells)
    notes = results.seeding + [
        "p50 / p99 over the calls of each read; floor: p50 of the bare SQL reading the same rows",
    ]
    return Table("registry at scale", header, rows, notes)
