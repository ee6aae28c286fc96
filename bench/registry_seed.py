"""A registry at scale, written with COPY: models, versions, their audit, approvals, and history.

``seed_registry(conn, schema, Scale(models=1000))`` builds what a large deployment holds,
the same for the same scale and end time:

- ``versions_per_model`` versions per model (100 by default), the newest ``active`` of them
  ACTIVE (the first PRIMARY, the others SHADOW and CHALLENGER in turn), a few INACTIVE, one in
  ERROR on every 25th model, the rest ARCHIVED; each with params, a description, tags
  (``team``, ``validated``, ``data_version``) and a metadata document;
- the audit of every version as the product writes it (registered, activated, promoted or
  archived, deactivated, put in ERROR), so history and ``primary_at`` replay real trails;
- dependencies (each model on up to two earlier ones), quality gates, stage checks and
  self-healing policies on some models; approvals required on every 10th model, with
  decided requests and their votes, and a pending request on every 20th;
- ``days`` of history for the ACTIVE versions, one cycle every ``cycle_minutes``: a task
  outcome per version and cycle (1 in 50 failed), its metrics (``cycle_duration_ms`` and
  ``output_count`` from the framework, the model's ``score_mean``, a shadow's
  ``eval_agreement``), a cycle summary per cycle; and for the last ``output_hours`` the
  run outputs (two rows per version and cycle) the snapshots compare shadows on.

Everything goes in with ``COPY ... FROM STDIN`` (psycopg2's ``copy_expert``), the rows
generated in Python, in one transaction with the session's triggers off
(``session_replication_role = replica``): the audit rows are written as the product would
have written them, not once more by the triggers. Then ``ANALYZE``, as autovacuum would
after such a load.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

from bench.workload import reset_registry
from models_core.maintenance.partition_maintenance import maintain_partitions

TEAMS = 20
METRIC_KEYS = ("cycle_duration_ms", "output_count", "score_mean")
#: Tables the seed gives ids: their identities continue after the largest.
_WITH_IDS = ("detection_model_versions", "detection_model_transitions", "detection_model_approval_requests")
#: Rows per COPY statement of the history: bounded memory whatever the scale.
_CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class Scale:
    """How big a registry :func:`seed_registry` builds."""

    models: int
    versions_per_model: int = 100
    active: int = 5
    days: int = 90
    cycle_minutes: int = 60
    output_hours: int = 24

    @property
    def versions(self) -> int:
        return self.models * self.versions_per_model

    @property
    def active_versions(self) -> int:
        return self.models * self.active

    def describe(self) -> str:
        return (
            f"{self.models:,} models x {self.versions_per_model} versions, {self.active} ACTIVE each, "
            f"{self.days} days of cycles every {self.cycle_minutes} min"
        )


@dataclass(frozen=True)
class Version:
    id: int
    model_id: str
    index: int  # 0 = oldest of its model
    version: str
    status: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class Seeded:
    """What was written: counts per table, and names the benchmark reads by."""

    scale: Scale
    end: datetime
    rows: dict[str, int]
    model_ids: list[str]
    active: list[Version]

    def model(self, position: float) -> str:
        """The model at ``position`` (0..1) of the sorted model ids: the same one at every run."""
        return self.model_ids[min(len(self.model_ids) - 1, int(position * len(self.model_ids)))]

    def primary_of(self, model_id: str) -> Version:
        return next(v for v in self.active if v.model_id == model_id and v.role == "PRIMARY")

    def challenger_of(self, model_id: str) -> Version:
        return next(v for v in self.active if v.model_id == model_id and v.role != "PRIMARY")


def model_id_of(number: int) -> str:
    return f"model_{number:05d}"


def version_string(index: int) -> str:
    """0 -> 1.0.0, 99 -> 1.9.9, 100 -> 2.0.0: newer versions sort higher."""
    return f"{index // 100 + 1}.{index // 10 % 10}.{index % 10}"


def team_of(number: int) -> str:
    return f"team_{number % TEAMS:02d}"


def _status_role(scale: Scale, number: int, index: int) -> tuple[str, str]:
    first_active = scale.versions_per_model - scale.active
    if index >= first_active:
        offset = index - first_active
        return "ACTIVE", "PRIMARY" if offset == 0 else ("SHADOW" if offset % 2 else "CHALLENGER")
    if index == first_active - 1 and number % 25 == 0:
        return "ERROR", "SHADOW"
    if index >= first_active - 4:
        return "INACTIVE", "SHADOW"
    return "ARCHIVED", "PRIMARY" if _was_primary(scale, index) else "SHADOW"


def _was_primary(scale: Scale, index: int) -> bool:
    """Every 5th archived version was the PRIMARY once, until the next one was promoted."""
    return index % 5 == 0 and index < scale.versions_per_model - scale.active - 4


def versions(scale: Scale, end: datetime) -> list[Version]:
    """Every version, ids from 1 in (model, index) order, created a day apart (the newest ``days``
    and more before ``end``)."""
    found = []
    for number in range(scale.models):
        model_id = model_id_of(number)
        for index in range(scale.versions_per_model):
            status, role = _status_role(scale, number, index)
            created = end - timedelta(days=scale.days + scale.versions_per_model - index, minutes=number % 60)
            found.append(
                Version(
                    number * scale.versions_per_model + index + 1,
                    model_id,
                    index,
                    version_string(index),
                    status,
                    role,
                    created,
                )
            )
    return found


def _text(value: object) -> str:
    """One COPY text field: NULL as ``\\N``, backslash, tab and newline escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _line(*values: object) -> str:
    return "\t".join(map(_text, values)) + "\n"


