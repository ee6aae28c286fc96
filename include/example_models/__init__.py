"""Example detection models over real AIS recordings (see data/README.md).

    ais_ingest ──> track_quality ─────────────────┐
               ├─> spoof_detector ───────────────┤
               ├─> dark_gap_detector ────────────┼──> alert_router
               └─> identity_collision ───────────┘

``ais_ingest`` replays a recording (Solent 2016 in the demo) into ``ais_positions``, one
window per cycle (the mapping is in :mod:`example_models.replay`); the detectors read the
cycle's positions from that table and report one row per vessel with a boolean ``alert``
and the figures that decided it; the router merges and ranks the alerts.
"""
