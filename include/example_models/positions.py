"""The ``ais_positions`` table: the ingest writes a cycle's positions, the detectors read them.

Positions travel through this table, not through ``ctx.shared``: a cycle holds thousands of
fixes (hundreds of thousands in the scale benchmark), and the run-output table keeps one
row per vessel and model, which is the grain the detectors report at.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime

from psycopg2.extensions import connection as PgConnection

from example_models.replay import Position
from models_core.store.sql_files import queries


def _sql() -> dict[str, str]:
    return queries("positions.sql", package="example_models")


def _copy_value(value: float | None) -> str:
    return r"\N" if value is None else repr(value)


def _copy_text(cycle: datetime, positions: Iterable[Position]) -> str:
    cycle_text = cycle.isoformat()

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, tz=UTC).isoformat()

    return "".join(
        f"{cycle_text}\t{p.mmsi}\t{stamp(p.t)}\t{p.lat!r}\t{p.lon!r}\t{_copy_value(p.sog_kn)}\t"
        f"{_copy_value(p.cog_deg)}\t{stamp(p.recorded_t)}\n"
        for p in positions
    )


def store_positions(conn: PgConnection, cycle: datetime, positions: Iterable[Position], retention_hours: float) -> int:
    """Replace the cycle's positions in one committed transaction; return how many were stored.

    Deleting the cycle's earlier rows first makes a retry, a clear or a backfill leave
    exactly one copy. Rows loaded more than ``retention_hours`` ago are dropped on the way.
    """
    q = _sql()
    text = _copy_text(cycle, positions)
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_positions"])
        cur.execute(q["create_table"])
        cur.execute(q["delete_expired"], {"hours": retention_hours})
        cur.execute(q["delete_cycle"], {"cycle": cycle})
        cur.copy_expert(q["copy_positions"], io.StringIO(text))
        return cur.rowcount


def cycle_positions(conn: PgConnection, cycle: datetime) -> list[Position]:
    """The cycle's positions (window and history), ordered by vessel and time."""
    with conn.cursor() as cur:
        cur.execute(_sql()["cycle_positions"], {"cycle": cycle})
        rows = [Position(*row) for row in cur.fetchall()]
    conn.rollback()  # end the read transaction rather than leave it open for the rest of the run
    return rows