def _copy(
    conn: PgConnection, table: str, columns: tuple[str, ...], lines: Iterable[str], *, freeze: bool = False
) -> int:
    """COPY ``lines`` into ``table`` in chunks of :data:`_CHUNK_ROWS`; the number of rows.

    ``freeze`` (a table truncated in this transaction): the rows are written frozen and their
    pages all-visible, as autovacuum leaves an insert-only table, so index-only scans need not
    visit the table: what the history of a running deployment looks like to its reads.
    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(" WITH (FREEZE)" if freeze else ""),
    )
    text = statement.as_string(conn)
    total = 0
    chunk: list[str] = []
    with conn.cursor() as cur:
        for line in lines:
            chunk.append(line)
            if len(chunk) >= _CHUNK_ROWS:
                cur.copy_expert(text, io.StringIO("".join(chunk)))
                total += len(chunk)
                chunk = []
        if chunk:
            cur.copy_expert(text, io.StringIO("".join(chunk)))
            total += len(chunk)
    return total


@contextmanager
def _indexes_built_after(conn: PgConnection, table: str) -> Iterator[None]:
    """Drop ``table``'s indexes and key constraints for the ``with`` block, then build them again
    as they were: one sorted build of each instead of millions of insertions (the
    migrations' definitions are read from the catalog, so they stay the only source)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
            (table,),
        )
        constraints = cur.fetchall()
        cur.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " WHERE i.indrelid = %s::regclass"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            " ORDER BY 1",
            (table,),
        )
        indexes = cur.fetchall()
        for name, _definition in constraints:
            cur.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
            )
        for name, _definition in indexes:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    yield
    with conn.cursor() as cur:
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for name, definition in constraints:
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
                + sql.SQL(definition)
            )
        for _name, definition in indexes:
            cur.execute(definition)


def _tags_of(v: Version) -> dict[str, str]:
    tags = {"team": team_of(int(v.model_id.rsplit("_", 1)[1])), "data_version": f"2026-{v.index % 12 + 1:02d}-01"}
    if v.status in ("ACTIVE", "ERROR") or v.index % 3 == 0:
        tags["validated"] = "true" if v.status != "ERROR" else "false"
    return tags


def _version_tag_lines(all_versions: list[Version]) -> Iterator[str]:
    """The tag table's rows (migration 0015), as its trigger writes them (the seed's triggers are off)."""
    for v in all_versions:
        for key, value in _tags_of(v).items():
            yield _line(key, value, v.model_id, v.id)


def _version_lines(scale: Scale, all_versions: list[Version]) -> Iterator[str]:
    for v in all_versions:
        number = int(v.model_id.rsplit("_", 1)[1])
        tags = _tags_of(v)
        metadata = {
            "framework": {"name": "sklearn" if number % 2 else "torch", "version": f"1.{v.index % 7}"},
            "training_data": {"source": f"ais_{team_of(number)}", "rows": 10_000 + v.index * 100},
            "created_by": f"pipeline_{number % 7}",
        }
        description = (
            f"{'vessel anomaly' if number % 3 else 'track quality'} detector for {team_of(number)}, "
            f"retrained on data of 2026-{v.index % 12 + 1:02d} (revision {v.index})"
        )
        yield _line(
            v.id,
            v.model_id,
            v.version,
            v.status,
            v.role,
            {"threshold": round(0.5 + (v.index % 10) / 100, 2), "window_minutes": 5 + number % 4 * 5},
            description,
            v.created_at,
            v.created_at,
            tags,
            metadata,
        )


