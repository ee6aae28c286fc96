"""Hostile backends among well-behaved ones, probed by the health DAG on its real schedule.

Setup: ``--hostile-backends`` backends (200), registered with plain SQL as an operator may,
each on a port of its own, served by real HTTP servers of the suite (one asyncio loop):

- one of each hostile kind: an error body with NUL bytes, an error body of random bytes, an
  answer trickled a byte a second (timeout 3 s), an impossible port (``:80800``, a row
  registration now refuses), a redirect to itself, a connection reset, an ``https://`` URL to
  a plain HTTP server, a status answer of 8 MB of JSON, status figures too large for their
  columns (``active_jobs`` 2**40, ``total_requests`` 2**70), a healthy answer setting an 8 KB
  cookie (cookies ignore ports: kept, it would go to every other backend on 127.0.0.1);
- ``--hostile-hanging`` (20) that hang at the longest timeout (20 s), half at the health
  path (DOWN), half at the status path (UP, load judged from latency);
- the rest well-behaved: each health answer 200 or, a quarter of the time at seeded random,
  503; half have a status path answering a seeded ``active_jobs``. Each server records what
  it answered, and when.

Injection: ``detection_model_backend_health`` (the product's DAG file, default settings: a
one-minute schedule, so a 60 s task timeout) is unpaused and left to run ``--hostile-rounds``
rounds under a real scheduler (LocalExecutor).

Check, from Airflow's metadata and the registry's rows, for every round (its
``probe_backends`` task): the task succeeded at its first try, within its 60 s timeout; every
backend has exactly one sample taken in it, and that sample is right: a well-behaved
backend's matches what its server answered in that round (UP with the ``active_jobs`` it
said, or DOWN naming HTTP 503), a hostile one's is DOWN naming what it did (UP with a note
for the status kinds, UP for the cookie); right after the round, every backend's state row
holds that sample; no server was ever sent a cookie. Overall, each backend's UP/DOWN events
are exactly its sample series' transitions, and ``modelreg backends add`` refuses the
impossible port in one line naming it. Time column: the rounds' lengths (task start to end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from faults.environment import ROOT, Suite, Workspace
from faults.report import FaultReport
from harness.airflow_processes import RunningAirflow, running_airflow
from harness.task_logs import task_errors, task_log_records

NAME = "hostile_backends"
HEALTH_DAG_ID = "detection_model_backend_health"
PROBE_TASK = "probe_backends"
#: The health task's execution timeout on the default one-minute schedule, and the share of
#: it the product gives the probes (``health_check.PROBING_SHARE``): what the rounds must beat.
TASK_TIMEOUT_S = 60.0
PROBING_DEADLINE_S = 45.0
HANG_TIMEOUT_S = 20
TRICKLE_TIMEOUT_S = 3
IMPOSSIBLE_URL = "http://127.0.0.1:80800"
NUL_BODY = b"out of memory\x00 at step \x00 7"
HUGE_STATUS_BYTES = 8 * 1024 * 1024
PARSE_TIMEOUT_S = 180
SAMPLE_S = 0.5
_EXCEPTION_NAMED = r"[A-Z]\w*Error on "

Answer = tuple[datetime, str, object]  # when, "health" or "status", what was answered
Handler = Callable[["Behaviour", str, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hostile-rounds", type=int, default=3, help=f"{NAME}: health rounds judged, one a minute (default 3)"
    )
    parser.add_argument(
        "--hostile-backends",
        type=int,
        default=200,
        help=f"{NAME}: backends registered in all, hostile ones included (default 200)",
    )
    parser.add_argument(
        "--hostile-hanging",
        type=int,
        default=20,
        help=f"{NAME}: backends that hang at the longest timeout, of those (default 20)",
    )


# ---- the backends' servers -----------------------------------------------------------------


@dataclass
class Behaviour:
    """What one backend answers (its handler), what it registers as, and what it answered."""

    name: str
    kind: str
    handler: Handler | None  # None: no server (the impossible port)
    status_path: str | None = None
    timeout_s: float = 5
    scheme: str = "http"
    script: list[bool] = field(default_factory=list)  # well-behaved: UP or not, answer by answer
    jobs: list[int] = field(default_factory=list)  # well-behaved: active_jobs, answer by answer
    port: int = 0
    answers: list[Answer] = field(default_factory=list)
    cookies_seen: int = 0  # requests that came with a Cookie header

    @property
    def url(self) -> str:
        return IMPOSSIBLE_URL if self.handler is None else f"{self.scheme}://127.0.0.1:{self.port}"

    def record(self, path: str, what: object) -> None:
        self.answers.append((datetime.now(UTC), path, what))


class Servers:
    """Every backend's HTTP server, each on a port of its own, all served by one asyncio loop in a thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-servers", daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []

    def listen(self, behaviour: Behaviour) -> None:
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(partial(_serve, behaviour), "127.0.0.1", 0, backlog=128), self._loop
        ).result(10)
        self._servers.append(server)
        behaviour.port = server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _serve(behaviour: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One request per connection (``Connection: close``), as the backend's handler answers it."""
    try:
        first = await asyncio.wait_for(reader.readexactly(1), 30)
        if not first.isalpha():  # a TLS handshake: a plain HTTP server answers 400, as real ones do
            await _answer(writer, 400, b"plain HTTP here")
            return
        head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        behaviour.cookies_seen += b"\r\ncookie:" in head.lower()
        path = head.split(b" ", 2)[1].decode("ascii", "replace")
        await behaviour.handler(behaviour, path, reader, writer)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, IndexError):
        pass  # the prober went away, or sent nonsense: nothing to answer
    finally:
        writer.close()


