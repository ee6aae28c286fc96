"""Issue 27: every registry change is one event (transactional outbox), out exactly once, in order.

The outbox is written by the trigger on the audit table, so every door is covered;
``test_governance_side_doors`` checks the same invariant after each of its doors. The
publisher's protocol is run against the real database with Airflow's side (whether a
publisher try succeeded, which is when Airflow records its asset events) given per try.
Webhooks are POSTed to real HTTP servers on localhost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from email.message import Message
from typing import Any

import psycopg2
import pytest
from registry_helpers import modelreg, person

from harness import webhook_receiver
from models_core.events import outbox
from models_core.events.webhooks import SIGNATURE_HEADER, SendPolicy, backoff_s, send_due
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

DAG_ID = "detection_model_registry_events"


def every_audit_row_has_one_event(registry) -> None:
    """The outbox invariant: one event per audit row, each model's seq 1..n without a gap."""
    missing = registry.query(
        "SELECT t.id, t.action FROM detection_model_transitions t"
        " LEFT JOIN detection_model_events e ON e.audit_id = t.id WHERE e.id IS NULL"
    )
    assert missing == []
    assert (
        registry.query("SELECT count(*) FROM detection_model_events")[0][0]
        == (registry.query("SELECT count(*) FROM detection_model_transitions")[0][0])
    )
    gaps = registry.query(
        "SELECT model_id FROM detection_model_events GROUP BY model_id"
        " HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)"
    )
    assert gaps == []


def _events(registry, model_id: str) -> list[tuple]:
    return registry.query(
        "SELECT seq, kind, payload->>'action', payload->>'version', payload->>'to_status', payload->>'to_role'"
        " FROM detection_model_events WHERE model_id = %s ORDER BY seq",
        (model_id,),
    )


def test_every_committed_change_is_one_event_of_its_model_in_order(registry, capsys):
    assert modelreg(capsys, "register", "loner", "1.0.0")[0] == 0
    assert modelreg(capsys, "promote", "loner", "1.0.0", "--force", "--reason", "first")[0] == 0
    assert modelreg(capsys, "register", "loner", "1.1.0")[0] == 0
    assert modelreg(capsys, "activate", "loner", "1.1.0", "--role", "SHADOW")[0] == 0
    assert modelreg(capsys, "gates", "loner", "--min-cycles", "0", "--reason", "no history yet")[0] == 0
    registry.execute("UPDATE detection_model_versions SET status = 'INACTIVE' WHERE version = '1.1.0'")  # plain SQL

    assert _events(registry, "loner") == [
        (1, "state", "register", "1.0.0", "DRAFT", "SHADOW"),
        (2, "state", "promote", "1.0.0", "ACTIVE", "PRIMARY"),
        (3, "state", "register", "1.1.0", "DRAFT", "SHADOW"),
        (4, "state", "activate", "1.1.0", "ACTIVE", "SHADOW"),
        (5, "guards", "gates", None, None, None),
        (6, "state", "sql_update", "1.1.0", "INACTIVE", "SHADOW"),
    ]
    payload = registry.query("SELECT payload FROM detection_model_events WHERE model_id = 'loner' AND seq = 2")[0][0]
    assert payload["reason"] == "first" and payload["basis"] == "forced" and payload["actor"] == registry.db_user
    assert payload["from_status"] == "DRAFT" and payload["audit_id"] > 0
    every_audit_row_has_one_event(registry)


def test_a_change_that_rolls_back_has_no_event_and_leaves_no_gap(registry):
    registry.add_version("loner", "1.0.0")
    settings = load_settings()
    with registry_connection(settings) as conn:
        with conn.cursor() as cur:
            cur.execute("UPDATE detection_model_versions SET status = 'INACTIVE' WHERE model_id = 'loner'")
        conn.rollback()
    with pytest.raises(psycopg2.errors.RaiseException):  # a change refused inside its transaction
        registry.execute(
            "UPDATE detection_model_versions SET status = 'ARCHIVED' WHERE model_id = 'loner';"
            " DO $$ BEGIN RAISE EXCEPTION 'refused after the change'; END $$"
        )
    ModelRegistry(registry.conn, person("alice")).lifecycle.deactivate("loner", "1.0.0", "retired", force=True)

    assert [(seq, action, status) for seq, _k, action, _v, status, _r in _events(registry, "loner")] == [
        (1, "sql_insert", "ACTIVE"),
        (2, "deactivate", "INACTIVE"),
    ]
    every_audit_row_has_one_event(registry)


