"""Storing a version's result for a cycle, and loading it back for downstream models.

A result is written in one transaction that re-checks, under a share lock, that the version
is still ACTIVE in its role, then deletes the earlier rows of its slot (the model's PRIMARY
rows of that cycle, or that version's rows in that role) and writes the new ones, so a
retry, a cleared task, a backfill or a promotion in between leaves exactly one set of rows,
credited to the version that ran. Outputs are encoded once, checked on the way, on a second
thread while COPY streams them to the server; metrics, a handful per result, go through one
multi-row INSERT.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from psycopg2.extras import execute_values

from models_core.cycle.copy_stream import EncodingCopyStream
from models_core.errors import VersionNotActiveError
from models_core.model import METRIC_KEY_MAX_LEN, ModelResult, Role, encode_pairs
from models_core.store.partitions import OUTPUTS_TABLE, ensure_month_partition
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

_OUTPUT_COLUMNS = (
    "cycle_started_at",
    "model_id",
    "version_id",
    "role",
    "output_seq",
    "input_ref",
    "outputs",
    "cycle_duration_ms",
)


@dataclass(frozen=True)
class ResultRef:
    """What goes through XCom: enough to find the stored result, a few hundred bytes."""

    model_id: str
    version_id: int
    version: str
    role: str
    cycle_started_at: str  # ISO-8601, UTC
    output_count: int
    duration_ms: float

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> ResultRef:
        return cls(**value)

    @property
    def cycle(self) -> datetime:
        return datetime.fromisoformat(self.cycle_started_at)


def metric_rows(
    result: ModelResult, cycle: datetime, duration_ms: float, derived: dict[str, float] | None = None
) -> list[tuple]:
    """Rows for detection_model_metrics: the model's metrics plus the framework's.

    The framework's (``cycle_duration_ms``, ``output_count`` and any ``derived`` ones such
    as a shadow's evaluation) are flagged ``is_default`` and never shadow a model's own.
    A key longer than the column allows is dropped with a warning; the others are kept.
    """
    role = Role(result.role).value
    metrics = {key: (float(value), False) for key, value in result.metrics.items()}
    metrics.setdefault("cycle_duration_ms", (float(duration_ms), True))
    metrics.setdefault("output_count", (float(len(result.outputs_per_input)), True))
    for key, value in (derived or {}).items():
        metrics.setdefault(key, (value, True))
    rows = []
    for key, (value, is_default) in metrics.items():
        if len(key) > METRIC_KEY_MAX_LEN:
            log.warning(
                "%s@%s: metric_key %r is %d characters (limit %d); dropping this metric only",
                result.model_id,
                result.version_id,
                key,
                len(key),
                METRIC_KEY_MAX_LEN,
            )
            continue
        rows.append((cycle, result.model_id, result.version_id, role, key, value, is_default))
    return rows


#: Rows per piece of the COPY stream: about 64 KiB, less than a socket's send buffer.
_ROWS_PER_PIECE = 512


def _copy_pieces(result: ModelResult, cycle: datetime, duration_ms: float, who: str) -> Iterator[str]:
    """The COPY text of the outputs, :data:`_ROWS_PER_PIECE` rows at a time."""
    prefix = "\t".join((cycle.isoformat(), result.model_id, str(result.version_id), Role(result.role).value))
    whole_ms = round(duration_ms)  # the column is integer milliseconds, as in the seed
    lines: list[str] = []
    for seq, (input_ref, output) in enumerate(encode_pairs(result, who)):
        lines.append(f"{prefix}\t{seq}\t{input_ref}\t{output}\t{whole_ms}\n")
        if len(lines) == _ROWS_PER_PIECE:
            yield _for_copy("".join(lines))
            lines = []
    if lines:
        yield _for_copy("".join(lines))


def _for_copy(text: str) -> str:
    """COPY's text format treats backslash as an escape; JSON never holds raw tabs or newlines.

    Only the JSON columns can hold a backslash (model ids, roles and timestamps cannot), so
    a whole piece is escaped at once.
    """
    return text.replace("\\", "\\\\")


def copy_outputs(cur: Any, schema: str, result: ModelResult, cycle: datetime, duration_ms: float, who: str) -> None:
    """COPY the result's outputs into the run-output table in the caller's transaction; a pair
    that cannot be stored raises :class:`ResultValidationError` naming it (nothing is kept)."""
    if not result.outputs_per_input:
        return
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema, OUTPUTS_TABLE), sql.SQL(", ").join(map(sql.Identifier, _OUTPUT_COLUMNS))
    )
    with EncodingCopyStream(_copy_pieces(result, cycle, duration_ms, who)) as stream:
        try:
            cur.copy_expert(copy.as_string(cur.connection), stream)
        except psycopg2.Error:
            if stream.error is not None:
                raise stream.error from None
            raise


def persist_result(
    conn: PgConnection,
    schema: str,
    result: ModelResult,
    cycle: datetime,
    duration_ms: float,
    version: str,
    derived_metrics: dict[str, float] | None = None,
) -> ResultRef:
    """Replace the stored result of this version's slot in the cycle with ``result``, atomically.

    Raises :class:`VersionNotActiveError` (nothing written) when the version is no longer
    ACTIVE in the result's role, and :class:`ResultValidationError` naming the pair for an
    output that cannot be stored.
    """
    ensure_month_partition(conn, schema, cycle)
    q = queries("cycle/results.sql")
    role = Role(result.role).value
    who = f"{result.model_id}@{version}[{role}]"
    key = {"model_id": result.model_id, "version_id": result.version_id, "role": role, "cycle": cycle}
    primary = role == Role.PRIMARY.value
    metrics = metric_rows(result, cycle, duration_ms, derived_metrics)
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_primary_slot" if primary else "lock_version_slot"], key)
        cur.execute(q["version_state_for_write"], key)
        state = cur.fetchone()
        if state is None or tuple(state) != ("ACTIVE", role):
            raise VersionNotActiveError(who, *(state or ("deleted", None)))
        cur.execute(q["delete_primary_outputs" if primary else "delete_version_outputs"], key)
        replaced = cur.rowcount
        cur.execute(q["delete_primary_metrics" if primary else "delete_version_metrics"], key)
        copy_outputs(cur, schema, result, cycle, duration_ms, who)
        if metrics:
            execute_values(cur, q["insert_metrics"], metrics)
    if replaced:
        log.info("%s: replaced %d earlier output rows of cycle %s", who, replaced, cycle.isoformat())
    return ResultRef(
        model_id=result.model_id,
        version_id=result.version_id,
        version=version,
        role=Role(result.role).value,
        cycle_started_at=cycle.isoformat(),
        output_count=len(result.outputs_per_input),
        duration_ms=duration_ms,
    )


def load_result(conn: PgConnection, ref: ResultRef) -> ModelResult:
    """Rebuild the ModelResult a version returned, from the stored rows.

    ``conn`` is the framework's own connection, never the one a model was given as
    ``ctx.conn``: ending this read transaction must not end the model's.
    """
    q = queries("cycle/results.sql")
    key = {"version_id": ref.version_id, "cycle": ref.cycle, "role": ref.role}
    with conn.cursor() as cur:
        cur.execute(q["load_outputs"], key)
        outputs = [(input_ref, output) for input_ref, output in cur.fetchall()]
        cur.execute(q["load_metrics"], key)
        metrics = dict(cur.fetchall())
    conn.rollback()
    if len(outputs) != ref.output_count:
        raise RuntimeError(
            f"{ref.model_id}@{ref.version}: expected {ref.output_count} stored outputs for cycle "
            f"{ref.cycle_started_at}, found {len(outputs)}; the rows changed after the task ran"
        )
    return ModelResult(
        model_id=ref.model_id,
        version_id=ref.version_id,
        role=Role(ref.role),
        outputs_per_input=outputs,
        metrics=metrics,
        duration_ms=ref.duration_ms,
    )
