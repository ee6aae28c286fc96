"""The demo registry: versions and dependencies of the example models, seeded when empty."""

from __future__ import annotations

import json
import logging

from psycopg2.extensions import connection as PgConnection

from models_core.store.sql_files import fetch_value, queries

log = logging.getLogger(__name__)

#: (model_id, version, role, params): the example_models chain over the Solent recording, with a
#: CHALLENGER that judges jumps against the reported speed instead of a fixed bound, and a
#: SHADOW that calls a vessel dark after 5 silent minutes instead of 10.
DEMO_VERSIONS = [
    ("ais_ingest", "1.0.0", "PRIMARY", {"recording": "solent", "interval_s": 300, "history_s": 900}),
    ("track_quality", "1.0.0", "PRIMARY", {"min_fixes": 3, "max_median_interval_s": 60}),
    ("spoof_detector", "1.0.0", "PRIMARY", {"method": "implied_speed", "max_speed_kn": 60, "min_jump_nm": 0.1}),
    (
        "spoof_detector",
        "2.0.0",
        "CHALLENGER",
        {"method": "sog_consistency", "sog_factor": 1.5, "slack_nm": 0.02, "min_jump_nm": 0.02},
    ),
    ("dark_gap_detector", "1.0.0", "PRIMARY", {"threshold_s": 600, "min_sog_kn": 1.0}),
    ("dark_gap_detector", "1.1.0", "SHADOW", {"threshold_s": 300, "min_sog_kn": 1.0}),
    ("identity_collision", "1.0.0", "PRIMARY", {"max_speed_kn": 60, "min_fixes": 3, "min_separation_nm": 1.0}),
    ("alert_router", "1.0.0", "PRIMARY", {"max_alerts": 50}),
]
#: (model_id, depends_on); the example classes also declare these in depends_on.
DEMO_DEPENDENCIES = [
    ("track_quality", "ais_ingest"),
    ("spoof_detector", "ais_ingest"),
    ("dark_gap_detector", "ais_ingest"),
    ("identity_collision", "ais_ingest"),
    ("alert_router", "spoof_detector"),
    ("alert_router", "dark_gap_detector"),
    ("alert_router", "identity_collision"),
    ("alert_router", "track_quality"),
]


def seed_demo_if_empty(conn: PgConnection) -> bool:
    """Insert the demo registry when there are no versions at all; True if it did."""
    q = queries("registry/demo.sql")
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_registry"])
        cur.execute(q["count_versions"])
        if fetch_value(cur):
            return False
        for model_id, version, role, params in DEMO_VERSIONS:
            cur.execute(
                q["insert_version"],
                {"model_id": model_id, "version": version, "role": role, "params": json.dumps(params)},
            )
        for model_id, depends_on in DEMO_DEPENDENCIES:
            cur.execute(q["insert_dependency"], {"model_id": model_id, "depends_on": depends_on})
    log.info("seeded the demo registry: %d versions, %d dependencies", len(DEMO_VERSIONS), len(DEMO_DEPENDENCIES))
    return True
