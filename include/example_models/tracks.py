"""Tracks and the figures the detectors judge them by: distances, time steps, implied speeds.

Distances are great-circle (haversine) distances in nautical miles from the ``haversine``
package (MIT, pure Python, maintained since 2013), so 1 nm per hour is exactly a knot.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby
from typing import NamedTuple

from haversine import Unit, haversine

from example_models.replay import Position


class Step(NamedTuple):
    """Two consecutive fixes of one vessel and what moving between them implies."""

    before: Position
    after: Position
    distance_nm: float
    dt_s: float
    implied_speed_kn: float


def by_vessel(positions: Iterable[Position]) -> dict[int, list[Position]]:
    """Positions grouped by MMSI, each vessel's in time order."""
    ordered = sorted(positions, key=lambda p: (p.mmsi, p.t))
    return {mmsi: list(track) for mmsi, track in groupby(ordered, key=lambda p: p.mmsi)}


def distance_nm(a: Position, b: Position) -> float:
    return haversine((a.lat, a.lon), (b.lat, b.lon), unit=Unit.NAUTICAL_MILES)


def step(a: Position, b: Position, min_dt_s: float) -> Step:
    """The step from ``a`` to ``b``; a time step under ``min_dt_s`` counts as ``min_dt_s``.

    Receivers stamp reports to the second or worse, so two fixes 0.2 s apart say nothing
    about a speed of 5x what they would imply.
    """
    distance = distance_nm(a, b)
    dt = b.t - a.t
    return Step(a, b, distance, dt, distance / (max(dt, min_dt_s) / 3600))


def steps(track: list[Position], min_dt_s: float, since: float | None = None) -> list[Step]:
    """Consecutive steps of a track, skipping exact repeats of a report.

    With ``since``, only steps that end at or after it: each step is judged by exactly one
    cycle, the one whose window holds its later fix.
    """
    result = []
    for a, b in zip(track, track[1:]):
        if (since is not None and b.t < since) or (a.t == b.t and a.lat == b.lat and a.lon == b.lon):
            continue
        result.append(step(a, b, min_dt_s))
    return result
