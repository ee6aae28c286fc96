"""Storing a version's result for a cycle, and loading it back for downstream models.

A result is written in one transaction that first deletes that (cycle, version)'s earlier
rows, so a retry, a cleared task or a backfill leaves exactly one set of rows. Outputs go
through COPY; metrics, a handful per result, through one multi-row INSERT.
"""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from psycopg2.extras import execute_values

from models_core.model import METRIC_KEY_MAX_LEN, ModelResult, Role
from models_core.store.partitions import OUTPUTS_TABLE, ensure_month_partition
from models_core.store.sql_files import queries

log = logging.getLogger(__name__)

_OUTPUT_COLUMNS = ("cycle_started_at", "model_id", "version_id", "role", "output_seq",
                   "input_ref", "outputs", "cycle_duration_ms")


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


def metric_rows(result: ModelResult, cycle: datetime, duration_ms: float,
                derived: dict[str, float] | None = None) -> list[tuple]:
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
            log.warning("%s@%s: metric_key %r is %d characters (limit %d); dropping this metric only",
                        result.model_id, result.version_id, key, len(key), METRIC_KEY_MAX_LEN)
            continue
        rows.append((cycle, result.model_id, result.version_id, role, key, value, is_default))
    return rows


#: One encoder for every value: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json_for_copy(value: Any) -> str:
    # COPY's text format treats backslash as an escape; JSON never holds raw tabs or newlines.
    return _ENCODER.encode(value).replace("\\", "\\\\")


class _CopyBuffer(io.TextIOBase):
    """Feeds COPY from a generator of lines without building one huge string."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        chunks = [self._pending]
        length = len(self._pending)
        while size < 0 or length < size:
            line = next(self._lines, None)
            if line is None:
                break
            chunks.append(line)
            length += len(line)
        data = "".join(chunks)
        if size < 0:
            self._pending = ""
            return data
        self._pending = data[size:]
        return data[:size]


def _output_lines(result: ModelResult, cycle: datetime, duration_ms: float) -> Iterator[str]:
    prefix = "\t".join((cycle.isoformat(), result.model_id, str(result.version_id), Role(result.role).value))
    whole_ms = round(duration_ms)  # the column is integer milliseconds, as in the seed
    for seq, (input_ref, output) in enumerate(result.outputs_per_input):
        yield f"{prefix}\t{seq}\t{_json_for_copy(input_ref)}\t{_json_for_copy(output)}\t{whole_ms}\n"


def persist_result(conn: PgConnection, schema: str, result: ModelResult, cycle: datetime,
                   duration_ms: float, version: str, derived_metrics: dict[str, float] | None = None) -> ResultRef:
    """Replace this (cycle, version)'s stored result with ``result``, atomically."""
    ensure_month_partition(conn, schema, cycle)
    q = queries("cycle/results.sql")
    key = {"version_id": result.version_id, "cycle": cycle}
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema, OUTPUTS_TABLE), sql.SQL(", ").join(map(sql.Identifier, _OUTPUT_COLUMNS)))
    metrics = metric_rows(result, cycle, duration_ms, derived_metrics)
    with conn, conn.cursor() as cur:
        cur.execute(q["lock_cycle_version"], key)
        cur.execute(q["delete_outputs"], key)
        replaced = cur.rowcount
        cur.execute(q["delete_metrics"], key)
        if result.outputs_per_input:
            cur.copy_expert(copy.as_string(conn), _CopyBuffer(_output_lines(result, cycle, duration_ms)),
                            size=1 << 20)
        if metrics:
            execute_values(cur, q["insert_metrics"], metrics)
    if replaced:
        log.info("%s@%s: replaced %d earlier output rows of cycle %s",
                 result.model_id, version, replaced, cycle.isoformat())
    return ResultRef(
        model_id=result.model_id, version_id=result.version_id, version=version,
        role=Role(result.role).value, cycle_started_at=cycle.isoformat(),
        output_count=len(result.outputs_per_input), duration_ms=duration_ms,
    )


def load_result(conn: PgConnection, ref: ResultRef) -> ModelResult:
    """Rebuild the ModelResult a version returned, from the stored rows."""
    q = queries("cycle/results.sql")
    key = {"version_id": ref.version_id, "cycle": ref.cycle}
    with conn.cursor() as cur:
        cur.execute(q["load_outputs"], key)
        outputs = [(input_ref, output) for input_ref, output in cur.fetchall()]
        cur.execute(q["load_metrics"], key)
        metrics = dict(cur.fetchall())
    conn.rollback()
    if len(outputs) != ref.output_count:
        raise RuntimeError(
            f"{ref.model_id}@{ref.version}: expected {ref.output_count} stored outputs for cycle "
            f"{ref.cycle_started_at}, found {len(outputs)}; the rows changed after the task ran")
    return ModelResult(model_id=ref.model_id, version_id=ref.version_id, role=Role(ref.role),
                       outputs_per_input=outputs, metrics=metrics, duration_ms=ref.duration_ms)