def _transition_lines(scale: Scale, all_versions: list[Version]) -> Iterator[str]:
    """The audit of each version as the product writes it: registered, activated, then
    promoted (the previous PRIMARY archived in the same change), archived, deactivated or put
    in ERROR; the ACTIVE ones stay as their last row left them."""
    for v in all_versions:
        at = v.created_at
        actor = f"user_{hash_of(v.model_id) % 9}"
        common = (v.model_id, v.id, v.version)
        yield _transition(at, *common, "register", None, "DRAFT", None, "SHADOW", actor, "new version")
        first_role = "SHADOW" if v.role == "PRIMARY" or v.status != "ACTIVE" else v.role
        yield _transition(
            at + timedelta(minutes=5), *common, "activate", "DRAFT", "ACTIVE", "SHADOW", first_role, actor, None
        )
        if v.role == "PRIMARY":
            promoted = at + timedelta(hours=1)
            yield _transition(
                promoted, *common, "promote", "ACTIVE", "ACTIVE", "SHADOW", "PRIMARY", actor, "gates passed", "gated"
            )
            if v.status == "ARCHIVED":  # archived when the next PRIMARY was promoted (versions are a day apart)
                following = v.index + 5 if _was_primary(scale, v.index + 5) else scale.versions_per_model - scale.active
                yield _transition(
                    promoted + timedelta(days=following - v.index),
                    *common,
                    "promote",
                    "ACTIVE",
                    "ARCHIVED",
                    "PRIMARY",
                    "PRIMARY",
                    actor,
                    "gates passed",
                )
        elif v.status != "ACTIVE":
            action = {"ARCHIVED": "archive", "INACTIVE": "deactivate", "ERROR": "error"}[v.status]
            yield _transition(
                at + timedelta(hours=2),
                *common,
                action,
                "ACTIVE",
                v.status,
                "SHADOW",
                "SHADOW",
                "system" if action == "error" else actor,
                "3 failed cycles in a row" if action == "error" else None,
            )


def _transition(
    at: datetime,
    model_id: str,
    version_id: int,
    version: str,
    action: str,
    from_status: str | None,
    to_status: str,
    from_role: str | None,
    to_role: str,
    actor: str,
    reason: str | None,
    basis: str | None = None,
) -> str:
    kind = "system" if actor == "system" else "person"
    return _line(
        at, model_id, version_id, version, action, from_status, to_status, from_role, to_role, actor, reason,
        "api", "postgres", kind, basis,
    )  # fmt: skip