async def _answer(
    writer: asyncio.StreamWriter, code: int, body: bytes, headers: dict[str, str] | None = None, trickle_s: float = 0
) -> None:
    head = [
        f"HTTP/1.1 {code} X",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{key}: {value}" for key, value in (headers or {}).items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    if not trickle_s:
        writer.write(body)
        await writer.drain()
        return
    for byte in body:
        await writer.drain()
        await asyncio.sleep(trickle_s)
        writer.write(bytes([byte]))


async def _well_behaved(b: Behaviour, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if path == "/health":
        turn = sum(1 for _, kind, _ in b.answers if kind == "health")
        code = 200 if b.script[turn % len(b.script)] else 503
        b.record("health", code)
        await _answer(writer, code, b"ok" if code == 200 else b"overloaded")
    elif path == "/status" and b.status_path:
        turn = sum(1 for _, kind, _ in b.answers if kind == "status")
        jobs = b.jobs[turn % len(b.jobs)]
        b.record("status", jobs)
        await _answer(writer, 200, json.dumps({"active_jobs": jobs, "total_requests": turn}).encode())
    else:
        await _answer(writer, 404, b"not found")


def _health_then(status: Handler) -> Handler:
    """A backend healthy at /health whose /status answers with ``status``."""

    async def handler(b: Behaviour, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        b.record(path, None)
        if path == "/health":
            await _answer(writer, 200, b"ok")
        else:
            await status(b, path, reader, writer)

    return handler


async def _nul_body(b: Behaviour, path: str, reader, writer) -> None:
    await _answer(writer, 500, NUL_BODY)


def _binary_body(data: bytes) -> Handler:
    async def handler(b: Behaviour, path: str, reader, writer) -> None:
        await _answer(writer, 500, data)

    return handler


async def _trickle(b: Behaviour, path: str, reader, writer) -> None:
    await _answer(writer, 200, b"ok, eventually: one byte a second, for a minute and a bit....", trickle_s=1.0)


async def _redirect_loop(b: Behaviour, path: str, reader, writer) -> None:
    await _answer(writer, 302, b"", {"Location": f"http://127.0.0.1:{b.port}{path}"})


async def _reset(b: Behaviour, path: str, reader, writer) -> None:
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _cookie(b: Behaviour, path: str, reader, writer) -> None:
    await _answer(writer, 200, b"ok", {"Set-Cookie": f"session={'x' * 8192}; Path=/"})


async def _hang(b: Behaviour, path: str, reader, writer) -> None:
    await reader.read()  # until the prober gives up and closes


async def _huge_json(b: Behaviour, path: str, reader, writer) -> None:
    padding = "x" * HUGE_STATUS_BYTES
    await _answer(writer, 200, json.dumps({"active_jobs": 1, "padding": padding}).encode())


async def _out_of_range(b: Behaviour, path: str, reader, writer) -> None:
    await _answer(writer, 200, json.dumps({"active_jobs": 2**40, "total_requests": 2**70}).encode())


# ---- what each sample must be ------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    backend: str
    taken_at: datetime
    healthy: bool
    http_status: int | None
    active_jobs: int | None
    total_requests: int | None
    load_class: str | None
    error: str | None


def _expect_down(pattern: str) -> Callable[[Behaviour, Sample], str | None]:
    """DOWN, its error matching ``pattern`` (``{url}`` is the backend's URL), with no NUL."""

    def judge(b: Behaviour, s: Sample) -> str | None:
        wanted = pattern.replace("{url}", re.escape(b.url))
        if s.healthy or not s.error or not re.match(wanted, s.error) or "\x00" in s.error:
            return f"wanted DOWN matching {wanted!r}, got {'UP' if s.healthy else 'DOWN'} with {s.error!r}"
        return None

    return judge


def _expect_up(b: Behaviour, s: Sample) -> str | None:
    """UP, with nothing to say."""
    return None if s.healthy and s.error is None else f"wanted UP, got {'UP' if s.healthy else 'DOWN'}, {s.error!r}"


def _expect_up_with_note(pattern: str) -> Callable[[Behaviour, Sample], str | None]:
    """UP, load judged from latency (no active_jobs), its error a note matching ``pattern``."""

    def judge(b: Behaviour, s: Sample) -> str | None:
        wanted = pattern.replace("{url}", re.escape(b.url))
        if not s.healthy or s.active_jobs is not None or s.load_class is None or not re.search(wanted, s.error or ""):
            return (
                f"wanted UP without active_jobs, noting {wanted!r}; got {'UP' if s.healthy else 'DOWN'}, "
                f"active_jobs {s.active_jobs}, load {s.load_class}, {s.error!r}"
            )
        return None

    return judge


EXPECTED: dict[str, Callable[[Behaviour, Sample], str | None]] = {
    "NUL body": _expect_down(r"HTTP 500 from {url}/health: out of memory\\x00 at step \\x00 7$"),
    "binary body": _expect_down(r"HTTP 500 from {url}/health: "),
    "trickle": _expect_down(rf"no answer from {{url}}/health within {TRICKLE_TIMEOUT_S} s$"),
    "impossible port": _expect_down(_EXCEPTION_NAMED + r"{url}/health"),
    "redirect loop": _expect_down(r"HTTP 302 from {url}/health"),
    "connection reset": _expect_down(_EXCEPTION_NAMED + r"{url}/health"),
    "HTTPS to plain HTTP": _expect_down(_EXCEPTION_NAMED + r"{url}/health"),
    "huge JSON body": _expect_up_with_note(r"status endpoint {url}/status .*more than"),
    "figures out of range": _expect_up_with_note(r"active_jobs 1099511627776 is out of range"),
    "cookie for the whole host": _expect_up,
    "hanging at health": _expect_down(rf"no answer from {{url}}/health within {HANG_TIMEOUT_S} s$"),
    "hanging at status": _expect_up_with_note(rf"status endpoint {{url}}/status .*no answer within {HANG_TIMEOUT_S} s"),
}


def _judge_well_behaved(b: Behaviour, s: Sample, answers: list[Answer]) -> str | None:
    """The sample says what the server answered in the same round."""
    health = [what for _, path, what in answers if path == "health"]
    status = [what for _, path, what in answers if path == "status"]
    if len(health) != 1:
        return f"its server answered {len(health)} health requests in the round"
    if health[0] == 503:
        if s.healthy or not (s.error or "").startswith(f"HTTP 503 from {b.url}/health"):
            return f"answered 503, stored {'UP' if s.healthy else 'DOWN'} with {s.error!r}"
        return None
    if not s.healthy or s.error is not None:
        return f"answered 200, stored {'UP' if s.healthy else 'DOWN'} with {s.error!r}"
    if b.status_path and (status != [s.active_jobs] or s.load_class is None):
        return f"said active_jobs {status}, stored {s.active_jobs} (load {s.load_class})"
    return None


# ---- the fault -----------------------------------------------------------------------------------


def _plan(args: argparse.Namespace, rng: random.Random) -> list[Behaviour]:
    hostile = [
        Behaviour("h-nul-body", "NUL body", _nul_body),
        Behaviour("h-binary-body", "binary body", _binary_body(rng.randbytes(2048))),
        Behaviour("h-trickle", "trickle", _trickle, timeout_s=TRICKLE_TIMEOUT_S),
        Behaviour("h-impossible-port", "impossible port", None),
        Behaviour("h-redirect-loop", "redirect loop", _redirect_loop),
        Behaviour("h-reset", "connection reset", _reset),
        Behaviour("h-https-to-http", "HTTPS to plain HTTP", _well_behaved, scheme="https", script=[True], jobs=[0]),
        Behaviour("h-huge-json", "huge JSON body", _health_then(_huge_json), status_path="/status"),
        Behaviour("h-out-of-range", "figures out of range", _health_then(_out_of_range), status_path="/status"),
        Behaviour("h-cookie", "cookie for the whole host", _cookie),
    ]
    for i in range(args.hostile_hanging):
        if i % 2:
            hostile.append(
                Behaviour(
                    f"h-hang-status-{i:02d}",
                    "hanging at status",
                    _health_then(_hang),
                    status_path="/status",
                    timeout_s=HANG_TIMEOUT_S,
                )
            )
        else:
            hostile.append(Behaviour(f"h-hang-health-{i:02d}", "hanging at health", _hang, timeout_s=HANG_TIMEOUT_S))
    well = [
        Behaviour(
            f"w-{i:03d}",
            "well-behaved",
            _well_behaved,
            status_path="/status" if i % 2 else None,
            script=[rng.random() >= 0.25 for _ in range(64)],
            jobs=[rng.randrange(7) for _ in range(64)],
        )
        for i in range(args.hostile_backends - len(hostile))
    ]
    if len(well) < 1:
        raise ValueError(f"--hostile-backends must exceed the {len(hostile)} hostile ones")
    return hostile + well


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    backends = _plan(args, rng)
    servers = Servers()
    try:
        for backend in backends:
            if backend.handler is not None:
                servers.listen(backend)
        with suite.workspace(NAME, models_package="faults.models.steady") as ws:
            shutil.copy(ROOT / "dags" / f"{HEALTH_DAG_ID}.py", ws.folder / "dags")
            for b in backends:
                ws.registry_rows(
                    "INSERT INTO detection_model_backends (name, base_url, status_path, timeout_s)"
                    " VALUES (%s, %s, %s, %s)",
                    (b.name, b.url, b.status_path, b.timeout_s),
                )
            refusal = _registration_refusal(ws, report)
            with running_airflow(ws.env, ws.folder / "airflow_logs") as airflow:
                _wait_parsed(ws, airflow)
                ws.airflow("dags", "unpause", HEALTH_DAG_ID)
                rounds = _rounds(ws, airflow, backends, args.hostile_rounds, report)
                ws.airflow("dags", "pause", HEALTH_DAG_ID)
            events_right = _events_match_samples(ws, report)
    finally:
        servers.close()
    kinds = sorted({b.kind for b in backends} - {"well-behaved"})
    report.note(
        f"{len(backends)} backends: {sum(b.kind == 'well-behaved' for b in backends)} well-behaved, "
        f"{args.hostile_hanging} hanging at the {HANG_TIMEOUT_S} s timeout, one each of "
        f"{', '.join(k for k in kinds if not k.startswith('hanging'))}"
    )
    if report.recover_s:
        report.note(
            f"{len(report.recover_s)} rounds; longest {max(report.recover_s):.1f} s, against the probes' "
            f"{PROBING_DEADLINE_S:.0f} s deadline and the task's {TASK_TIMEOUT_S:.0f} s timeout"
        )
    report.trials = rounds
    report.passed = (
        rounds == args.hostile_rounds
        and report.outcomes["every sample and state right"] == rounds
        and refusal
        and events_right
    )


def _registration_refusal(ws: Workspace, report: FaultReport) -> bool:
    """``modelreg backends add`` of the impossible port: exit 1, one line naming the port, nothing registered."""
    added = ws.modelreg("backends", "add", "h-refused", IMPOSSIBLE_URL, check=False)
    lines = added.stderr.strip().splitlines()
    registered = ws.registry_rows("SELECT count(*) FROM detection_model_backends WHERE name = 'h-refused'")[0][0]
    right = added.returncode == 1 and len(lines) == 1 and "80800" in lines[0] and not registered
    report.note(
        f"`modelreg backends add h-refused {IMPOSSIBLE_URL}`: exit {added.returncode}: "
        f"{' | '.join(lines)[:200]}" + ("" if right else " (WRONG: must refuse in one line naming the port)")
    )
    return right


def _wait_parsed(ws: Workspace, airflow: RunningAirflow) -> None:
    deadline = time.monotonic() + PARSE_TIMEOUT_S
    while not ws.meta_rows("SELECT 1 FROM dag WHERE dag_id = %s", (HEALTH_DAG_ID,)):
        airflow.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{HEALTH_DAG_ID} was not parsed within {PARSE_TIMEOUT_S} s")
        time.sleep(1)


def _rounds(ws: Workspace, airflow: RunningAirflow, backends: list[Behaviour], wanted: int, report: FaultReport) -> int:
    """Judge each round as its probe task ends, until ``wanted`` rounds; the number judged."""
    judged: set[str] = set()
    deadline = time.monotonic() + wanted * 60 + 240
    while len(judged) < wanted and time.monotonic() < deadline:
        airflow.check_alive()
        for run_id, state, start, end, tries in ws.meta_rows(
            "SELECT run_id, state, start_date, end_date, try_number FROM task_instance"
            " WHERE dag_id = %s AND task_id = %s AND state IN ('success', 'failed', 'up_for_retry')"
            " ORDER BY start_date",
            (HEALTH_DAG_ID, PROBE_TASK),
        ):
            if run_id in judged or len(judged) >= wanted:
                continue
            judged.add(run_id)
            states = _state_rows(ws)  # at once: the next round stores nothing for 20 s (its hanging probes)
            _judge_round(ws, backends, len(judged), run_id, state, start, end, tries, states, report)
        time.sleep(SAMPLE_S)
    if len(judged) < wanted:
        report.note(f"only {len(judged)} of {wanted} rounds ended within {wanted * 60 + 240} s")
    return len(judged)


def _state_rows(ws: Workspace) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in ws.registry_rows("SELECT backend, status, last_sample_at, error FROM detection_model_backend_state")
    }


def _judge_round(
    ws: Workspace,
    backends: list[Behaviour],
    number: int,
    run_id: str,
    state: str,
    start: datetime,
    end: datetime,
    tries: int,
    states: dict[str, tuple],
    report: FaultReport,
) -> None:
    took = (end - start).total_seconds()
    report.recover_s.append(took)
    problems = []
    if state != "success" or tries != 1:
        errors = task_errors(task_log_records(ws.home, HEALTH_DAG_ID, run_id, PROBE_TASK))
        problems.append(f"{PROBE_TASK} {state} at try {tries}: {errors[0][:240] if errors else 'no error logged'}")
    if took >= TASK_TIMEOUT_S:
        problems.append(f"it took {took:.1f} s, past the task's {TASK_TIMEOUT_S:.0f} s timeout")
    samples: dict[str, list[Sample]] = {}
    for row in ws.registry_rows(
        "SELECT backend, taken_at, healthy, http_status, active_jobs, total_requests, load_class, error"
        " FROM detection_model_backend_samples WHERE taken_at BETWEEN %s AND %s ORDER BY taken_at, id",
        (start, end),
    ):
        samples.setdefault(row[0], []).append(Sample(*row))
    for b in backends:
        mine = samples.get(b.name, [])
        if len(mine) != 1:
            problems.append(f"{b.name} ({b.kind}): {len(mine)} samples in the round")
            continue
        sample = mine[0]
        if b.kind == "well-behaved":
            problem = _judge_well_behaved(b, sample, [a for a in b.answers if start <= a[0] <= end])
        else:
            problem = EXPECTED[b.kind](b, sample)
        state_row = states.get(b.name)
        if problem is None and state_row != ("UP" if sample.healthy else "DOWN", sample.taken_at, sample.error):
            problem = f"its state after the round is {state_row}, not its sample's"
        if problem:
            problems.append(f"{b.name} ({b.kind}): {problem}")
        elif number == 1 and b.kind != "well-behaved" and not b.kind.startswith("hanging at status"):
            _note_example(report, b.kind, sample)
    problems += [f"{b.name} ({b.kind}): sent a cookie {b.cookies_seen} times" for b in backends if b.cookies_seen]
    outcome = "every sample and state right" if not problems else "wrong"
    report.outcomes[outcome] += 1
    for problem in problems[:6]:
        report.note(f"round {number}: {problem}")
    print(
        f"[faults] {NAME}: round {number}: {took:.1f} s, {outcome}"
        + (f" ({len(problems)} problems)" if problems else ""),
        flush=True,
    )


def _note_example(report: FaultReport, kind: str, sample: Sample) -> None:
    if kind.startswith("hanging") and any(n.startswith("stored for hanging") for n in report.notes):
        return
    label = "hanging" if kind.startswith("hanging") else kind
    report.note(f"stored for {label}: {'UP' if sample.healthy else 'DOWN'}, {(sample.error or '-')[:100]}")


def _events_match_samples(ws: Workspace, report: FaultReport) -> bool:
    """Each backend's health_probe events are exactly the transitions of its samples, in order."""
    transitions: dict[str, list[str]] = {}
    for backend, healthy in ws.registry_rows(
        "SELECT backend, healthy FROM detection_model_backend_samples ORDER BY backend, taken_at, id"
    ):
        status = "UP" if healthy else "DOWN"
        seen = transitions.setdefault(backend, [])
        if not seen or seen[-1] != status:
            seen.append(status)
    events: dict[str, list[str]] = {}
    for backend, to_status in ws.registry_rows(
        "SELECT backend, to_status FROM detection_model_backend_events WHERE action = 'health_probe'"
        " ORDER BY backend, id"
    ):
        events.setdefault(backend, []).append(to_status)
    wrong = sorted(name for name in set(transitions) | set(events) if transitions.get(name) != events.get(name))
    if wrong:
        report.note(
            f"UP/DOWN events differ from the samples' transitions for {len(wrong)} backends, e.g. "
            f"{wrong[0]}: events {events.get(wrong[0])}, samples {transitions.get(wrong[0])}"
        )
    return not wrong
