"""Monthly partitions of detection_model_run_outputs.

A partition is created standalone with a CHECK constraint matching its bounds and then
attached: ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so writers keep
going, and the CHECK spares the validation scan. Rows of that month already sitting in the
DEFAULT partition are moved into the new partition in the same transaction, so they never
block its creation. Cycles call :func:`ensure_month_partition` for their own month; the
maintenance DAG premakes future months and applies retention (``partition_maintenance``).
A partition detached by retention is renamed ``..._detached_<UTC time>``, so its month can
get a new partition if rows of that month arrive later (a backfill); a table left under a
partition's name without being attached is moved aside the same way when that month is made.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from models_core.store.sql_files import fetch_value, queries

log = logging.getLogger(__name__)

OUTPUTS_TABLE = "detection_model_run_outputs"
DEFAULT_SUFFIX = "_default"
#: DDL waits at most this long for a lock instead of queueing writers behind it.
DDL_LOCK_TIMEOUT = "10s"
_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """An attached partition and its [start, end) range; ``start`` is None for DEFAULT."""

    name: str
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """[first instant of the UTC month, first instant of the next month)."""
    moment = moment.astimezone(UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def add_months(month_start: datetime, months: int) -> datetime:
    """The first instant of the month ``months`` after (or before) ``month_start``."""
    index = month_start.year * 12 + month_start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, moment: datetime) -> str:
    """``<table>_pYYYYMM`` for the UTC month holding ``moment``."""
    start, _ = month_bounds(moment)
    return f"{table}_p{start:%Y%m}"


def detached_name(partition: str, now: datetime | None = None) -> str:
    """The name a detached partition is kept under: out of the way of its month's next partition."""
    return f"{partition}_detached_{(now or datetime.now(UTC)):%Y%m%d%H%M%S}"


def list_partitions(conn: PgConnection, schema: str, table: str = OUTPUTS_TABLE) -> list[Partition]:
    """The table's partitions as they are attached now (bounds read in UTC)."""
    parent = sql.Identifier(schema, table).as_string(conn)
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(queries("store/partitions.sql")["list_partitions"], {"parent": parent})
        rows = cur.fetchall()
    conn.rollback()
    found = []
    for name, bound in rows:
        match = _BOUND.match(bound or "")
        if bound == "DEFAULT":
            found.append(Partition(name, None, None))
        elif match:
            found.append(Partition(name, datetime.fromisoformat(match[1]), datetime.fromisoformat(match[2])))
        else:
            log.warning("partition %s.%s has bounds %r that are not a month range; left alone", schema, name, bound)
    return found


def create_month_partition(
    conn: PgConnection, schema: str, month_start: datetime, table: str = OUTPUTS_TABLE
) -> int | None:
    """Create and attach the partition of ``month_start``'s month in one transaction.

    Returns the number of rows moved into it from the DEFAULT partition, or None when the
    partition was already attached. Raises on a lock timeout, leaving nothing half-made.
    """
    start, end = month_bounds(month_start)
    name = partition_name(table, start)
    q = queries("store/partitions.sql")
    part = sql.Identifier(schema, name)
    parent = sql.Identifier(schema, table)
    default = sql.Identifier(schema, table + DEFAULT_SUFFIX)
    check = sql.Identifier(f"{name}_bounds")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (DDL_LOCK_TIMEOUT,))
        # SHARE UPDATE EXCLUSIVE, the mode ATTACH needs anyway: writers keep going, while two
        # creators queue here (no deadlock between two months) and the second one, having
        # taken the lock, sees the first one's table in the catalog.
        cur.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(parent))
        cur.execute(q["partition_attached"], {"parent": parent.as_string(conn), "name": name})
        if fetch_value(cur):
            return None
        cur.execute(q["table_exists"], {"qualified": part.as_string(conn)})
        if fetch_value(cur):
            aside = detached_name(name)
            log.warning(
                "%s.%s exists but is not attached (detached earlier?); renamed to %s to make the month's partition",
                schema,
                name,
                aside,
            )
            cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(part, sql.Identifier(aside)))
        cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(part, parent))
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (cycle_started_at >= %s AND cycle_started_at < %s)").format(
                part, check
            ),
            (start, end),
        )
        cur.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE cycle_started_at >= %s AND cycle_started_at < %s"
                " RETURNING *) INSERT INTO {} SELECT * FROM moved"
            ).format(default, part),
            (start, end),
        )
        moved = cur.rowcount
        cur.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(parent, part),
            (start, end),
        )
        cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(part, check))
    if moved:
        log.warning("partition %s.%s: moved %d rows of that month out of the DEFAULT partition", schema, name, moved)
    log.info("created partition %s.%s for [%s, %s)", schema, name, start.date(), end.date())
    return moved


def ensure_month_partition(conn: PgConnection, schema: str, moment: datetime, table: str = OUTPUTS_TABLE) -> None:
    """Make sure the month of ``moment`` has its own partition attached before a cycle writes."""
    name = partition_name(table, moment)
    with conn.cursor() as cur:
        cur.execute(
            queries("store/partitions.sql")["partition_attached"],
            {"parent": sql.Identifier(schema, table).as_string(conn), "name": name},
        )
        attached = fetch_value(cur)
    conn.rollback()
    if not attached:
        create_month_partition(conn, schema, moment, table)
