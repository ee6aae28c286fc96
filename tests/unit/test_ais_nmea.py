"""NMEA feeds decoded with pyais, on real published !AIVDM sentences.

The sentences and their decoded values come from pyais's own test suite
(github.com/M0r13n/pyais, tests/test_decode.py: messages recorded from live feeds and
decoded by hand or online decoders; tests/nmea_data_sample.txt: a raw receiver dump with
its empty-payload lines). They carry no reception time, so each is given a tag block
with a receiver timestamp, as a logging receiver writes it; the sentence is unchanged.
"""
from __future__ import annotations

from functools import reduce
from operator import xor

import pytest

from example_models.nmea import read_feed
from example_models.recordings import RecordingError

T0 = 1_453_813_200  # 2016-01-26 13:00:00 UTC

# (sentence, mmsi, lat, lon, speed kn, course deg) as published in pyais tests/test_decode.py
TYPE_1 = ("!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C", 366053209, 37.802118, -122.341618, 0.0, 219.3)
TYPE_1_NO_COURSE = ("!AIVDM,1,1,,A,15NPOOPP00o?b=bE`UNv4?w428D;,0*24", 367533950, 37.808418, -122.408232, 0.0, None)
TYPE_1_MOVING = ("!AIVDM,1,1,,B,181:Kjh01ewHFRPDK1s3IRcn06sd,0*08", 538090443, None, None, 10.9, 87.0)
TYPE_3 = ("!AIVDM,1,1,,A,35NSH95001G?wopE`beasVk@0E5:,0*6F", 367581220, 37.8107, -122.3343, 0.1, 254.2)
TYPE_5 = ("!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C",
          "!AIVDM,2,2,1,A,88888888880,2*25")
EMPTY_PAYLOAD = "!AIVDM,1,1,,B,,0*25"  # as received, tests/nmea_data_sample.txt


def tagged(sentence: str, t: int) -> str:
    """``sentence`` behind an NMEA 4 tag block with receiver time ``t`` (checksum: XOR of its bytes)."""
    body = f"s:test,c:{t}"
    return f"\\{body}*{reduce(xor, body.encode()):02X}\\{sentence}"


def test_position_reports_decode_to_the_published_values(tmp_path):
    feed = tmp_path / "feed.nmea"
    feed.write_text("\n".join(tagged(s[0], T0 + i) for i, s in enumerate(
        (TYPE_1, TYPE_1_NO_COURSE, TYPE_1_MOVING, TYPE_3))) + "\n")

    recording, stats = read_feed(feed)

    assert stats.positions == 4 and stats.rejected == 0
    assert recording.started_at.timestamp() == T0
    fixes = {f.mmsi: f for f in recording.fixes}
    for i, (_, mmsi, lat, lon, speed, course) in enumerate((TYPE_1, TYPE_1_NO_COURSE, TYPE_1_MOVING, TYPE_3)):
        fix = fixes[mmsi]
        assert fix.offset_s == i
        if lat is not None:
            assert fix.lat == pytest.approx(lat, abs=1e-4) and fix.lon == pytest.approx(lon, abs=1e-4)
        assert fix.sog_kn == pytest.approx(speed)
        assert fix.cog_deg == (None if course is None else pytest.approx(course))


def test_noise_is_skipped_and_counted_with_its_line_numbers(tmp_path):
    corrupted = TYPE_3[0][:-2] + "00"  # wrong checksum
    feed = tmp_path / "feed.nmea"
    feed.write_text("\n".join([
        "# receiver log", tagged(TYPE_1[0], T0), tagged(EMPTY_PAYLOAD, T0 + 1), tagged(corrupted, T0 + 2),
        tagged(TYPE_5[0], T0 + 3), tagged(TYPE_5[1], T0 + 3), "not nmea at all", tagged(TYPE_3[0], T0 + 4)]))

    recording, stats = read_feed(feed)

    assert [f.mmsi for f in recording.fixes] == [366053209, 367581220]
    assert stats.positions == 2 and stats.other_messages == 2 and stats.rejected == 3
    assert [line.split(":")[0] for line in stats.rejected_lines] == ["line 3", "line 4", "line 7"]
    assert "checksum" in stats.rejected_lines[1]


def test_a_position_report_without_a_receiver_time_is_an_error_naming_its_line(tmp_path):
    feed = tmp_path / "feed.nmea"
    feed.write_text(tagged(TYPE_1[0], T0) + "\n" + TYPE_3[0] + "\n")
    with pytest.raises(RecordingError, match=r"feed.nmea line 2: position report without a tag block"):
        read_feed(feed)


def test_a_missing_feed_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(RecordingError, match="cannot read NMEA feed .*nowhere.nmea"):
        read_feed(tmp_path / "nowhere.nmea")
