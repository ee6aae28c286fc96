"""The example AIS models on the real recordings, through real DAG runs on a real PostgreSQL.

Every expected figure is worked out here from the CSV rows (tests/ais_reference.py: csv
module, haversine formula written out), never taken from the models' own output.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from registry_helpers import run_cycle

from ais_reference import (
    EMPTY_PAYLOAD,
    NYHARBOR_LOOP_S,
    SOLENT_LOOP_S,
    T0,
    TYPE_1,
    TYPE_3,
    cycle_at,
    haversine_nm,
    nyharbor_rows,
    solent_rows,
    tagged,
    vessel_rows,
)
from example_models.collision import IdentityCollisionDetector
from example_models.ingest import AisReplayIngest
from example_models.positions import cycle_positions, store_positions
from example_models.replay import Position
from example_models.spoofing import SpoofingDetector
from models_core.cycle.dag_factory import build_cycle_dag
from models_core.maintenance.snapshots import Window, render_markdown, take_snapshot
from models_core.model import ModelContext, ModelResult
from models_core.registry.cli import main as modelreg
from models_core.registry.demo_registry import DEMO_VERSIONS
from models_core.settings import load_settings

# A past date (after the cycle DAG's start_date, 2024-01-01), so each run is also a backfill.
PAST = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
HISTORY_S = 900  # the demo ingest's history_s


def _alerted(registry, version_id: int, cycle: datetime) -> dict[int, dict]:
    return {ref["mmsi"]: out for ref, out in registry.outputs(version_id, cycle) if out.get("alert")}


def _steps_in_window(rows, start, end):
    """(mmsi, before, after, distance nm, dt s) for every step whose later fix is in [start, end)."""
    by_vessel: dict[int, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["mmsi"], r["t"])):
        if start - HISTORY_S <= row["offset"] < end:
            by_vessel.setdefault(row["mmsi"], []).append(row)
    for mmsi, track in by_vessel.items():
        for a, b in zip(track, track[1:]):
            if start <= b["offset"] and not (a["t"] == b["t"] and (a["lat"], a["lon"]) == (b["lat"], b["lon"])):
                yield mmsi, a, b, haversine_nm(a["lat"], a["lon"], b["lat"], b["lon"]), b["t"] - a["t"]


def test_a_demo_cycle_finds_the_solent_position_jump_and_ranks_it(demo, registry, capsys):
    offset = 2100  # the window [2100, 2400) s holds 13:41:20.973, when 245188000 reported longitude 54.83
    cycle = cycle_at(SOLENT_LOOP_S, offset, PAST)
    rows = solent_rows()

    run = run_cycle(cycle, build_cycle_dag())

    assert run.state == "success" and set(run.task_states.values()) == {"success"}
    stored = registry.query("SELECT count(*) FROM ais_positions WHERE cycle_started_at = %s", (cycle,))[0][0]
    assert stored == sum(1 for r in rows if offset - HISTORY_S <= r["offset"] < offset + 300)
    # The spoofing PRIMARY (implied speed > 60 kn over a jump >= 0.1 nm), recomputed from the CSV.
    expected = {
        mmsi
        for mmsi, _, _, d, dt in _steps_in_window(rows, offset, offset + 300)
        if d >= 0.1 and d / (max(dt, 1) / 3600) > 60
    }
    alerts = _alerted(registry, demo["spoof_detector@1.0.0"], cycle)
    assert set(alerts) == expected == {245188000}
    jump = [r for r in vessel_rows(rows, 245188000, 0, SOLENT_LOOP_S) if r["time"] == "2016-01-12 13:41:20.973"][0]
    track = vessel_rows(rows, 245188000, 0, SOLENT_LOOP_S)
    back = track[track.index(jump) + 1]
    worst = alerts[245188000]["worst_step"]
    distance = haversine_nm(jump["lat"], jump["lon"], back["lat"], back["lon"])
    assert worst["recorded_from"] == "2016-01-12T13:41:20.973+00:00"
    assert worst["jump_nm"] == pytest.approx(distance, abs=1e-3) and distance == pytest.approx(2069.37, abs=0.01)
    assert worst["dt_s"] == pytest.approx(back["t"] - jump["t"], abs=1e-3)
    assert worst["implied_speed_kn"] == pytest.approx(distance / ((back["t"] - jump["t"]) / 3600), rel=1e-4)
    assert alerts[245188000]["suspicious_steps"] == 2  # out to 54.83 E and back
    # Track quality of the same vessel in the window.
    window_track = vessel_rows(rows, 245188000, offset, offset + 300)
    (quality,) = [out for ref, out in registry.outputs(demo["track_quality@1.0.0"], cycle) if ref["mmsi"] == 245188000]
    assert quality["fixes"] == len(window_track)
    assert quality["median_interval_s"] == pytest.approx(
        statistics.median(b["t"] - a["t"] for a, b in zip(window_track, window_track[1:])), abs=1e-3
    )
    # The router puts it first; the CHALLENGER was evaluated against the PRIMARY on the same vessels.
    ranked = registry.outputs(demo["alert_router@1.0.0"], cycle)
    assert ranked[0] == (
        {"mmsi": 245188000},
        {
            "rank": 1,
            "score": 30.0,
            "kinds": ["spoof_detector"],
            "severity": {"spoof_detector": alerts[245188000]["severity"]},
            "track_usable": True,
        },
    )
    evaluation = registry.metrics(demo["spoof_detector@2.0.0"], cycle)
    assert evaluation["eval_coverage"] == 1.0 and "eval_score_mean_abs_diff" in evaluation
    # `modelreg alerts` (what `make cycle` prints) lists it with its figures.
    assert modelreg(["alerts", "--cycle", cycle.isoformat()]) == 0
    printed = capsys.readouterr().out
    assert "spoof_detector  1.0.0    PRIMARY" in printed and '{"mmsi": 245188000}' in printed


def test_a_moving_vessel_silent_for_ten_minutes_is_alerted_once_by_the_dark_gap_detector(demo, registry):
    offset = 1500  # [1500, 1800) s: 538003523 went silent at 924 s doing 1.3 kn and came back at 2065 s
    cycle = cycle_at(SOLENT_LOOP_S, offset, PAST)
    rows = solent_rows()

    run_cycle(cycle, build_cycle_dag())

    def expected(threshold):
        found = {}
        seen = [r for r in rows if offset - HISTORY_S <= r["offset"] < offset + 300]
        for mmsi in {r["mmsi"] for r in seen}:
            track = vessel_rows(seen, mmsi, 0, SOLENT_LOOP_S)
            for a, b in zip(track, [*track[1:], None]):
                reaches = a["offset"] + threshold
                if offset <= reaches < offset + 300 and (b is None or b["offset"] > reaches) and a["sog"] >= 1.0:
                    found[mmsi] = (a, min(b["offset"] if b else offset + 300, offset + 300) - a["offset"])
        return found

    primary = _alerted(registry, demo["dark_gap_detector@1.0.0"], cycle)
    assert set(primary) == set(expected(600)) and 538003523 in primary
    last, silence = expected(600)[538003523]
    assert last["time"] == "2016-01-12 13:17:35.068" and last["sog"] == 1.3
    assert primary[538003523]["recorded_at"] == "2016-01-12T13:17:35.068+00:00"
    assert primary[538003523]["silence_s"] == pytest.approx(silence, abs=1e-3)
    shadow = _alerted(registry, demo["dark_gap_detector@1.1.0"], cycle)
    assert set(shadow) == set(expected(300))
    # The next cycle does not alert the same silence again.
    run_cycle(cycle + timedelta(minutes=5), build_cycle_dag())
    assert 538003523 not in _alerted(registry, demo["dark_gap_detector@1.0.0"], cycle + timedelta(minutes=5))
    # The snapshot report shows the alerts of the cycle, generically from outputs with "alert": true.
    report = take_snapshot(
        registry.conn,
        schema=load_settings().schema,
        models_package="example_models",
        kind="diagnostic",
        window=Window(cycle, cycle + timedelta(minutes=10)),
        models=None,
        now=cycle + timedelta(minutes=10),
        drift_band=0.5,
        months_ahead=0,
        settle_after=timedelta(minutes=10),
        shadow_pool="model_shadows",
    )
    next_alerts = _alerted(registry, demo["dark_gap_detector@1.0.0"], cycle + timedelta(minutes=5))
    counts = {(a["model_id"], a["role"]): a["alerts"] for a in report["alerts"]["per_version"]}
    assert counts[("dark_gap_detector", "PRIMARY")] == len(primary) + len(next_alerts)
    latest = next_alerts or primary  # the latest cycle that has PRIMARY alerts
    assert {a["input_ref"]["mmsi"] for a in report["alerts"]["latest"] if a["model_id"] == "dark_gap_detector"} == set(
        latest
    )
    assert "## Alerts" in render_markdown(report) and f'{{"mmsi": {min(latest)}}}' in render_markdown(report)


def _run(model, conn, cycle, shared=None) -> ModelResult:
    ctx = ModelContext(cycle_started_at=cycle, shared=shared or {}, params=model.params, connect=lambda: conn)
    return model.run(ctx)


def test_rerunning_the_ingest_leaves_one_copy_of_the_cycle_and_a_shadow_writes_nothing(registry, demo):
    cycle = cycle_at(SOLENT_LOOP_S, 600, PAST)
    params = {"recording": "solent", "history_s": HISTORY_S}
    expected = sum(1 for r in solent_rows() if 600 - HISTORY_S <= r["offset"] < 900)
    for _ in range(2):
        _run(AisReplayIngest(version_id=1, version_str="1.0.0", role="PRIMARY", params=params), registry.conn, cycle)
    assert len(cycle_positions(registry.conn, cycle)) == expected

    later = cycle + timedelta(minutes=5)
    _run(AisReplayIngest(version_id=2, version_str="1.1.0", role="SHADOW", params=params), registry.conn, later)
    assert cycle_positions(registry.conn, later) == []


def test_the_ingest_replays_a_raw_nmea_feed(registry, demo, tmp_path):
    feed = tmp_path / "receiver.nmea"
    feed.write_text("\n".join([tagged(TYPE_1[0], T0), tagged(EMPTY_PAYLOAD, T0 + 60), tagged(TYPE_3[0], T0 + 120)]))
    cycle = datetime(2025, 3, 1, 9, 5, tzinfo=UTC)  # a 120 s feed loops every 300 s: offset 0

    result = _run(
        AisReplayIngest(version_id=1, version_str="1.0.0", role="PRIMARY", params={"nmea_path": str(feed)}),
        registry.conn,
        cycle,
    )

    stored = cycle_positions(registry.conn, cycle)
    assert [(p.mmsi, p.t - cycle.timestamp(), p.recorded_t) for p in stored] == [
        (TYPE_1[1], 0.0, T0),
        (TYPE_3[1], 120.0, T0 + 120),
    ]
    assert (stored[0].lat, stored[0].lon) == pytest.approx((TYPE_1[2], TYPE_1[3]), abs=1e-4)
    assert result.metrics["nmea_positions"] == 2 and result.metrics["nmea_rejected"] == 1


def test_bad_ingest_params_name_the_key(registry, demo):
    ingest = AisReplayIngest(
        version_id=1, version_str="1.0.0", role="PRIMARY", params={"recording": "solent", "interval_s": "five minutes"}
    )
    with pytest.raises(ValueError, match=r"ais_ingest@1.0.0\[PRIMARY\]: params.interval_s must be a number"):
        _run(ingest, registry.conn, PAST)


def test_two_real_tracks_under_one_mmsi_are_an_identity_collision(registry, demo):
    """Real positions of two Solent vessels, the second relabelled with the first's MMSI."""
    offset, first, second = 1800, 235070762, 235099969  # 43 and 45 fixes in the window, about 2 nm apart
    cycle = cycle_at(SOLENT_LOOP_S, offset, PAST)
    rows = solent_rows()
    base = cycle.timestamp() - offset

    def replayed(row, mmsi):
        return Position(mmsi, base + row["offset"], row["lat"], row["lon"], row["sog"], None, row["t"])

    a_rows, b_rows = vessel_rows(rows, first, offset, offset + 300), vessel_rows(rows, second, offset, offset + 300)
    store_positions(registry.conn, cycle, [replayed(r, first) for r in a_rows + b_rows], retention_hours=24)
    detector = IdentityCollisionDetector(version_id=1, version_str="1.0.0", role="PRIMARY", params={})
    shared = {"ais_ingest": ModelResult("ais_ingest", 1, "PRIMARY", metrics={"observed_s": 300.0})}

    ((ref, out),) = _run(detector, registry.conn, cycle, shared).outputs_per_input

    a, b = min(((p, q) for p in a_rows for q in b_rows), key=lambda pair: abs(pair[0]["t"] - pair[1]["t"]))
    assert ref == {"mmsi": first} and out["alert"] is True
    assert out["track_fixes"] == sorted([len(a_rows), len(b_rows)], reverse=True)
    assert out["separation_nm"] == pytest.approx(haversine_nm(a["lat"], a["lon"], b["lat"], b["lon"]), abs=1e-3)
    assert out["separation_nm"] > 1.0

    store_positions(registry.conn, cycle, [replayed(r, first) for r in a_rows], retention_hours=24)
    ((_, alone),) = _run(detector, registry.conn, cycle, shared).outputs_per_input
    assert alone["alert"] is False and alone["tracks"] == 1


