"""The registry unreachable or hung while the DAG processor parses the cycle DAG.

Setup: the Airflow processes reach the registry through a TCP proxy the fault controls
(:mod:`faults.proxy`); the DAG processor re-parses every 2 s and may store a changed DAG
every 2 s (Airflow's ``min_serialized_dag_update_interval`` is 30 s by default, so a
deployment's docs show a parse's warning up to 30 s late). Once ``detection_models`` is
parsed from a healthy registry (which writes the last-known-good plan), outages begin.

Injection: ``--outage-trials`` outages, each a seeded random 10-20 s long, in a shuffled mix
of the three ways a registry goes missing: connections refused (server down), reset at once
(broken path), or accepted and never answered (hung server; only the parse's own timeouts
end the wait). Open connections are cut when an outage starts. Then the registry comes back.

Check, sampled twice a second through the REST API, as the UI sees it: the DAG is never
missing or stale, never has fewer or other tasks, and its file never has an import error;
during each outage its docs start with the warning that the registry could not be read and
that it runs the last-known-good plan (the same plan fingerprint as before); after the
outage the warning goes away. Time to recover: the registry back -> docs without the warning.
"""

from __future__ import annotations

import argparse
import random
import re
import threading
import time
from dataclasses import dataclass, field

from faults.airflow_api import AirflowApi
from faults.environment import Suite
from faults.proxy import Mode, RegistryProxy
from faults.report import FaultReport
from harness.airflow_processes import running_airflow

NAME = "parse_outage"
SAMPLE_S = 0.5
RECOVER_TIMEOUT_S = 90
OUTAGE_S = (10.0, 20.0)
WARNING = "registry could not be read"
_FINGERPRINT = re.compile(r"Plan fingerprint `([0-9a-f]+)`")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outage-trials", type=int, default=6, help=f"{NAME}: outages, refused/reset/hung in turn (default 6)"
    )


@dataclass
class Sample:
    at: float
    mode: Mode
    present: bool
    stale: bool = False
    tasks: list[str] = field(default_factory=list)
    import_errors: int = 0
    first_line: str = ""
    fingerprint: str | None = None


class Sampler(threading.Thread):
    """Reads the DAG as the UI does, every SAMPLE_S seconds, until stopped."""

    def __init__(self, api: AirflowApi, proxy: RegistryProxy) -> None:
        super().__init__(name="dag-sampler", daemon=True)
        self.api, self.proxy = api, proxy
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_S):
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # the API server itself hiccuping is recorded, not fatal
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def sample(self) -> Sample:
        mode, now = self.proxy.mode, time.monotonic()
        dag = self.api.dag()
        if dag is None:
            return Sample(now, mode, present=False)
        doc = self.api.dag_details().get("doc_md") or ""
        found = _FINGERPRINT.search(doc)
        return Sample(
            now,
            mode,
            present=True,
            stale=bool(dag.get("is_stale")),
            tasks=self.api.task_ids(),
            import_errors=len(self.api.import_errors()),
            first_line=doc.strip().splitlines()[0] if doc else "",
            fingerprint=found[1] if found else None,
        )

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run(suite: Suite, args: argparse.Namespace, rng: random.Random, report: FaultReport) -> None:
    proxy = RegistryProxy(suite.admin_dsn)
    try:
        with suite.workspace(
            NAME,
            models_package="faults.models.steady",
            registry_address=("127.0.0.1", proxy.port),
            settings={
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "2",
            },
        ) as ws:
            for model_id, version, role in (
                ("beat", "1.0.0", "PRIMARY"),
                ("beat", "1.1.0", "SHADOW"),
                ("echo", "1.0.0", "PRIMARY"),
            ):
                ws.registry_rows(
                    "INSERT INTO detection_model_versions (model_id, version, status, role)"
                    " VALUES (%s, %s, 'ACTIVE', %s)",
                    (model_id, version, role),
                )
            with running_airflow(ws.env, ws.folder / "airflow_logs") as airflow:
                api = AirflowApi(airflow.base_url)
                api.wait_for_dag(4, timeout=180)
                sampler = Sampler(api, proxy)
                healthy = sampler.sample()
                if WARNING in healthy.first_line or healthy.fingerprint is None:
                    raise RuntimeError(f"the DAG's docs are not those of a healthy parse: {healthy.first_line!r}")
                sampler.start()
                try:
                    modes = [(Mode.REFUSE, Mode.RESET, Mode.HANG)[i % 3] for i in range(args.outage_trials)]
                    rng.shuffle(modes)
                    for mode in modes:
                        _outage(proxy, sampler, mode, rng.uniform(*OUTAGE_S), healthy, report)
                        airflow.check_alive()
                finally:
                    sampler.stop()
    finally:
        proxy.close()
    report.trials = args.outage_trials
    report.passed = report.outcomes["kept, warned, recovered"] == report.trials
    if sampler.errors:
        report.note(f"{len(sampler.errors)} samples failed to read the API, e.g. {sampler.errors[0]}")


def _outage(
    proxy: RegistryProxy, sampler: Sampler, mode: Mode, seconds: float, healthy: Sample, report: FaultReport
) -> None:
    """One outage of ``seconds`` in ``mode``, then the registry back; judged from the samples."""
    began = time.monotonic()
    proxy.set_mode(mode)
    time.sleep(seconds)
    proxy.set_mode(Mode.PASS)
    back = time.monotonic()
    recovered_at = None
    while time.monotonic() - back < RECOVER_TIMEOUT_S:
        latest = sampler.samples[-1] if sampler.samples else None
        if latest and latest.at > back and latest.present and WARNING not in latest.first_line:
            recovered_at = latest.at
            break
        time.sleep(SAMPLE_S)
    window = [s for s in sampler.samples if began <= s.at <= (recovered_at or time.monotonic())]
    during = [s for s in window if s.at <= back]
    problems = []
    missing = [s for s in window if not s.present or s.stale]
    if missing:
        problems.append(f"DAG missing or stale in {len(missing)} of {len(window)} samples")
    other_tasks = [s for s in window if s.present and s.tasks != healthy.tasks]
    if other_tasks:
        problems.append(f"tasks changed in {len(other_tasks)} samples, e.g. {other_tasks[0].tasks}")
    with_errors = [s for s in window if s.import_errors]
    if with_errors:
        problems.append(f"import errors in {len(with_errors)} samples")
    warned = [s for s in during if WARNING in s.first_line]
    if not warned:
        problems.append("the docs never said the registry could not be read")
    elif any(s.fingerprint != healthy.fingerprint for s in warned):
        problems.append("the warned docs show another plan than the last-known-good one")
    if recovered_at is None:
        problems.append(f"the warning was still there {RECOVER_TIMEOUT_S} s after the registry came back")
    what = f"{mode.value} for {seconds:.1f} s"
    if any(p.startswith("DAG missing") for p in problems):
        outcome = "vanished"
    elif problems:
        outcome = "wrong"
    else:
        outcome = "kept, warned, recovered"
        report.recover_s.append(recovered_at - back)
    report.outcomes[outcome] += 1
    if problems:
        report.note(f"{what}: " + "; ".join(problems))
    else:
        example = f"docs while the registry {mode.value}s connections: {warned[-1].first_line[:200]}"
        if not any(note.startswith(example[:40]) for note in report.notes):
            report.note(example)
    print(f"[faults] {NAME}: {what}: {outcome} ({len(warned)} of {len(during)} samples warned)", flush=True)
