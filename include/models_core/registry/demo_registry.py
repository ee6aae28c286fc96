"""The demo registry: versions and dependencies of the example models, seeded when empty."""
from __future__ import annotations

import json
import logging

from psycopg2.extensions import connection as PgConnection

from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

#: (model_id, version, role, params)
DEMO_VERSIONS = [
    ("ais_ingest", "1.0.0", "PRIMARY", {"vessels": 40}),
    ("track_quality", "1.1.0", "PRIMARY", {"min_points": 3}),
    ("track_quality", "1.2.0", "SHADOW", {"min_points": 2}),
    ("anomaly_score", "2.0.0", "PRIMARY", {"threshold": 0.7}),
    ("anomaly_score", "2.1.0", "CHALLENGER", {"threshold": 0.6}),
    ("alert_router", "1.0.0", "PRIMARY", {"max_alerts": 10}),
]
#: (model_id, depends_on); the example classes also declare these in depends_on.
DEMO_DEPENDENCIES = [
    ("track_quality", "ais_ingest"),
    ("anomaly_score", "track_quality"),
    ("alert_router", "anomaly_score"),
]


def seed_demo_if_empty(conn: PgConnection) -> bool:
    """Insert the demo registry when there are no versions at all; True if it did."""
    q = queries("registry/demo.sql")
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_registry"])
        cur.execute(q["count_versions"])
        if cur.fetchone()[0]:
            return False
        for model_id, version, role, params in DEMO_VERSIONS:
            cur.execute(q["insert_version"], {"model_id": model_id, "version": version, "role": role,
                                              "params": json.dumps(params)})
        for model_id, depends_on in DEMO_DEPENDENCIES:
            cur.execute(q["insert_dependency"], {"model_id": model_id, "depends_on": depends_on})
    log.info("seeded the demo registry: %d versions, %d dependencies", len(DEMO_VERSIONS), len(DEMO_DEPENDENCIES))
    return True
