"""One hostile backend among well-behaved ones: every backend still gets its sample (issue 24).

Each test registers a backend that misbehaves between two well-behaved ones (``a-first`` is
probed and stored before it, ``z-last`` after it), runs a real round, and checks that the
hostile one is DOWN (or UP with a note) saying what it did, while the others are UP, stored
in the same round. The backends are real HTTP servers (:mod:`fake_backend`), registered with
plain SQL as an operator may (the table's CHECKs let through rows registration now refuses).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from fake_backend import FakeBackend
from models_core.backends.catalog import MAX_TIMEOUT_S
from models_core.backends.health_check import check_backends
from models_core.backends.health_dag import build_health_dag
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def neighbours(registry):
    """``a-first`` and ``z-last``: well-behaved backends on either side of the hostile one."""
    servers = [FakeBackend(), FakeBackend()]
    for name, server in zip(("a-first", "z-last"), servers):
        _register(registry, name, server.url)
    yield servers
    for server in servers:
        server.close()


@pytest.fixture
def hostile():
    server = FakeBackend()
    yield server
    server.close()


def _register(registry, name: str, url: str, status_path: str | None = None, timeout_s: float = 5) -> None:
    registry.execute(
        "INSERT INTO detection_model_backends (name, base_url, status_path, timeout_s) VALUES (%s, %s, %s, %s)",
        (name, url, status_path, timeout_s),
    )


def _round() -> float:
    """One real run of the health DAG; its length in seconds."""
    started = time.monotonic()
    run = build_health_dag().test(logical_date=START)
    assert str(run.state) == "success", run.state
    return time.monotonic() - started


def _states(registry) -> dict[str, tuple]:
    """Each backend's status, error, active_jobs and load class, and its sample count."""
    rows = registry.query(
        "SELECT s.backend, s.status, s.error, s.active_jobs, s.load_class, count(m.id)"
        " FROM detection_model_backend_state s"
        " LEFT JOIN detection_model_backend_samples m ON m.backend = s.backend"
        " GROUP BY s.backend, s.status, s.error, s.active_jobs, s.load_class"
    )
    return {row[0]: row[1:] for row in rows}


def _neighbours_up(states: dict[str, tuple]) -> None:
    assert states["a-first"] == ("UP", None, None, "idle", 1)
    assert states["z-last"] == ("UP", None, None, "idle", 1)


def test_an_error_body_with_a_nul_byte_is_stored_escaped_and_the_others_still_get_their_samples(
    registry, neighbours, hostile
):
    hostile.health_code = 500
    hostile.health_body = b"out of memory\x00\xff\xfe at step \x00 7"
    _register(registry, "m-nul", hostile.url)

    _round()

    states = _states(registry)
    _neighbours_up(states)
    assert states["m-nul"] == (
        "DOWN",
        f"HTTP 500 from {hostile.url}/health: out of memory\\x00\ufffd\ufffd at step \\x00 7",
        None,
        None,
        1,
    )


def test_modelreg_backends_add_refuses_an_impossible_port_in_one_line(registry):
    added = subprocess.run(
        [sys.executable, "-m", "models_core", "backends", "add", "gpu-x", "http://127.0.0.1:80800"],
        capture_output=True,
        text=True,
    )

    assert added.returncode == 1
    assert added.stderr.strip() == (
        "modelreg backends: backend gpu-x: URL 'http://127.0.0.1:80800' has port 80800; a port is a number of 1-65535"
    )
    assert registry.query("SELECT count(*) FROM detection_model_backends") == [(0,)]


def test_a_row_with_an_impossible_port_is_down_naming_the_exception_and_the_others_are_stored(registry, neighbours):
    # Registered before registration refused such a URL, or with plain SQL.
    _register(registry, "m-port", "http://127.0.0.1:80800")

    _round()

    states = _states(registry)
    _neighbours_up(states)
    status, error, *rest = states["m-port"]
    assert (status, rest) == ("DOWN", [None, None, 1])
    assert error.startswith("OverflowError on http://127.0.0.1:80800/health: "), error


def test_a_backend_trickling_its_answer_a_byte_a_second_is_down_within_its_timeout(registry, neighbours, hostile):
    hostile.trickle_s = 1.0
    hostile.health_body = b"ok, eventually, at one byte a second"
    _register(registry, "m-trickle", hostile.url, timeout_s=2)

    took = _round()

    states = _states(registry)
    _neighbours_up(states)
    assert states["m-trickle"] == ("DOWN", f"no answer from {hostile.url}/health within 2 s", None, None, 1)
    assert took < 15, took  # the whole body would take 36 s


