"""Models that misbehave at run time, one kind each: what they return, raise or do."""

from __future__ import annotations

import time

import psycopg2

from models_core import BaseDetectionModel, ModelContext, ModelResult


def _result(model: BaseDetectionModel, outputs: list, metrics: dict | None = None, **changes) -> ModelResult:
    fields = {
        "model_id": model.model_id,
        "version_id": model.version_id,
        "role": model.role,
        "outputs_per_input": outputs,
        "metrics": metrics if metrics is not None else {"fine": 1.0},
    }
    return ModelResult(**{**fields, **changes})


def _pairs(count: int) -> list[tuple[dict, dict]]:
    return [({"i": i}, {"score": i}) for i in range(count)]


class ReturnsNone(BaseDetectionModel):
    model_id = "returns_none"

    def run(self, ctx: ModelContext) -> ModelResult:
        return None  # type: ignore[return-value]


class Raises(BaseDetectionModel):
    model_id = "raises"

    def run(self, ctx: ModelContext) -> ModelResult:
        raise RuntimeError("sensor feed offline (raised by the model on purpose)")


class Hangs(BaseDetectionModel):
    model_id = "hangs"

    def run(self, ctx: ModelContext) -> ModelResult:
        time.sleep(3600)
        return _result(self, _pairs(1))


class NanMetric(BaseDetectionModel):
    model_id = "nan_metric"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(3), {"fine": 1.0, "precision": float("nan")})


class InfMetric(BaseDetectionModel):
    model_id = "inf_metric"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(3), {"recall": float("inf")})


class HugeMetric(BaseDetectionModel):
    model_id = "huge_metric"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(3), {"flagged": 10**400})


class TextMetric(BaseDetectionModel):
    model_id = "text_metric"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(3), {"verdict": "high"})


class NonJsonOutput(BaseDetectionModel):
    model_id = "non_json_output"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, [*_pairs(4), ({"i": 4}, {"tags": {"a", "b"}})])


class NulInOutput(BaseDetectionModel):
    model_id = "nul_in_output"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, [*_pairs(2), ({"i": 2}, {"name": "MV\u0000STAR"})])


class NotPairs(BaseDetectionModel):
    model_id = "not_pairs"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, [*_pairs(2), ({"i": 2},)])


class ClaimsOtherModel(BaseDetectionModel):
    model_id = "claims_other_model"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(2), model_id="steady_root")


class ClaimsOtherVersion(BaseDetectionModel):
    model_id = "claims_other_version"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(2), version_id=self.version_id + 1000)


class ClaimsOtherRole(BaseDetectionModel):
    model_id = "claims_other_role"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(2), role="SHADOW")


class MillionRows(BaseDetectionModel):
    """Not an error: a million outputs must be stored whole (and pass through XCom as a reference)."""

    model_id = "million_rows"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, [({"i": i}, {"s": i & 7}) for i in range(1_000_000)])


class LeaksConnection(BaseDetectionModel):
    """Not an error: leaves ``ctx.conn`` in a failed transaction and opens a connection it never closes."""

    model_id = "leaks_connection"
    _kept: list = []

    def run(self, ctx: ModelContext) -> ModelResult:
        cur = ctx.conn.cursor()
        try:
            cur.execute("SELECT * FROM no_such_table_anywhere")
        except psycopg2.Error:
            pass  # swallowed: ctx.conn stays in an aborted transaction
        extra = psycopg2.connect(ctx.conn.dsn, application_name="leaks_connection:extra")
        extra.cursor().execute("SELECT count(*) FROM pg_stat_activity")  # and its transaction left open
        self._kept.append(extra)  # never closed
        return _result(self, _pairs(5))


class LongMetricKey(BaseDetectionModel):
    """Not an error: a metric key over 64 characters is dropped with a warning, the rest stored."""

    model_id = "long_metric_key"
    LONG_KEY = "k" * 70

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(3), {"fine": 1.0, self.LONG_KEY: 2.0})


class ParamsArray(BaseDetectionModel):
    """Correct code; its version's params are a JSON array, not an object."""

    model_id = "params_array"

    def run(self, ctx: ModelContext) -> ModelResult:
        return _result(self, _pairs(2))
