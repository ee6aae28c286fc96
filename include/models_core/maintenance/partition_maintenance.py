"""Partition maintenance: premake future months, move DEFAULT rows home, apply retention.

Run by the ``detection_model_partitions`` DAG. Safe to run twice (the second run changes
nothing) and twice at once (a session advisory lock lets one run work; the other skips and
says so). Every run is recorded in detection_model_maintenance_runs, so a stale
maintenance shows up in the snapshots.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from models_core.store.partitions import (
    DDL_LOCK_TIMEOUT,
    OUTPUTS_TABLE,
    add_months,
    create_month_partition,
    detached_name,
    list_partitions,
    month_bounds,
)
from models_core.store.sql_files import fetch_value, queries

log = logging.getLogger(__name__)

KIND = "partitions"


@dataclass
class MaintenanceReport:
    """What one maintenance run did."""

    status: str = "SUCCESS"
    created: list[str] = field(default_factory=list)
    moved_from_default: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    detached_as: dict[str, str] = field(default_factory=dict)  # partition -> the name it is kept under
    retention_mode: str = "drop"
    retention_cutoff: str = ""
    deleted_old_rows: dict[str, int] = field(default_factory=dict)


def _months_in_default(conn: PgConnection, schema: str) -> set[datetime]:
    default = sql.Identifier(schema, OUTPUTS_TABLE + "_default")
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT DISTINCT date_trunc('month', cycle_started_at AT TIME ZONE 'UTC') FROM {}").format(default)
        )
        months = {row[0].replace(tzinfo=UTC) for row in cur.fetchall()}
    conn.rollback()
    return months


def _remove_partition(conn: PgConnection, schema: str, partition: str, mode: str) -> str | None:
    """Detach (a short lock on the parent, bounded by lock_timeout), then drop or rename it aside.

    Returns the name a detached partition is kept under.
    """
    part = sql.Identifier(schema, partition)
    kept = None if mode == "drop" else detached_name(partition)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (DDL_LOCK_TIMEOUT,))
        cur.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(schema, OUTPUTS_TABLE), part))
        if kept is None:
            cur.execute(sql.SQL("DROP TABLE {}").format(part))
        else:
            cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(part, sql.Identifier(kept)))
    return kept


def maintain_partitions(
    conn: PgConnection, schema: str, *, now: datetime, months_ahead: int, retention_months: int, retention_mode: str
) -> MaintenanceReport:
    """One maintenance run; returns what it did (also recorded in the database)."""
    started = datetime.now(UTC)
    q = queries("maintenance/maintenance.sql")
    with conn.cursor() as cur:
        cur.execute(q["try_lock"], {"schema": schema})
        locked = fetch_value(cur)
    conn.commit()
    if not locked:
        log.warning("another partition maintenance run holds the lock for schema %s; this run skips", schema)
        report = MaintenanceReport(status="SKIPPED", retention_mode=retention_mode)
        _record(conn, started, report)
        return report
    try:
        report = _maintain(conn, schema, now, months_ahead, retention_months, retention_mode)
    except Exception as exc:
        conn.rollback()
        _record(
            conn,
            started,
            MaintenanceReport(status="FAILED", retention_mode=retention_mode),
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    finally:
        with conn.cursor() as cur:
            cur.execute(q["unlock"], {"schema": schema})
        conn.commit()
    _record(conn, started, report)
    return report


def _maintain(
    conn: PgConnection, schema: str, now: datetime, months_ahead: int, retention_months: int, retention_mode: str
) -> MaintenanceReport:
    current, _ = month_bounds(now)
    cutoff = add_months(current, -retention_months)
    report = MaintenanceReport(retention_mode=retention_mode, retention_cutoff=cutoff.isoformat())

    existing = {p.start for p in list_partitions(conn, schema) if not p.is_default}
    wanted = {add_months(current, k) for k in range(months_ahead + 1)} | _months_in_default(conn, schema)
    for month in sorted(wanted - existing):
        moved = create_month_partition(conn, schema, month)
        if moved is None:
            continue
        name = f"{OUTPUTS_TABLE}_p{month:%Y%m}"
        report.created.append(name)
        if moved:
            report.moved_from_default[name] = moved

    for partition in list_partitions(conn, schema):
        # Only partitions whose whole range is older than the cutoff: their bounds guarantee
        # they hold no row inside the retention window (the DEFAULT partition has no bounds).
        if partition.end is None or partition.end > cutoff:
            continue
        kept = _remove_partition(conn, schema, partition.name, retention_mode)
        report.removed.append(partition.name)
        if kept:
            report.detached_as[partition.name] = kept
        log.info(
            "retention: %s partition %s.%s (older than %s)",
            f"detached (kept as {kept})" if kept else "dropped",
            schema,
            partition.name,
            cutoff.date(),
        )

    if retention_mode == "drop":
        q = queries("maintenance/maintenance.sql")
        with conn, conn.cursor() as cur:
            for table, query in (
                ("metrics", "delete_old_metrics"),
                ("backtest_metrics", "delete_old_backtest_metrics"),
                ("cycle_summaries", "delete_old_summaries"),
                ("task_outcomes", "delete_old_outcomes"),
            ):
                cur.execute(q[query], {"cutoff": cutoff})
                if cur.rowcount:
                    report.deleted_old_rows[table] = cur.rowcount
    log.info(
        "partition maintenance of %s: created %s, moved %s, removed %s, old rows deleted %s",
        schema,
        report.created or "none",
        report.moved_from_default or "none",
        report.removed or "none",
        report.deleted_old_rows or "none",
    )
    return report


def _record(conn: PgConnection, started: datetime, report: MaintenanceReport, error: str | None = None) -> None:
    details = asdict(report) | ({"error": error} if error else {})
    with conn, conn.cursor() as cur:
        cur.execute(
            queries("maintenance/maintenance.sql")["record_run"],
            {"kind": KIND, "started_at": started, "status": report.status, "details": json.dumps(details)},
        )
