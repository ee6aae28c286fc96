"""An independent reading of the shipped AIS recordings, for checking the example models.

Nothing here imports example_models: rows come straight from the CSV with the csv module,
distances from the haversine formula written out below, windows from the mapping as the
docs state it (docs/tutorial/demo-tour.md). Tests compare the models' figures with these.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "include" / "example_models" / "data"
SOLENT = DATA / "SolentAIS_20160112_130211.csv"
NYHARBOR = DATA / "NYHarbor_2020_06_30_first_hour.csv"
#: Mean Earth radius (IUGG) in nautical miles: 6371.0088 km / 1.852 km.
EARTH_RADIUS_NM = 6371.0088 / 1.852
SOLENT_LOOP_S = 17 * 300  # 84.5 minutes rounded up to whole 5-minute cycles
NYHARBOR_LOOP_S = 12 * 300


def solent_rows() -> list[dict]:
    """Every Solent row as {t (UNIX s), offset (s after the first row), mmsi, lat, lon, sog, cog}."""
    with open(SOLENT, newline="") as f:
        raw = list(csv.DictReader(f))
    times = [datetime.strptime(r["Time"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp() for r in raw]
    start = min(times)
    return [
        {
            "t": t,
            "offset": t - start,
            "mmsi": int(r["MMSI"]),
            "lat": float(r["Latitude_degrees"]),
            "lon": float(r["Longitude_degrees"]),
            "sog": float(r["SOG_knots"]),
            "time": r["Time"],
        }
        for t, r in zip(times, raw)
    ]


def nyharbor_rows() -> list[dict]:
    with open(NYHARBOR, newline="") as f:
        raw = list(csv.DictReader(f))
    times = [datetime.fromisoformat(r["BaseDateTime"]).replace(tzinfo=UTC).timestamp() for r in raw]
    start = min(times)
    return [
        {
            "t": t,
            "offset": t - start,
            "mmsi": int(r["MMSI"]),
            "lat": float(r["LAT"]),
            "lon": float(r["LON"]),
            "sog": float(r["SOG"]),
            "time": r["BaseDateTime"],
        }
        for t, r in zip(times, raw)
    ]


def haversine_nm(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_NM * math.asin(math.sqrt(h))


def cycle_at(loop_s: int, offset_s: int, near: datetime) -> datetime:
    """The cycle whose window starts ``offset_s`` into the pass of the loop that holds ``near``."""
    start = near.timestamp() - near.timestamp() % loop_s
    return datetime.fromtimestamp(start + offset_s, tz=UTC)


def vessel_rows(rows: list[dict], mmsi: int, start: float, end: float) -> list[dict]:
    """One vessel's rows with ``start <= offset < end``, in time order."""
    return sorted((r for r in rows if r["mmsi"] == mmsi and start <= r["offset"] < end), key=lambda r: r["t"])


# Real !AIVDM sentences and their decoded values, from pyais's own test suite
# (github.com/M0r13n/pyais, tests/test_decode.py: messages recorded from live feeds and
# decoded by hand or with online decoders; tests/nmea_data_sample.txt: a raw receiver dump
# with its empty-payload lines). They carry no reception time, so tests give each a tag
# block with a receiver timestamp, as a logging receiver writes it; the sentence is unchanged.
T0 = 1_453_813_200  # 2016-01-26 13:00:00 UTC

# (sentence, mmsi, lat, lon, speed kn, course deg) as published in pyais tests/test_decode.py
TYPE_1 = ("!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C", 366053209, 37.802118, -122.341618, 0.0, 219.3)
TYPE_1_NO_COURSE = ("!AIVDM,1,1,,A,15NPOOPP00o?b=bE`UNv4?w428D;,0*24", 367533950, 37.808418, -122.408232, 0.0, None)
TYPE_1_MOVING = ("!AIVDM,1,1,,B,181:Kjh01ewHFRPDK1s3IRcn06sd,0*08", 538090443, None, None, 10.9, 87.0)
TYPE_3 = ("!AIVDM,1,1,,A,35NSH95001G?wopE`beasVk@0E5:,0*6F", 367581220, 37.8107, -122.3343, 0.1, 254.2)
TYPE_5 = (
    "!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C",
    "!AIVDM,2,2,1,A,88888888880,2*25",
)
EMPTY_PAYLOAD = "!AIVDM,1,1,,B,,0*25"  # as received, tests/nmea_data_sample.txt


def tagged(sentence: str, t: int) -> str:
    """``sentence`` behind an NMEA 4 tag block with receiver time ``t`` (checksum: XOR of its bytes)."""
    body = f"s:test,c:{t}"
    return f"\\{body}*{reduce(xor, body.encode()):02X}\\{sentence}"
