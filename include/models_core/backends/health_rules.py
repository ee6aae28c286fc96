"""How one health probe moves a backend's state: UP/DOWN, latency baseline, load class. Pure.

The rules follow the health loop this project started from:

- **UP** when the health endpoint answers 2xx within the backend's timeout, else **DOWN**.
- **Baseline**: an exponential moving average of healthy latencies. The first four healthy
  samples take the maximum so far instead, so one fast first answer cannot set a baseline
  every later sample looks slow against; from the fifth on, ``0.9 * baseline + 0.1 *
  latency``. Never below 10 ms (anything under that is noise). DOWN samples leave it alone.
- **Load class** of a healthy sample: from the status endpoint when the backend has one and
  it answered (``active_jobs``: 4+ very busy, 2-3 busy, 1 normal, 0 idle); otherwise from
  the latency against the baseline (over 5x busy, over 2x normal, else idle; 50 ms stands
  in for a baseline not made yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: The load classes, least busy first.
LOAD_CLASSES = ("idle", "normal", "busy", "very_busy")
BASELINE_FLOOR_MS = 10.0
#: Healthy samples that take the maximum before the moving average starts.
WARMUP_SAMPLES = 4
EMA_WEIGHT = 0.1
DEFAULT_BASELINE_MS = 50.0


@dataclass(frozen=True)
class Probe:
    """What one probe of one backend measured."""

    taken_at: datetime
    healthy: bool
    latency_ms: float
    http_status: int | None = None
    active_jobs: int | None = None  # from the status endpoint, when it answered
    total_requests: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class HealthState:
    """What a backend's next probe continues from."""

    status: str  # UP or DOWN
    since: datetime
    baseline_ms: float | None
    healthy_samples: int


@dataclass(frozen=True)
class Assessment:
    """A probe's outcome: the new state, the load class (None when DOWN), and whether the status changed."""

    state: HealthState
    load_class: str | None
    previous_status: str | None

    @property
    def changed(self) -> bool:
        return self.state.status != self.previous_status


def update_baseline(baseline_ms: float | None, healthy_samples: int, latency_ms: float) -> tuple[float, int]:
    """The baseline and healthy-sample count after one more healthy sample."""
    count = healthy_samples + 1
    current = latency_ms if baseline_ms is None else baseline_ms
    if count <= WARMUP_SAMPLES:
        updated = max(current, latency_ms)
    else:
        updated = current * (1 - EMA_WEIGHT) + latency_ms * EMA_WEIGHT
    return max(updated, BASELINE_FLOOR_MS), count


def classify_load(latency_ms: float, baseline_ms: float | None, active_jobs: int | None) -> str:
    """idle / normal / busy / very_busy, from the status endpoint's jobs or else the latency."""
    if active_jobs is not None:
        if active_jobs >= 4:
            return "very_busy"
        if active_jobs >= 2:
            return "busy"
        return "normal" if active_jobs == 1 else "idle"
    baseline = DEFAULT_BASELINE_MS if baseline_ms is None else baseline_ms
    if latency_ms > baseline * 5:
        return "busy"
    if latency_ms > baseline * 2:
        return "normal"
    return "idle"


def assess(previous: HealthState | None, probe: Probe) -> Assessment:
    """The backend's state after ``probe``, given its state before (None: never probed)."""
    status = "UP" if probe.healthy else "DOWN"
    previous_status = previous.status if previous else None
    since = previous.since if previous and previous.status == status else probe.taken_at
    baseline = previous.baseline_ms if previous else None
    samples = previous.healthy_samples if previous else 0
    load = None
    if probe.healthy:
        baseline, samples = update_baseline(baseline, samples, probe.latency_ms)
        load = classify_load(probe.latency_ms, baseline, probe.active_jobs)
    return Assessment(HealthState(status, since, baseline, samples), load, previous_status)
