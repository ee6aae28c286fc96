"""Monthly partitions of detection_model_run_outputs.

A cycle writes into the month of its ``cycle_started_at``; when that month has no
partition yet (a backfill of an old month, or the first cycle of a new one) it is created
here, in a short transaction of its own, before the rows are written.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from models_core.sql_files import queries

log = logging.getLogger(__name__)

OUTPUTS_TABLE = "detection_model_run_outputs"


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """[first instant of the UTC month, first instant of the next month)."""
    moment = moment.astimezone(timezone.utc)
    start = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


def partition_name(table: str, moment: datetime) -> str:
    """``<table>_pYYYYMM`` for the UTC month holding ``moment``."""
    start, _ = month_bounds(moment)
    return f"{table}_p{start:%Y%m}"


def ensure_month_partition(conn: PgConnection, schema: str, moment: datetime,
                           table: str = OUTPUTS_TABLE) -> bool:
    """Make sure the month of ``moment`` has its own partition; True if one was created.

    When rows of that month already sit in the DEFAULT partition, PostgreSQL refuses the
    new partition; the rows then keep going to DEFAULT (nothing is lost) and the warning
    says so, until partition maintenance moves them.
    """
    name = partition_name(table, moment)
    q = queries("partitions.sql")
    qualified = sql.Identifier(schema, name).as_string(conn)
    with conn.cursor() as cur:
        cur.execute(q["partition_exists"], {"qualified": qualified})
        if cur.fetchone()[0]:
            conn.rollback()
            return False
    start, end = month_bounds(moment)
    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent} FOR VALUES FROM (%s) TO (%s)"
    ).format(partition=sql.Identifier(schema, name), parent=sql.Identifier(schema, table))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(q["lock_partition_ddl"], {"partition": f"{schema}.{name}"})
            cur.execute(create, (start, end))
    except psycopg2.errors.CheckViolation as exc:
        log.warning("partition %s.%s not created: rows of that month are in the DEFAULT partition (%s); "
                    "writes go to DEFAULT until maintenance moves them", schema, name, exc)
        return False
    log.info("created partition %s.%s for [%s, %s)", schema, name, start.date(), end.date())
    return True
