"""The replay mapping on the real recordings: same cycle, same window; cycles tile the loop."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from ais_reference import NYHARBOR_LOOP_S, SOLENT_LOOP_S, nyharbor_rows, solent_rows
from example_models.recordings import RecordingError, load_recording
from example_models.replay import COPY_MMSI_STEP, loop_length_s, replay_window, replayed_positions

NOW = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


def _window_fixes(recording, cycle, interval=300, history=0, copies=1):
    window = replay_window(recording, cycle, interval, history)
    return window, list(replayed_positions(recording, window, copies))


def test_loop_is_the_recording_rounded_up_to_whole_cycles():
    assert loop_length_s(load_recording("solent").span_s, 300) == SOLENT_LOOP_S
    assert loop_length_s(load_recording("nyharbor").span_s, 300) == NYHARBOR_LOOP_S
    assert loop_length_s(load_recording("solent").span_s, 600) == 9 * 600


def test_recordings_load_every_row_of_their_files():
    assert len(load_recording("solent").fixes) == len(solent_rows()) == 18_623
    assert len(load_recording("nyharbor").fixes) == len(nyharbor_rows()) == 8_689
    assert len({f.mmsi for f in load_recording("solent").fixes}) == 91


def test_the_same_cycle_always_sees_the_same_window():
    recording = load_recording("solent")
    first = _window_fixes(recording, NOW, history=900)
    again = _window_fixes(load_recording("solent"), datetime.fromisoformat(NOW.isoformat()), history=900)
    assert first == again and len(first[1]) > 0


def test_consecutive_cycles_replay_every_row_once_per_loop():
    recording = load_recording("solent")
    start = datetime.fromtimestamp(NOW.timestamp() - NOW.timestamp() % SOLENT_LOOP_S, tz=UTC)
    seen = Counter()
    for k in range(SOLENT_LOOP_S // 300):
        _, fixes = _window_fixes(recording, start + timedelta(seconds=300 * k))
        seen.update((p.mmsi, round(p.recorded_t, 3), p.lat, p.lon) for p in fixes)
    expected = Counter((r["mmsi"], round(r["t"], 3), r["lat"], r["lon"]) for r in solent_rows())
    assert seen == expected


@pytest.mark.parametrize(
    "cycle",
    [
        datetime(2019, 3, 1, 10, 5, tzinfo=UTC),  # a backfill years back
        datetime(2026, 11, 25, 10, 5, tzinfo=UTC),
    ],
)
def test_a_cycle_of_any_date_sees_the_rows_its_offset_names(cycle):
    offset = cycle.timestamp() % SOLENT_LOOP_S  # the documented mapping, computed here
    expected = sorted((r["mmsi"], round(r["t"], 3)) for r in solent_rows() if offset <= r["offset"] < offset + 300)

    window, fixes = _window_fixes(load_recording("solent"), cycle)

    assert window.offset_s == offset
    assert sorted((p.mmsi, round(p.recorded_t, 3)) for p in fixes) == expected
    assert all(cycle.timestamp() <= p.t < cycle.timestamp() + 300 for p in fixes)
    # A fix is replayed at the same distance from the cycle as it was recorded from the window start.
    first = min(fixes, key=lambda p: p.t)
    recording_start = min(r["t"] for r in solent_rows())
    assert first.t - cycle.timestamp() == pytest.approx(first.recorded_t - recording_start - offset, abs=1e-3)


def test_history_reaches_back_but_never_across_the_start_of_a_pass():
    recording = load_recording("solent")
    pass_start = datetime.fromtimestamp(NOW.timestamp() - NOW.timestamp() % SOLENT_LOOP_S, tz=UTC)
    window, fixes = _window_fixes(recording, pass_start, history=900)
    assert window.history_from_s == 0 and min(p.t for p in fixes) >= pass_start.timestamp()

    later = pass_start + timedelta(seconds=1800)
    window, fixes = _window_fixes(recording, later, history=900)
    assert window.history_from_s == 900
    assert min(p.t for p in fixes) >= later.timestamp() - 900
    assert min(p.t for p in fixes) < later.timestamp()  # history is there


def test_the_last_window_of_a_pass_says_how_much_of_it_the_recording_covers():
    recording = load_recording("solent")
    last = datetime.fromtimestamp(NOW.timestamp() - NOW.timestamp() % SOLENT_LOOP_S + SOLENT_LOOP_S - 300, tz=UTC)
    span = max(r["offset"] for r in solent_rows())
    window = replay_window(recording, last, 300, 0)
    assert window.observed_s == pytest.approx(span - (SOLENT_LOOP_S - 300), abs=0.01)


def test_copies_are_shifted_vessels_with_distinct_mmsis():
    _, once = _window_fixes(load_recording("nyharbor"), NOW)
    _, thrice = _window_fixes(load_recording("nyharbor"), NOW, copies=3)
    assert len(thrice) == 3 * len(once)
    assert len({p.mmsi for p in thrice}) == 3 * len({p.mmsi for p in once})
    copy_2 = [p for p in thrice if p.mmsi >= 2 * COPY_MMSI_STEP]
    assert [(p.mmsi - 2 * COPY_MMSI_STEP, p.t, round(p.lat - 0.02, 9)) for p in copy_2] == [
        (p.mmsi, p.t, round(p.lat, 9)) for p in once
    ]


def test_an_unknown_recording_is_an_error_naming_the_choices():
    with pytest.raises(RecordingError, match="'baltic'.*nyharbor, solent"):
        load_recording("baltic")