def hash_of(text: str) -> int:
    """A stable small hash (Python's ``hash`` of a str changes per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))


def cycles(scale: Scale, end: datetime) -> list[datetime]:
    """The cycles of the history, oldest first; the last one starts ``cycle_minutes`` before ``end``."""
    step = timedelta(minutes=scale.cycle_minutes)
    count = scale.days * 24 * 60 // scale.cycle_minutes
    return [end - step * (count - i) for i in range(count)]


def _history_lines(active: list[Version], stamps: list[str]) -> tuple[Iterator[str], Iterator[str]]:
    """Task outcomes and metrics of every ACTIVE version for every cycle (deterministic values)."""

    def outcomes() -> Iterator[str]:
        for c, stamp in enumerate(stamps):
            run_id = f"scheduled__{stamp}"
            for v in active:
                state = "failed" if (v.id + c) % 50 == 0 else "success"
                task = f"{v.model_id}.{v.role.lower()}_{v.id}"
                yield f"{run_id}\t{task}\t{stamp}\t{v.model_id}\t{v.id}\t{v.role}\t{state}\t{stamp}\n"

    def metrics() -> Iterator[str]:
        for c, stamp in enumerate(stamps):
            for v in active:
                prefix = f"{stamp}\t{v.model_id}\t{v.id}\t{v.role}\t"
                spread = (v.id * 7919 + c * 104729) % 1000
                yield f"{prefix}cycle_duration_ms\t{800 + spread}\tt\n"
                yield f"{prefix}output_count\t{10 + spread % 5}\tt\n"
                yield f"{prefix}score_mean\t{(spread % 100) / 100 + v.index % 7 / 10}\tf\n"
                if v.role != "PRIMARY":
                    yield f"{prefix}eval_agreement\t{0.9 + spread % 10 / 100}\tt\n"

    return outcomes(), metrics()


def _output_lines(active: list[Version], stamps: list[str]) -> Iterator[str]:
    for stamp in stamps:
        for v in active:
            for seq in range(2):
                yield (
                    f'{stamp}\t{v.model_id}\t{v.id}\t{v.role}\t{seq}\t{{"mmsi": {seq}}}\t'
                    f'{{"score": {(v.id + seq) % 3}}}\t{900 + v.id % 100}\n'
                )


def _requests(scale: Scale, all_versions: list[Version], end: datetime) -> tuple[list[str], list[str]]:
    """Approval requests of the models that need approval: five approved ones, and a pending one
    on every 20th model; with their votes."""
    requests: list[str] = []
    votes: list[str] = []
    by_model: dict[str, list[Version]] = {}
    for v in all_versions:
        by_model.setdefault(v.model_id, []).append(v)
    request_id = 0
    for number in range(0, scale.models, 10):
        model_id = model_id_of(number)
        promoted = [v for v in by_model[model_id] if v.role == "PRIMARY"][-5:]
        for v in promoted:
            request_id += 1
            asked = v.created_at + timedelta(minutes=30)
            requests.append(
                _line(
                    request_id, model_id, "promote", v.id, v.version, None, "APPROVED", "user_1", "person", asked,
                    asked + timedelta(days=3), "gates passed", False, False, 168, [], [], "user_2",
                    asked + timedelta(minutes=20), "approved",
                )
            )  # fmt: skip
            votes.append(_line(request_id, model_id, "user_2", asked + timedelta(minutes=20), "looks good"))
        if number % 20 == 0:
            request_id += 1
            v = next(v for v in by_model[model_id] if v.status == "ACTIVE" and v.role != "PRIMARY")
            asked = end - timedelta(hours=3)
            requests.append(
                _line(
                    request_id, model_id, "promote", v.id, v.version, None, "PENDING", "user_1", "person", asked,
                    asked + timedelta(days=3), "better agreement", False, False, 168, [], [], None, None, None,
                )
            )  # fmt: skip
    return requests, votes


def seed_registry(conn: PgConnection, schema: str, scale: Scale, *, end: datetime | None = None) -> Seeded:
    """Migrate, empty the registry and write ``scale``'s registry in one transaction; ANALYZE after.

    ``end``: when the history ends (default: now, to the minute), so that reads of "the last
    24 hours" find it.
    """
    end = end or datetime.now(UTC).replace(second=0, microsecond=0)
    reset_registry(conn, schema)
    retention = scale.days // 28 + 2
    maintain_partitions(conn, schema, now=end, months_ahead=1, retention_months=retention, retention_mode="drop")
    all_versions = versions(scale, end)
    active = [v for v in all_versions if v.status == "ACTIVE"]
    stamps = [c.isoformat() for c in cycles(scale, end)]
    output_from = end - timedelta(hours=scale.output_hours)
    rows: dict[str, int] = {}
    with conn:
        with conn.cursor() as cur:  # the history is written as it was, not audited again by the triggers
            cur.execute("SET LOCAL session_replication_role = replica")
        rows["versions"] = _copy(
            conn,
            "detection_model_versions",
            ("id", "model_id", "version", "status", "role", "params", "description", "created_at", "updated_at",
             "tags", "metadata"),
            _version_lines(scale, all_versions),
        )  # fmt: skip
        with conn.cursor() as cur:  # truncated in this transaction, so COPY may FREEZE its rows
            cur.execute("TRUNCATE detection_model_version_tags")
        rows["version_tags"] = _copy(
            conn,
            "detection_model_version_tags",
            ("key", "value", "model_id", "version_id"),
            _version_tag_lines(all_versions),
            freeze=True,
        )
        rows["transitions"] = _copy(
            conn,
            "detection_model_transitions",
            ("at", "model_id", "version_id", "version", "action", "from_status", "to_status", "from_role", "to_role",
             "actor", "reason", "source", "db_user", "actor_kind", "basis"),
            _transition_lines(scale, all_versions),
        )  # fmt: skip
        rows["dependencies"] = _copy(
            conn,
            "detection_model_dependencies",
            ("model_id", "depends_on"),
            (
                _line(model_id_of(n), model_id_of(up))
                for n in range(1, scale.models)
                for up in sorted({n - 1, n // 2} - {n})
            ),
        )
        rows["quality_gates"] = _copy(
            conn,
            "detection_model_quality_gates",
            ("model_id", "min_cycles", "max_failure_rate", "min_agreement", "metric_thresholds"),
            (
                _line(model_id_of(n), 12, 0.05, 0.8 if n % 2 else None, {"score_mean": {"min": 0.1}})
                for n in range(0, scale.models, 5)
            ),
        )
        rows["stage_checks"] = _copy(
            conn,
            "detection_model_stage_checks",
            ("model_id", "required_tags", "require_description"),
            (_line(model_id_of(n), "{validated=true}", True) for n in range(3, scale.models, 10)),
        )
        rows["approval_settings"] = _copy(
            conn,
            "detection_model_approval_settings",
            ("model_id", "required", "approvers", "min_approvals"),
            (_line(model_id_of(n), True, "{}", 1) for n in range(0, scale.models, 10)),
        )
        requests, votes = _requests(scale, all_versions, end)
        rows["approval_requests"] = _copy(
            conn,
            "detection_model_approval_requests",
            ("id", "model_id", "kind", "version_id", "version", "change", "status", "requested_by",
             "requested_by_kind", "requested_at", "expires_at", "reason", "forced", "keep_previous_as_shadow",
             "window_hours", "checks", "gates", "decided_by", "decided_at", "decision_reason"),
            requests,
        )  # fmt: skip
        rows["approval_votes"] = _copy(
            conn, "detection_model_approval_votes", ("request_id", "model_id", "approver", "at", "reason"), votes
        )
        rows["healing_policies"] = _copy(
            conn,
            "detection_model_healing_policies",
            ("model_id", "error_after_failures", "on_primary_error"),
            (_line(model_id_of(n), 3, "rollback" if n % 2 else "alert") for n in range(7, scale.models, 20)),
        )
        rows["healing_events"] = _copy(
            conn,
            "detection_model_healing_events",
            ("at", "model_id", "version_id", "version", "kind", "dag_run_id", "cycle_started_at", "message"),
            (
                _line(
                    v.created_at + timedelta(hours=2), v.model_id, v.id, v.version, "error", f"scheduled__{v.id}",
                    v.created_at + timedelta(hours=2), "3 failed cycles in a row",
                )
                for v in all_versions
                if v.status == "ERROR"
            ),
        )  # fmt: skip
        with conn.cursor() as cur:  # truncated in this transaction, so COPY may FREEZE their rows
            cur.execute("TRUNCATE detection_model_task_outcomes, detection_model_metrics")
        outcomes, metrics = _history_lines(active, stamps)
        with _indexes_built_after(conn, "detection_model_task_outcomes"):
            rows["task_outcomes"] = _copy(
                conn,
                "detection_model_task_outcomes",
                ("dag_run_id", "task_id", "cycle_started_at", "model_id", "version_id", "role", "state", "recorded_at"),
                outcomes,
                freeze=True,
            )
        with _indexes_built_after(conn, "detection_model_metrics"):
            rows["metrics"] = _copy(
                conn,
                "detection_model_metrics",
                ("cycle_started_at", "model_id", "version_id", "role", "metric_key", "metric_value", "is_default"),
                metrics,
                freeze=True,
            )
        rows["cycle_summaries"] = _copy(
            conn,
            "detection_model_cycle_summaries",
            ("dag_run_id", "cycle_started_at", "executed", "failed", "skipped_missing_upstream", "skipped_inactive",
             "shadows_ran", "shadows_failed"),
            (_line(f"scheduled__{s}", s, scale.models, 0, 0, 0, len(active) - scale.models, 0) for s in stamps),
        )  # fmt: skip
        rows["run_outputs"] = _copy(
            conn,
            "detection_model_run_outputs",
            ("cycle_started_at", "model_id", "version_id", "role", "output_seq", "input_ref", "outputs",
             "cycle_duration_ms"),
            _output_lines(active, [s for s, c in zip(stamps, cycles(scale, end)) if c >= output_from]),
        )  # fmt: skip
        with conn.cursor() as cur:
            for table in _WITH_IDS:
                cur.execute(
                    sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))").format(
                        sql.Literal(table), sql.Identifier(table)
                    )
                )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
    finally:
        conn.autocommit = False
    return Seeded(scale, end, rows, [model_id_of(n) for n in range(scale.models)], active)
