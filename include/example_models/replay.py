"""The replay mapping: which part of a recording a cycle sees, as a pure function of time.

The recording plays in a loop aligned to the UNIX epoch. A pass of the loop lasts
``loop_s`` = the recording's span rounded up to a whole number of intervals (Solent: 84.5
min -> 85 min = 17 cycles of 5 min; New York: 60 min = 12 cycles), so every pass starts on
the cycle grid. For a cycle at time ``T`` (UNIX seconds):

    offset    = T mod loop_s                      recording seconds at T
    pass      = [T - offset, T - offset + loop_s) real time of this pass
    window    = [offset, offset + interval_s)     what this cycle reports on
    history   = [max(0, offset - history_s), offset)   earlier fixes the detectors look back at

and a fix recorded ``o`` seconds after the recording's start is replayed at
``T - offset + o``. So the same cycle always sees the same fixes (a retry, a manual run, a
backfill of any date), consecutive cycles see consecutive windows, and the history never
reaches back across the start of a pass: a new pass starts fresh tracks instead of making
every vessel jump from where the recording ends to where it starts. A schedule whose
interval divides a day (every 5, 10, 15 ... minutes) keeps every window inside one pass;
otherwise the window is cut at the end of the pass.

``copies`` > 1 (benchmarks) adds shifted copies of every vessel: copy ``k`` has MMSI
``mmsi + k * 1_000_000_000`` (a 10-digit number no real vessel has) and sits ``k * 0.01``
degrees further north, with the same timing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from example_models.recordings import Recording

COPY_MMSI_STEP = 1_000_000_000
COPY_LAT_STEP = 0.01


class Position(NamedTuple):
    """A replayed fix: real (replayed) time and recording time as UNIX seconds."""

    mmsi: int
    t: float
    lat: float
    lon: float
    sog_kn: float | None
    cog_deg: float | None
    recorded_t: float


@dataclass(frozen=True)
class ReplayWindow:
    """What one cycle sees of a recording; offsets are recording seconds."""

    recording: str
    cycle: datetime
    loop_s: float
    pass_started_at: datetime
    offset_s: float
    history_from_s: float
    window_end_s: float
    observed_s: float  # seconds of the window the recording covers (less at the end of a pass)


def loop_length_s(span_s: float, interval_s: float) -> float:
    """A whole number of intervals, longer than the recording's span (so no two fixes share an offset)."""
    return (math.floor(span_s / interval_s) + 1) * interval_s


def replay_window(recording: Recording, cycle: datetime, interval_s: float, history_s: float) -> ReplayWindow:
    """The window of ``recording`` that the cycle at ``cycle`` sees (see the module docstring)."""
    loop_s = loop_length_s(recording.span_s, interval_s)
    now = cycle.timestamp()
    offset = now % loop_s
    window_end = min(offset + interval_s, loop_s)
    return ReplayWindow(
        recording=recording.name,
        cycle=cycle,
        loop_s=loop_s,
        pass_started_at=datetime.fromtimestamp(now - offset, tz=UTC),
        offset_s=offset,
        history_from_s=max(0.0, offset - history_s),
        window_end_s=window_end,
        observed_s=max(0.0, min(window_end, recording.span_s + 1e-3) - offset),
    )


def replayed_positions(recording: Recording, window: ReplayWindow, copies: int = 1) -> Iterator[Position]:
    """The fixes of the window and its history, at their replayed times, ``copies`` times over."""
    replay_base = window.pass_started_at.timestamp()
    record_base = recording.started_at.timestamp()
    fixes = recording.between(window.history_from_s, window.window_end_s)
    for copy in range(copies):
        mmsi_shift, lat_shift = copy * COPY_MMSI_STEP, copy * COPY_LAT_STEP
        for fix in fixes:
            yield Position(
                fix.mmsi + mmsi_shift,
                replay_base + fix.offset_s,
                fix.lat + lat_shift,
                fix.lon,
                fix.sog_kn,
                fix.cog_deg,
                record_base + fix.offset_s,
            )


def iso(t: float) -> str:
    """UNIX seconds as ISO-8601 UTC with milliseconds, the form figures are shown in."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")
