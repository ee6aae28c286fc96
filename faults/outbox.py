"""The registry's event outbox under kills: every committed change out exactly once, in order.

Setup: a registry with ``--outbox-models`` models of a few versions each; a webhook
``fault_hook`` to a receiver in this process (which checks each signature and answers 500 to
a first delivery now and then, and takes up to 0.2 s); a real scheduler running ``detection_model_registry_events``
every 5 s (LocalExecutor), its tasks ``publish`` and ``deliver_webhooks``.

Injection: a storm of ``--outbox-changes`` plain-SQL changes of versions' status and role
from four connections at once, a share of them (``--outbox-rollback-share``) rolled back after
the change was made; meanwhile a killer SIGKILLs the task process of ``publish`` or
``deliver_webhooks`` at a seeded random moment of its run (found by its task instance id in its
process title), as often as it can.

Check (independent, from the databases): in Airflow's metadata, each committed change's audit
row has exactly one asset event on ``detection_model_registry.<model_id>`` (rows lost: none;
duplicated: more than one), no asset event names an audit row that does not exist (a
rolled-back change: counted half-written), each model's events were recorded in ``seq`` order;
the receiver got every event at least once with a valid signature. Trials are the kills that
landed on a running task process; time to recover: the storm's end (plus 15 s of kills) to the
last event marked published (the run after the one that emitted it).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import shutil
import signal
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager, suppress
from typing import Any

import psutil
import psycopg2

from faults.airflow_api import AirflowApi
from faults.environment import ROOT, Suite, Workspace
from faults.report import FaultReport
from harness import webhook_receiver
from harness.airflow_processes import RunningAirflow, running_airflow

NAME = "outbox"
EVENTS_DAG = "detection_model_registry_events"
SECRET = "fault-secret"
DRAIN_TIMEOUT_S = 300
STATES = (("ACTIVE", "SHADOW"), ("ACTIVE", "CHALLENGER"), ("INACTIVE", "SHADOW"), ("ARCHIVED", "SHADOW"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outbox-changes", type=int, default=400, help=f"{NAME}: changes in the storm (default 400)")
    parser.add_argument("--outbox-models", type=int, default=4, help=f"{NAME}: models changed (default 4)")
    parser.add_argument(
        "--outbox-rollback-share", type=float, default=0.25, help=f"{NAME}: changes rolled back (default 0.25)"
    )


class Receiver:
    """A webhook receiver: checks each signature (the documented recipe), answers 500 to some first tries."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.got: Counter[int] = Counter()
        self.bad_signatures = 0
        self.refused = 0

    def handle(self, headers: Any, body: bytes) -> int:
        time.sleep(self.rng.uniform(0.0, 0.2))  # a receiver that takes its time: kills land mid-POST too
        fields = dict(part.split("=", 1) for part in headers.get("X-Registry-Signature", "").split(",") if "=" in part)
        expected = hmac.new(SECRET.encode(), fields.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
        with self.lock:
            if not hmac.compare_digest(expected, fields.get("v1", "")):
                self.bad_signatures += 1
                return 400
            event_id = json.loads(body)["event_id"]
            if event_id not in self.got and self.rng.random() < 0.1:
                self.refused += 1
                self.got[event_id] += 0
                return 500
            self.got[event_id] += 1
            return 200

    def serving(self) -> AbstractContextManager[str]:
        return webhook_receiver.serving(self.handle, path="/registry")


class Killer(threading.Thread):
    """SIGKILLs the events DAG's task processes at random moments of their runs until stopped."""

    def __init__(self, ws: Workspace, airflow: RunningAirflow, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.ws, self.airflow, self.rng = ws, airflow, rng
        self.stop = threading.Event()
        self.kills: Counter[str] = Counter()
        self.tried: set[str] = set()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            running = self.ws.meta_rows(
                "SELECT id::text, task_id FROM task_instance WHERE dag_id = %s AND state = 'running'", (EVENTS_DAG,)
            )
            for ti_id, task_id in running:
                if ti_id in self.tried:
                    continue
                self.tried.add(ti_id)  # one kill at most per try: the retry is the next try's chance
                threading.Timer(self.rng.uniform(0.0, 1.0), self._kill, (ti_id, task_id)).start()
            time.sleep(0.05)

    def _kill(self, ti_id: str, task_id: str) -> None:
        if self._killed(ti_id):
            with self.lock:
                self.kills[task_id] += 1

    def _killed(self, ti_id: str) -> bool:
        scheduler = psutil.Process(self.airflow.components["scheduler"].pid)
        for process in scheduler.children(recursive=True):
            with suppress(psutil.Error):
                title = " ".join(process.cmdline())
                if f"worker -- {ti_id}" in title and self.airflow.owns(process.pid):
                    process.send_signal(signal.SIGKILL)
                    return True
        return False


def _storm(ws: Workspace, args: argparse.Namespace, rng: random.Random, models: list[str]) -> Counter[str]:
    """The changes, from four connections at once; counts committed and rolled back."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    per_thread = args.outbox_changes // 4
    seeds = [rng.random() for _ in range(4)]

    def changer(seed: float) -> None:
        own = random.Random(seed)
        conn = ws.registry()
        conn.autocommit = False
        try:
            for _ in range(per_thread):
                model = own.choice(models)
                version = f"1.{own.randrange(3)}.0"
                status, role = own.choice(STATES)
                doomed = own.random() < args.outbox_rollback_share
                try:
                    with conn.cursor() as cur:
                        cur.execute(
                            "UPDATE detection_model_versions SET status = %s, role = %s"
                            " WHERE model_id = %s AND version = %s AND (status, role) IS DISTINCT FROM (%s, %s)",
                            (status, role, model, version, status, role),
                        )
                        changed = cur.rowcount
                    if doomed:
                        conn.rollback()
                    else:
                        conn.commit()
                except psycopg2.Error:
                    conn.rollback()
                    changed, doomed = 0, False
                with lock:
                    counts["rolled back" if doomed else "committed"] += changed
                time.sleep(own.uniform(0.1, 0.6))
        finally:
            conn.close()

    threads = [threading.Thread(target=changer, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def _backlog(ws: Workspace) -> tuple[int, int]:
    """(events not yet marked published, deliveries not yet delivered)."""
    ((unpublished, undelivered),) = ws.registry_rows(
        "SELECT (SELECT count(*) FROM detection_model_events WHERE published_at IS NULL),"
        " (SELECT count(*) FROM detection_model_webhook_deliveries WHERE status <> 'DELIVERED')"
    )
    return unpublished, undelivered


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    receiver = Receiver(random.Random(rng.random()))
    models = [f"writer_{n}" for n in range(1, args.outbox_models + 1)]
    settings = {
        "AIRFLOW__MODEL_REGISTRY__EVENTS_INTERVAL_SECONDS": "5",
        "AIRFLOW__MODEL_REGISTRY__WEBHOOK_TIMEOUT_SECONDS": "2",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "WEBHOOK_SECRET_FAULT": SECRET,
    }
    workspace = suite.workspace(NAME, models_package="faults.models.steady", settings=settings)
    with receiver.serving() as url, workspace as ws:
        shutil.copy(ROOT / "dags" / "detection_model_registry_events.py", ws.folder / "dags")
        ws.modelreg("webhooks", "add", "fault_hook", url, "--secret-env", "WEBHOOK_SECRET_FAULT")
        for model in models:
            for n in range(3):
                ws.registry_rows(
                    "INSERT INTO detection_model_versions (model_id, version, status, role)"
                    " VALUES (%s, %s, 'ACTIVE', 'SHADOW') RETURNING id",
                    (model, f"1.{n}.0"),
                )
        with running_airflow(ws.env, ws.folder / "logs") as airflow:
            api = AirflowApi(airflow.base_url)
            _unpause_when_parsed(api)
            killer = Killer(ws, airflow, random.Random(rng.random()))
            killer.start()
            counts = _storm(ws, args, rng, models)
            storm_end = time.monotonic()
            time.sleep(15)  # kills go on a little after the storm: the last events are in flight
            killer.stop.set()
            killer.join()
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            published_after: float | None = None
            while (backlog := _backlog(ws)) != (0, 0) and time.monotonic() < deadline:
                if backlog[0] == 0 and published_after is None:
                    published_after = time.monotonic() - storm_end
                airflow.check_alive()
                time.sleep(1)
            drained = _backlog(ws) == (0, 0)
            delivered_after = time.monotonic() - storm_end
            report.recover_s.append(published_after if published_after is not None else delivered_after)
        report.note(
            f"after the storm: every event marked published in {report.recover_s[0]:.0f} s (the time to "
            f"recover), every webhook delivered in {delivered_after:.0f} s (retries 30 s apart, a killed "
            "sender's lease 32 s)"
        )
        _judge(ws, report, receiver, killer, counts, drained)


def _unpause_when_parsed(api: AirflowApi) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            api._call("PATCH", f"/api/v2/dags/{EVENTS_DAG}", {"is_paused": False})
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _judge(
    ws: Workspace, report: FaultReport, receiver: Receiver, killer: Killer, counts: Counter[str], drained: bool
) -> None:
    audit = {row[0]: row[1] for row in ws.registry_rows("SELECT id, model_id FROM detection_model_transitions")}
    events = ws.registry_rows("SELECT id FROM detection_model_events")
    asset_events = ws.meta_rows(
        "SELECT e.id, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
        " WHERE a.name LIKE 'detection\\_model\\_registry.%%' ORDER BY e.id"
    )
    extras = [json.loads(extra) if isinstance(extra, str) else extra for _id, extra in asset_events]
    per_audit = Counter(extra["audit_id"] for extra in extras)
    report.rows_lost = sum(1 for audit_id in audit if per_audit[audit_id] == 0)
    report.rows_duplicated = sum(n - 1 for n in per_audit.values() if n > 1)
    report.half_written = sum(n for audit_id, n in per_audit.items() if audit_id not in audit)  # rolled back
    out_of_order = 0
    last: dict[str, int] = {}
    for extra in extras:
        if extra["seq"] <= last.get(extra["model_id"], 0):
            out_of_order += 1
        last[extra["model_id"]] = extra["seq"]
    missing_deliveries = sum(1 for (event_id,) in events if receiver.got[event_id] == 0)
    report.trials = sum(killer.kills.values())
    report.outcomes.update({f"killed {task}": n for task, n in killer.kills.items()})
    report.note(
        f"{counts['committed']} changes committed, {counts['rolled back']} rolled back; {len(audit)} audit rows, "
        f"{len(asset_events)} asset events, {out_of_order} out of their model's order"
    )
    report.note(
        f"webhook: {sum(1 for n in receiver.got.values() if n)} of {len(events)} events received, "
        f"{sum(n - 1 for n in receiver.got.values() if n > 1)} again (deduped by event_id), "
        f"{receiver.refused} first tries refused with 500, {receiver.bad_signatures} bad signatures"
    )
    if not drained:
        report.note(f"VIOLATION: not everything was out {DRAIN_TIMEOUT_S} s after the storm")
    report.passed = (
        report.data_intact
        and drained
        and out_of_order == 0
        and missing_deliveries == 0
        and receiver.bad_signatures == 0
        and report.trials > 0
        and len(asset_events) == len(audit)
    )
