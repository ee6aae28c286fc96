"""NMEA feeds decoded with pyais, on real published !AIVDM sentences (see ais_reference)."""

from __future__ import annotations

import pytest

from ais_reference import EMPTY_PAYLOAD, T0, TYPE_1, TYPE_1_MOVING, TYPE_1_NO_COURSE, TYPE_3, TYPE_5, tagged
from example_models.nmea import read_feed
from example_models.recordings import RecordingError


def test_position_reports_decode_to_the_published_values(tmp_path):
    feed = tmp_path / "feed.nmea"
    feed.write_text(
        "\n".join(tagged(s[0], T0 + i) for i, s in enumerate((TYPE_1, TYPE_1_NO_COURSE, TYPE_1_MOVING, TYPE_3))) + "\n"
    )

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
    feed.write_text(
        "\n".join(
            [
                "# receiver log",
                tagged(TYPE_1[0], T0),
                tagged(EMPTY_PAYLOAD, T0 + 1),
                tagged(corrupted, T0 + 2),
                tagged(TYPE_5[0], T0 + 3),
                tagged(TYPE_5[1], T0 + 3),
                "not nmea at all",
                tagged(TYPE_3[0], T0 + 4),
            ]
        )
    )

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