def test_the_sog_challenger_catches_the_new_york_fireboat_the_speed_bound_misses(registry, demo):
    """FDNY 367531710 reports 32 kn but covers 1.49 nm in 106 s (50.6 kn): under 60 kn, over its SOG."""
    offset = 2700
    cycle = cycle_at(NYHARBOR_LOOP_S, offset, PAST)
    rows = nyharbor_rows()
    ingest = _run(
        AisReplayIngest(
            version_id=1, version_str="1.0.0", role="PRIMARY", params={"recording": "nyharbor", "history_s": HISTORY_S}
        ),
        registry.conn,
        cycle,
    )
    shared = {"ais_ingest": ingest}
    versions = {version: params for model_id, version, _, params in DEMO_VERSIONS if model_id == "spoof_detector"}

    primary = _run(
        SpoofingDetector(version_id=1, version_str="1.0.0", role="PRIMARY", params=versions["1.0.0"]),
        registry.conn,
        cycle,
        shared,
    )
    challenger = _run(
        SpoofingDetector(version_id=2, version_str="2.0.0", role="CHALLENGER", params=versions["2.0.0"]),
        registry.conn,
        cycle,
        shared,
    )

    out = dict((ref["mmsi"], out) for ref, out in challenger.outputs_per_input)[367531710]
    assert out["alert"] is True
    assert dict((ref["mmsi"], out) for ref, out in primary.outputs_per_input)[367531710]["alert"] is False
    a, b = [
        r
        for r in vessel_rows(rows, 367531710, 0, NYHARBOR_LOOP_S)
        if r["time"] in ("2020-06-30T00:45:00", "2020-06-30T00:46:46")
    ]
    distance = haversine_nm(a["lat"], a["lon"], b["lat"], b["lon"])
    assert out["worst_step"]["jump_nm"] == pytest.approx(distance, abs=1e-3)
    assert out["worst_step"]["dt_s"] == 106.0 and out["worst_step"]["sog_kn"] == [a["sog"], b["sog"]]
    assert out["severity"] == pytest.approx(distance / (max(a["sog"], b["sog"]) * 106 / 3600 * 1.5 + 0.02), abs=1e-3)