class FakeAirflow:
    """Airflow's side of the publisher: the asset events a try emitted exist iff the try succeeded."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}  # run_id -> the publish task's state
        self.asset_events: list[dict[str, Any]] = []

    def state(self, dag_id: str, run_id: str) -> str | None:
        assert dag_id == DAG_ID
        return self.states.get(run_id)

    def run(self, conn, run_id: str, try_number: int = 1, *, dies: str | None = None) -> None:
        """One publisher try; ``dies`` before the claim, after the claim or after Airflow recorded success."""
        me = outbox.Claim(DAG_ID, run_id, try_number)
        self.states[run_id] = "running"
        outbox.settle(conn, me, self.state)
        if dies == "before_claim":
            self.states[run_id] = "failed"
            return
        events = outbox.claim(conn, me, limit=3)
        if dies == "after_claim":  # killed before the task returned: Airflow records nothing
            self.states[run_id] = "up_for_retry"
            return
        self.asset_events += [e.extra for e in events]  # recorded with the success, one transaction
        self.states[run_id] = "success"  # ``after_success``: killed before any mark; nothing more to do


def test_each_event_becomes_one_asset_event_in_order_whatever_try_is_killed(registry):
    for n in range(4):
        registry.add_version("a", f"1.{n}.0", "SHADOW")
        registry.add_version("b", f"1.{n}.0", "SHADOW")
    airflow = FakeAirflow()
    conn = registry.conn
    airflow.run(conn, "r1", dies="after_claim")
    airflow.run(conn, "r1", try_number=2, dies="after_success")
    registry.add_version("a", "2.0.0", "SHADOW")
    airflow.run(conn, "r2", dies="before_claim")
    airflow.run(conn, "r3", dies="after_claim")
    for run in range(4, 10):
        airflow.run(conn, f"r{run}")

    published = registry.query("SELECT count(*) FROM detection_model_events WHERE published_at IS NOT NULL")[0][0]
    assert published == 9
    ids = [e["event_id"] for e in airflow.asset_events]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 9
    for model in ("a", "b"):
        seqs = [e["seq"] for e in airflow.asset_events if e["model_id"] == model]
        assert seqs == list(range(1, len(seqs) + 1))


def test_a_publisher_try_still_running_blocks_the_next_from_claiming(registry):
    registry.add_version("a", "1.0.0", "SHADOW")
    airflow = FakeAirflow()
    me = outbox.Claim(DAG_ID, "r1", 1)
    outbox.claim(registry.conn, me)
    airflow.states["r1"] = "running"

    with pytest.raises(outbox.UnsettledClaim, match="r1/1 is running"):
        outbox.settle(registry.conn, outbox.Claim(DAG_ID, "r2", 1), airflow.state)


# ---- webhooks ----------------------------------------------------------------------------------


@contextmanager
def receiver(status: int = 200, delay_s: float = 0.0) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP receiver on localhost; yields its URL and the requests it got."""
    got: list[dict[str, Any]] = []

    def handle(headers: Message, body: bytes) -> int:
        got.append({"headers": dict(headers), "body": body})
        time.sleep(delay_s)
        return status

    with webhook_receiver.serving(handle) as url:
        yield url, got


def _send(timeout_s: float = 2.0) -> dict[str, int]:
    settings = load_settings()
    policy = SendPolicy(timeout_s=timeout_s, retry_window=timedelta(hours=2), budget_s=10)
    return send_due(lambda: registry_connection(settings), policy)