def test_probes_unfinished_at_the_rounds_deadline_are_down_and_the_finished_ones_are_stored(
    registry, neighbours, hostile
):
    hostile.delay_s = 6
    _register(registry, "m-slow", hostile.url, timeout_s=10)
    settings = load_settings()

    with registry_connection(settings) as conn:
        started = time.monotonic()
        results = check_backends(conn, settings, deadline_s=1.5)
        took = time.monotonic() - started

    assert took < 4, took
    assert results["m-slow"]["stored"] and results["a-first"]["stored"] and results["z-last"]["stored"]
    states = _states(registry)
    _neighbours_up(states)
    assert states["m-slow"] == (
        "DOWN",
        f"no answer from {hostile.url}/health within the round's deadline of 1.5 s",
        None,
        None,
        1,
    )


def test_a_rounds_probes_end_well_before_its_task_is_timed_out_even_at_the_longest_backend_timeout():
    from models_core.backends.health_check import probing_deadline_s

    settings = load_settings()
    timeout = build_health_dag(settings).get_task("probe_backends").execution_timeout.total_seconds()

    assert timeout == 60  # the default one-minute health schedule
    assert 2 * MAX_TIMEOUT_S < probing_deadline_s(settings) <= timeout - 10


def test_status_figures_too_large_for_their_columns_are_dropped_with_a_note_and_the_backend_stays_up(
    registry, neighbours
):
    servers = {"m-jobs": FakeBackend(), "m-total": FakeBackend()}
    try:
        servers["m-jobs"].status_body = json.dumps({"active_jobs": 2**40, "total_requests": 5})
        servers["m-total"].status_body = json.dumps({"active_jobs": 2, "total_requests": 2**70})
        for name, server in servers.items():
            _register(registry, name, server.url, status_path="/status")

        _round()
    finally:
        for server in servers.values():
            server.close()

    states = _states(registry)
    _neighbours_up(states)
    assert states["m-jobs"] == (
        "UP",
        "active_jobs 1099511627776 is out of range (0 to 2147483647), not stored; load judged from latency",
        None,
        "idle",
        1,
    )
    assert states["m-total"] == (
        "UP",
        "total_requests 1180591620717411303424 is out of range (0 to 9223372036854775807), not stored",
        2,
        "busy",
        1,
    )
    assert registry.query(
        "SELECT backend, total_requests FROM detection_model_backend_samples WHERE backend LIKE 'm-%' ORDER BY backend"
    ) == [("m-jobs", 5), ("m-total", None)]


def test_each_hostile_answer_costs_only_its_own_backend(registry, neighbours):
    """A redirect loop, a reset, HTTPS to a plain server, a binary body, a huge status body, all in one round."""
    servers = {name: FakeBackend() for name in ("m-binary", "m-huge", "m-https", "m-redirect", "m-reset")}
    try:
        servers["m-binary"].health_code = 502
        servers["m-binary"].health_body = bytes(range(256)) * 64
        servers["m-huge"].status_body = json.dumps({"active_jobs": 1, "padding": "x" * 5_000_000})
        servers["m-redirect"].health_code = 302
        servers["m-reset"].reset = True
        for name, server in servers.items():
            url = server.url.replace("http://", "https://") if name == "m-https" else server.url
            _register(registry, name, url, status_path="/status" if name == "m-huge" else None, timeout_s=3)

        took = _round()
    finally:
        for server in servers.values():
            server.close()

    states = _states(registry)
    _neighbours_up(states)
    assert took < 15, took
    binary = states["m-binary"]
    assert binary[0] == "DOWN" and binary[1].startswith(f"HTTP 502 from {servers['m-binary'].url}/health: ")
    assert len(binary[1]) <= 300 and "\x00" not in binary[1]
    assert states["m-huge"] == (
        "UP",
        f"status endpoint {servers['m-huge'].url}/status answered more than 65536 bytes; load judged from latency",
        None,
        "idle",
        1,
    )
    https = states["m-https"]
    assert https[0] == "DOWN" and https[1].startswith(f"ConnectError on https://{servers['m-https'].url[7:]}/health")
    assert states["m-redirect"][:2] == ("DOWN", f"HTTP 302 from {servers['m-redirect'].url}/health: ok")
    reset = states["m-reset"]
    assert reset[0] == "DOWN" and reset[1].startswith(("RemoteProtocolError on", "ReadError on")), reset


def test_a_cookie_one_backend_sets_is_never_sent_to_another_on_the_same_host(registry, neighbours, hostile):
    hostile.set_cookie = "session=" + "x" * 3000 + "; Path=/"
    _register(registry, "m-cookie", hostile.url)
    later = FakeBackend()  # its status request comes after the cookie was set
    try:
        later.delay_s, later.active_jobs = 0.5, 0
        _register(registry, "m-later", later.url, status_path="/status")

        _round()
    finally:
        later.close()

    assert later.requests == ["/health", "/status"]
    assert {cookie for server in (*neighbours, hostile, later) for cookie in server.cookies} == {None}
