"""Persistence: the product's write path against a raw COPY and against the seed's INSERT.

All writers put the same rows into the same partition of the same table over one
connection opened by the product's ``registry_connection``, each run starting from an
empty table, and every run is checked to leave the identical rows. The raw COPY gets its
text pre-built (the ceiling PostgreSQL allows); the product and the seed pay for their own
encoding, as they do in a task.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime

from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from psycopg2.extras import Json, execute_values

from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_least, interleaved, timed
from bench.synthetic import realistic_outputs
from bench.workload import Registry, load_registry
from models_core.cycle.persistence import persist_result
from models_core.model import ModelResult, Role
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.partitions import OUTPUTS_TABLE, ensure_month_partition

CYCLE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MODEL, VERSION, DURATION_MS = "vessel_anomaly", "1.0.0", 1234
COLUMNS = (
    "cycle_started_at",
    "model_id",
    "version_id",
    "role",
    "output_seq",
    "input_ref",
    "outputs",
    "cycle_duration_ms",
)
_CHECKSUM = (
    "SELECT count(*), md5(string_agg(concat_ws('|', cycle_started_at, model_id, role, output_seq, input_ref,"
    " outputs, cycle_duration_ms), ',' ORDER BY output_seq)) FROM detection_model_run_outputs"
    " WHERE version_id = %s AND cycle_started_at = %s"
)


class _Writers:
    """The ways of writing ``result`` for :data:`CYCLE`, sharing one connection."""

    def __init__(self, conn: PgConnection, schema: str, result: ModelResult) -> None:
        self.conn, self.schema, self.result = conn, schema, result
        table = sql.Identifier(schema, OUTPUTS_TABLE)
        columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        self.copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns).as_string(conn)
        self.insert_sql = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(table, columns).as_string(conn)
        prefix = f"{CYCLE.isoformat()}\t{MODEL}\t{result.version_id}\t{Role.PRIMARY.value}"
        self.copy_text = "".join(
            f"{prefix}\t{seq}\t{_json(input_ref)}\t{_json(output)}\t{DURATION_MS}\n"
            for seq, (input_ref, output) in enumerate(result.outputs_per_input)
        )
        self._expected: tuple | None = None

    def empty(self) -> None:
        """An empty table and no dirty buffers: a checkpoint that the last run's ~100 MB of WAL
        would trigger must not land inside the next writer's timing (it did, at random,
        spreading the figures by +-25% on 2 cores)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute("TRUNCATE detection_model_run_outputs, detection_model_metrics")
        self.checkpoint()

    def checkpoint(self) -> None:
        self.conn.autocommit = True
        try:
            with self.conn.cursor() as cur:
                cur.execute("CHECKPOINT")
        finally:
            self.conn.autocommit = False

    def product(self) -> None:
        persist_result(self.conn, self.schema, self.result, CYCLE, DURATION_MS, VERSION)

    def raw_copy(self) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.copy_expert(self.copy_sql, io.StringIO(self.copy_text), size=1 << 20)

    def raw_replace(self) -> None:
        """The idempotent re-run done by hand: delete this (cycle, version)'s rows, COPY, one transaction."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "DELETE FROM detection_model_run_outputs WHERE version_id = %s AND cycle_started_at = %s",
                (self.result.version_id, CYCLE),
            )
            cur.copy_expert(self.copy_sql, io.StringIO(self.copy_text), size=1 << 20)

    def seed(self) -> None:
        """The seed's write: a row tuple with Json adapters per output, execute_values(page_size=200).

        ``output_seq`` is added to its column list so that it stores the same rows.
        """
        rows = [
            (
                CYCLE,
                MODEL,
                self.result.version_id,
                Role.PRIMARY.value,
                seq,
                Json(input_ref or {}),
                Json(output or {}),
                DURATION_MS,
            )
            for seq, (input_ref, output) in enumerate(self.result.outputs_per_input)
        ]
        with self.conn, self.conn.cursor() as cur:
            execute_values(cur, self.insert_sql, rows, page_size=200)

    def run(self, write: Callable[[], None], *, rerun: bool = False) -> float:
        """Seconds of one ``write`` into an empty table (or over a stored result with ``rerun``)."""
        self.empty()
        if rerun:
            self.product()
            self.checkpoint()
        seconds = timed(write)
        with self.conn, self.conn.cursor() as cur:
            cur.execute(_CHECKSUM, (self.result.version_id, CYCLE))
            stored = cur.fetchone()
        self._expected = self._expected or stored
        if stored != self._expected or stored[0] != len(self.result.outputs_per_input):
            raise RuntimeError(f"{write.__name__} stored {stored}, expected {self._expected}")
        return seconds


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("\\", "\\\\")


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    """Every figure on every server of the run (embedded first), so the table shows them side by side."""
    return env.on_every_server(lambda server: _measure(args, server.label))


def _measure(args: argparse.Namespace, server: str) -> list[Comparison]:
    version_id = load_registry(Registry([(MODEL, VERSION, "PRIMARY", {})], []))[(MODEL, VERSION)]
    result = ModelResult(
        model_id=MODEL,
        version_id=version_id,
        role=Role.PRIMARY,
        outputs_per_input=realistic_outputs(args.rows),
        metrics={"flagged": 3.0},
    )
    settings = load_settings()
    with registry_connection(settings) as conn:
        ensure_month_partition(conn, settings.schema, CYCLE)
        writers = _Writers(conn, settings.schema, result)
        seconds = interleaved(
            {
                "seed execute_values": lambda: writers.run(writers.seed),
                "raw COPY": lambda: writers.run(writers.raw_copy),
                "persist_result": lambda: writers.run(writers.product),
                "raw DELETE+COPY": lambda: writers.run(writers.raw_replace, rerun=True),
                "persist_result re-run": lambda: writers.run(writers.product, rerun=True),
            },
            runs=args.runs,
            warmup=args.warmup,
        )
        writers.empty()
    speed = {
        label: Figure.median_of(label, [args.rows / value for value in samples], "rows/s")
        for label, samples in seconds.items()
    }
    product = speed["persist_result"]
    return [
        Comparison(
            f"persist {args.rows:,} rows vs raw COPY [{server}]",
            product,
            speed["raw COPY"],
            at_least(0.9),
            "raw COPY text pre-built; product encodes its rows inside the timing",
        ),
        Comparison(
            f"persist {args.rows:,} rows vs seed INSERT [{server}]",
            product,
            speed["seed execute_values"],
            at_least(6.0),
        ),
        Comparison(
            f"re-run same cycle ({args.rows:,} rows replaced) [{server}]",
            speed["persist_result re-run"],
            speed["raw DELETE+COPY"],
            at_least(0.9),
            "idempotent re-run: the cycle's rows already stored, deleted and written again",
        ),
    ]
