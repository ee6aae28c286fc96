"""The two real AIS recordings shipped in ``data/``, read into one normalised form.

A :class:`Recording` is a list of fixes sorted by their offset (seconds after the
recording's first fix), whatever the file's layout was. Raw NMEA feeds are read into the
same form by :mod:`example_models.nmea`.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import NamedTuple


class RecordingError(ValueError):
    """A recording or feed that cannot be read; the message names the file, line and field."""


class Fix(NamedTuple):
    """One position report: seconds after the recording's start, MMSI, WGS84 degrees, knots, degrees."""

    offset_s: float
    mmsi: int
    lat: float
    lon: float
    sog_kn: float | None
    cog_deg: float | None


@dataclass(frozen=True)
class Recording:
    """Fixes sorted by ``offset_s``; ``started_at`` is the real time of offset 0."""

    name: str
    started_at: datetime
    fixes: tuple[Fix, ...]
    _offsets: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_offsets", [fix.offset_s for fix in self.fixes])

    @property
    def span_s(self) -> float:
        """Seconds from the first fix to the last."""
        return self.fixes[-1].offset_s if self.fixes else 0.0

    def between(self, start_s: float, end_s: float) -> tuple[Fix, ...]:
        """Fixes with ``start_s <= offset_s < end_s``."""
        return self.fixes[bisect.bisect_left(self._offsets, start_s) : bisect.bisect_left(self._offsets, end_s)]


def build_recording(
    name: str, timed_fixes: Iterable[tuple[datetime, int, float, float, float | None, float | None]]
) -> Recording:
    """Sort ``(time, mmsi, lat, lon, sog, cog)`` rows by time and make their times offsets."""
    rows = sorted(timed_fixes, key=lambda row: row[0])
    if not rows:
        raise RecordingError(f"{name}: holds no position reports")
    started_at = rows[0][0]
    return Recording(
        name,
        started_at,
        tuple(
            Fix((moment - started_at).total_seconds(), mmsi, lat, lon, sog, cog)
            for moment, mmsi, lat, lon, sog, cog in rows
        ),
    )


def checked_position(where: str, lat: float, lon: float) -> tuple[float, float]:
    """Reject coordinates outside the globe (AIS writes 91/181 for "not available")."""
    if not -90 <= lat <= 90:
        raise RecordingError(f"{where}: latitude {lat} is outside -90..90")
    if not -180 <= lon <= 180:
        raise RecordingError(f"{where}: longitude {lon} is outside -180..180")
    return lat, lon


def course(value: float | None) -> float | None:
    """Course over ground in [0, 360); AIS's 360 means "not available"."""
    if value is None or value == 360:
        return None
    return value % 360


def _number(where: str, row: dict[str, str], column: str) -> float:
    try:
        return float(row[column])
    except (KeyError, TypeError, ValueError):
        raise RecordingError(f"{where}: field {column} is {row.get(column)!r}, not a number") from None


def _utc(where: str, text: str | None, pattern: str) -> datetime:
    if text is not None:  # None: the row is short of the time column
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise RecordingError(f"{where}: time {text!r} does not match {pattern}")


@dataclass(frozen=True)
class _Layout:
    """How one CSV layout names its columns."""

    time: str
    time_pattern: str
    mmsi: str
    lat: str
    lon: str
    sog: str
    cog: str


_STONE_SOUP = _Layout(
    "Time", "%Y-%m-%d %H:%M:%S.%f", "MMSI", "Latitude_degrees", "Longitude_degrees", "SOG_knots", "COG_degrees"
)
_MARINE_CADASTRE = _Layout("BaseDateTime", "%Y-%m-%dT%H:%M:%S", "MMSI", "LAT", "LON", "SOG", "COG")

#: name -> (file in data/, its layout); the names ingest params use.
RECORDINGS: dict[str, tuple[str, _Layout]] = {
    "solent": ("SolentAIS_20160112_130211.csv", _STONE_SOUP),
    "nyharbor": ("NYHarbor_2020_06_30_first_hour.csv", _MARINE_CADASTRE),
}


def _read_csv(file_name: str, layout: _Layout, text: str) -> Recording:
    rows = []
    for line, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        where = f"{file_name} line {line}"
        mmsi = _number(where, row, layout.mmsi)
        lat, lon = checked_position(where, _number(where, row, layout.lat), _number(where, row, layout.lon))
        rows.append(
            (
                _utc(where, row.get(layout.time), layout.time_pattern),
                int(mmsi),
                lat,
                lon,
                _number(where, row, layout.sog),
                course(_number(where, row, layout.cog)),
            )
        )
    return build_recording(file_name, rows)


@cache
def load_recording(name: str) -> Recording:
    """One of :data:`RECORDINGS`, read once per process."""
    if name not in RECORDINGS:
        raise RecordingError(f"no recording named {name!r}; choose one of {', '.join(sorted(RECORDINGS))}")
    file_name, layout = RECORDINGS[name]
    data = resources.files("example_models").joinpath("data", file_name)
    return _read_csv(file_name, layout, data.read_text())