def test_a_delivered_signature_verifies_with_the_documented_recipe(registry, capsys, monkeypatch):
    monkeypatch.setenv("ALERTS_HOOK_SECRET", "s3cr3t")
    with receiver() as (url, got):
        code, _, err = modelreg(
            capsys, "webhooks", "add", "alerts", url, "--events", "state", "--secret-env", "ALERTS_HOOK_SECRET"
        )
        assert code == 0, err
        registry.add_version("loner", "1.0.0")
        registry.execute("INSERT INTO detection_model_quality_gates (model_id, min_cycles) VALUES ('loner', 0)")

        assert _send() == {"delivered": 1, "failed": 0, "gave_up": 0}

    (request,) = got  # the gates row is a guard change: not subscribed
    # The recipe of docs/how-to/registry-events.md, as a receiver writes it:
    header = request["headers"][SIGNATURE_HEADER]
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(b"s3cr3t", fields["t"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    assert abs(time.time() - int(fields["t"])) < 300
    event = json.loads(request["body"])
    assert event["model_id"] == "loner" and event["kind"] == "state" and event["to_status"] == "ACTIVE"
    assert request["headers"]["X-Registry-Event-Id"] == str(event["event_id"])
    code, (logged,), _ = modelreg(capsys, "webhooks", "deliveries", "alerts")
    assert (logged["status"], logged["attempts"], logged["last_http_status"]) == ("DELIVERED", 1, 200)
    assert logged["latency_ms"] is not None and logged["event_id"] == event["event_id"]


def test_a_receiver_down_is_retried_later_and_never_delays_another(registry, capsys, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "x")
    with receiver(status=503) as (down_url, _), receiver(delay_s=3.0) as (slow_url, _), receiver() as (url, got):
        for name, target in (("down", down_url), ("slow", slow_url), ("fine", url)):
            assert modelreg(capsys, "webhooks", "add", name, target, "--secret-env", "HOOK_SECRET")[0] == 0
        registry.add_version("loner", "1.0.0")
        started = time.monotonic()

        counts = _send(timeout_s=1.0)

        assert time.monotonic() - started < 5
    assert counts == {"delivered": 1, "failed": 2, "gave_up": 0} and len(got) == 1
    rows = registry.query(
        "SELECT webhook, status, attempts, last_error, next_attempt_at - now() FROM detection_model_webhook_deliveries"
        " ORDER BY webhook"
    )
    (down, fine, slow) = rows
    assert down[:3] == ("down", "PENDING", 1) and down[3].startswith("HTTP 503")
    assert timedelta(seconds=20) < down[4] <= timedelta(seconds=30)
    assert fine[:3] == ("fine", "DELIVERED", 1)
    assert slow[:2] == ("slow", "PENDING") and "Timeout" in slow[3]
    assert _send() == {"delivered": 0, "failed": 0, "gave_up": 0}  # not due yet: the backoff holds


@contextmanager
def dripping_receiver() -> Iterator[str]:
    """A hostile receiver: answers 500 with a 100 MB body, one byte every 0.2 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000000\r\n\r\n")
                while not stop.wait(0.2):
                    conn.sendall(b"x")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        listener.close()


def test_a_receiver_that_drips_a_huge_answer_costs_one_timeout_and_a_bounded_error(registry, capsys, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "x")
    with dripping_receiver() as url:
        assert modelreg(capsys, "webhooks", "add", "drip", url, "--secret-env", "HOOK_SECRET")[0] == 0
        registry.add_version("loner", "1.0.0")
        started = time.monotonic()
        assert _send(timeout_s=1.0) == {"delivered": 0, "failed": 1, "gave_up": 0}
        assert time.monotonic() - started < 4  # each chunk comes within the read timeout: only the total stops it
    ((status, error),) = registry.query("SELECT status, last_error FROM detection_model_webhook_deliveries")
    assert status == "PENDING" and error.startswith("TimeoutError") and len(error) < 400


def test_retries_keep_going_for_at_least_an_hour():
    waited = 0.0
    attempts = 0
    while waited < 3600:
        attempts += 1
        waited += backoff_s(attempts)
    assert backoff_s(1) == 30 and backoff_s(20) == 900
    assert 5 <= attempts <= 10  # an hour is bridged by a handful of tries, not thousands
    assert load_settings().webhook_retry >= timedelta(hours=1)
