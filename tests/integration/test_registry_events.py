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
from registry_helpers import ROOT, modelreg, person

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
    monkeypatch.setenv("WEBHOOK_SECRET_ALERTS", "s3cr3t")
    with receiver() as (url, got):
        code, _, err = modelreg(
            capsys, "webhooks", "add", "alerts", url, "--events", "state", "--secret-env", "WEBHOOK_SECRET_ALERTS"
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
    monkeypatch.setenv("WEBHOOK_SECRET_HOOK", "x")
    with receiver(status=503) as (down_url, _), receiver(delay_s=3.0) as (slow_url, _), receiver() as (url, got):
        for name, target in (("down", down_url), ("slow", slow_url), ("fine", url)):
            assert modelreg(capsys, "webhooks", "add", name, target, "--secret-env", "WEBHOOK_SECRET_HOOK")[0] == 0
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
def dripping_receiver(
    head: bytes = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000000\r\n\r\n",
) -> Iterator[str]:
    """A hostile receiver: answers each request with ``head`` then one byte every 0.2 s, for ever
    (by default a 100 MB body; with a bare status line as ``head``, headers that never end)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with suppress(OSError), conn:
            conn.recv(65536)
            conn.sendall(head)
            while not stop.wait(0.2):
                conn.sendall(b"x")

    def serve() -> None:
        with suppress(OSError):
            while not stop.is_set():
                threading.Thread(target=drip, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        listener.close()


def test_a_receiver_that_drips_a_huge_answer_costs_one_timeout_and_a_bounded_error(registry, capsys, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET_HOOK", "x")
    with dripping_receiver() as url:
        assert modelreg(capsys, "webhooks", "add", "drip", url, "--secret-env", "WEBHOOK_SECRET_HOOK")[0] == 0
        registry.add_version("loner", "1.0.0")
        started = time.monotonic()
        assert _send(timeout_s=1.0) == {"delivered": 0, "failed": 1, "gave_up": 0}
        assert time.monotonic() - started < 4  # each chunk comes within the read timeout: only the total stops it
    ((status, error),) = registry.query("SELECT status, last_error FROM detection_model_webhook_deliveries")
    assert status == "PENDING" and error.startswith("TimeoutError") and len(error) < 400


def test_a_receiver_that_drips_its_headers_holds_the_sender_no_longer_than_its_budget(registry, capsys, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET_HOOK", "x")
    with dripping_receiver(head=b"HTTP/1.1 200 OK\r\nX-Pad: ") as url:
        assert modelreg(capsys, "webhooks", "add", "drip", url, "--secret-env", "WEBHOOK_SECRET_HOOK")[0] == 0
        for version in ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"):
            registry.add_version("loner", version, "SHADOW")
        settings = load_settings()
        policy = SendPolicy(timeout_s=1.0, retry_window=timedelta(hours=2), budget_s=1.5)
        started = time.monotonic()

        counts = send_due(lambda: registry_connection(settings), policy)

        elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed  # the budget, plus the one POST under way when it ran out
    assert counts == {"delivered": 0, "failed": 2, "gave_up": 0}
    rows = registry.query(
        "SELECT attempts, last_error, next_attempt_at <= now()"
        " FROM detection_model_webhook_deliveries ORDER BY event_id"
    )
    assert [r[0] for r in rows] == [1, 1, 0, 0, 0]
    assert all(r[1].startswith("TimeoutError") for r in rows[:2])
    assert all(r[1] is None and r[2] for r in rows[2:])  # not tried: due at the next run, no attempt spent


def _legacy_webhook(registry, name: str, url: str, secret_env: str) -> None:
    """A webhook row from before migration 0012's rules: written without them, then the migration
    applied over it (its constraints are NOT VALID, so the row stays)."""
    migration = (ROOT / "include/models_core/store/migrations/0012_webhook_bounds.sql").read_text()
    registry.execute(
        "ALTER TABLE detection_model_webhooks DROP CONSTRAINT detection_model_webhooks_secret_env_namespace,"
        " DROP CONSTRAINT detection_model_webhooks_url_without_credentials;"
        " INSERT INTO detection_model_webhooks (name, url, secret_env) VALUES (%s, %s, %s);"
        + migration.replace("%", "%%"),
        (name, url, secret_env),
    )


def test_a_webhook_signs_only_with_a_webhook_secret_variable_whatever_door_wrote_it(registry, capsys, monkeypatch):
    stolen = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    monkeypatch.setenv(stolen, "postgresql://airflow:hunter2@db/airflow")
    with receiver() as (url, got):
        code, _, err = modelreg(capsys, "webhooks", "add", "thief", url, "--secret-env", stolen)
        assert code != 0 and "secret_env" in err
        with pytest.raises(psycopg2.errors.CheckViolation, match="secret_env_namespace"):
            _insert_webhook(registry, "thief", url, stolen)
        _legacy_webhook(registry, "old", url, stolen)
        registry.add_version("loner", "1.0.0")

        assert _send() == {"delivered": 0, "failed": 1, "gave_up": 0}
    assert got == []  # nothing signed with the database's password
    ((error,),) = registry.query("SELECT last_error FROM detection_model_webhook_deliveries")
    assert stolen in error and "not a WEBHOOK_SECRET_* one" in error


def _insert_webhook(registry, name: str, url: str, secret_env: str = "WEBHOOK_SECRET_HOOK") -> None:
    """A webhook written by hand, past the CLI and the API."""
    registry.execute(
        "INSERT INTO detection_model_webhooks (name, url, secret_env) VALUES (%s, %s, %s)", (name, url, secret_env)
    )


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://admin:pw@127.0.0.1:9/hook", "credentials"),
        ("http://169.254.169.254/latest/meta-data/", "link-local, metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local, metadata"),
        ("http://[fd00:ec2::254]/", "link-local, metadata"),
        ("http://127.0.0.1:99999/hook", "does not parse"),
        ("http://0:9/hook", "link-local, metadata"),  # the resolver reads 0 as 0.0.0.0
        ("http://2852039166/", "link-local, metadata"),  # ... and these as 169.254.169.254
        ("http://0xA9FEA9FE/", "link-local, metadata"),
        ("http://127.0.0.1:9/\x7fhook", "non-printable"),  # httpx refuses it: it stopped every delivery
        ("http://\uff11\uff12\uff17.0.0.1:9/hook", "non-ASCII"),
    ],
)
def test_a_webhook_url_that_is_no_receivers_is_refused_at_every_door(registry, capsys, monkeypatch, url, refusal):
    monkeypatch.setenv("WEBHOOK_SECRET_HOOK", "x")
    code, _, err = modelreg(capsys, "webhooks", "add", "bad", url, "--secret-env", "WEBHOOK_SECRET_HOOK")
    assert code != 0 and refusal in err
    assert registry.query("SELECT count(*) FROM detection_model_webhooks") == [(0,)]
    if refusal == "credentials":
        with pytest.raises(psycopg2.errors.CheckViolation, match="url_without_credentials"):
            _insert_webhook(registry, "bad", url)
        _legacy_webhook(registry, "bad", url, "WEBHOOK_SECRET_HOOK")
    else:  # the schema does not judge addresses: the sender does, before each POST
        _insert_webhook(registry, "bad", url)
    registry.add_version("loner", "1.0.0")

    assert _send(timeout_s=1.0) == {"delivered": 0, "failed": 1, "gave_up": 0}
    ((error,),) = registry.query("SELECT last_error FROM detection_model_webhook_deliveries")
    assert error.startswith("not sent:") and refusal in error, error


@contextmanager
def silent_receivers(count: int) -> Iterator[list[str]]:
    """Receivers that accept a connection and never answer."""
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    try:
        yield [f"http://127.0.0.1:{listener.getsockname()[1]}/hook" for listener in listeners]
    finally:
        for listener in listeners:
            listener.close()


def test_a_senders_run_ends_within_its_budget_however_many_receivers_hang(registry, capsys, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET_HOOK", "x")
    with silent_receivers(17) as urls, receiver() as (good, got):  # 17 hung: three rounds of 8 threads
        for number, url in enumerate([*urls, good]):
            assert (
                modelreg(capsys, "webhooks", "add", f"h{number:02d}", url, "--secret-env", "WEBHOOK_SECRET_HOOK")[0]
                == 0
            )
        registry.add_version("loner", "1.0.0")
        settings = load_settings()
        policy = SendPolicy(timeout_s=1.0, retry_window=timedelta(hours=2), budget_s=1.5)
        started = time.monotonic()

        counts = send_due(lambda: registry_connection(settings), policy)

        elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed  # the run's budget, plus the POSTs under way when it ran out
    assert counts["failed"] <= 16 and counts["delivered"] <= 1
    untried = registry.query(
        "SELECT count(*) FROM detection_model_webhook_deliveries"
        " WHERE status = 'PENDING' AND attempts = 0 AND next_attempt_at <= now()"
    )[0][0]
    assert untried + sum(counts.values()) == 18  # each delivery tried once, or left due as not tried


def test_a_reader_who_may_not_manage_webhooks_reads_an_errors_kind_only(registry, capsys, monkeypatch, airflow_api):
    monkeypatch.setenv("WEBHOOK_SECRET_HOOK", "x")
    with receiver(status=404) as (url, _):
        secret_url = url + "/T0/s3cr3tpath"
        assert modelreg(capsys, "webhooks", "add", "chat", secret_url, "--secret-env", "WEBHOOK_SECRET_HOOK")[0] == 0
        registry.add_version("loner", "1.0.0")
        _send()
    registry.execute("UPDATE detection_model_webhook_deliveries SET last_error = last_error || %s", (secret_url,))

    def last_error(user: str) -> str:
        answer = airflow_api.client.get("/model-registry/api/webhooks/deliveries", headers=airflow_api.headers(user))
        assert answer.status_code == 200, answer.text
        return answer.json()["deliveries"][0]["last_error"]

    assert "s3cr3tpath" in last_error("alice")
    assert last_error("victor") == last_error("uma") == "HTTP 404"


def test_retries_keep_going_for_at_least_an_hour():
    waited = 0.0
    attempts = 0
    while waited < 3600:
        attempts += 1
        waited += backoff_s(attempts)
    assert backoff_s(1) == 30 and backoff_s(20) == 900
    assert 5 <= attempts <= 10  # an hour is bridged by a handful of tries, not thousands
    assert load_settings().webhook_retry >= timedelta(hours=1)
