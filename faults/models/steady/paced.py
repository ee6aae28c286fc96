"""Outputs that take their time to read, and the model base class that returns them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models_core import BaseDetectionModel, ModelContext, ModelResult

#: Sleep once per this many outputs: fine enough to spread the pace, coarse enough to be cheap.
PACE_STEP = 250


class PacedOutputs(list):
    """A list of (input_ref, output) pairs whose every full pass takes ``pace_s`` seconds.

    The framework walks the outputs to validate them and again to stream them through COPY;
    the pace makes that COPY last, so a kill or a restart can land in the middle of it.
    """

    def __init__(self, pairs: list[tuple[Any, Any]], pace_s: float) -> None:
        super().__init__(pairs)
        self.pause_s = pace_s / max(1, len(pairs) / PACE_STEP)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for index, pair in enumerate(super().__iter__()):
            if index % PACE_STEP == 0 and self.pause_s:
                time.sleep(self.pause_s)
            yield pair


class SteadyModel(BaseDetectionModel):
    """Produces ``rows`` outputs; reports what it saw of its upstream models as metrics."""

    compare_label = "label"
    compare_score = "score"

    def run(self, ctx: ModelContext) -> ModelResult:
        if self.params.get("signal_dir"):
            Path(self.params["signal_dir"], f"{self.model_id}.pid").write_text(str(os.getpid()))
        time.sleep(float(self.params.get("sleep_s", 0)))
        rows = int(self.params.get("rows", 10))
        pairs = [
            ({"i": i}, {"label": i % 3, "score": round(i * 0.001, 3), "by": self.version_str}) for i in range(rows)
        ]
        metrics = {"rows_made": float(rows)}
        for model_id in sorted(ctx.shared):  # the upstream PRIMARY results this cycle
            metrics[f"upstream_rows_{model_id}"] = float(len(ctx.shared[model_id].outputs_per_input))
        return ModelResult(
            model_id=self.model_id,
            version_id=self.version_id,
            role=self.role,
            outputs_per_input=PacedOutputs(pairs, float(self.params.get("pace_s", 0))),
            metrics=metrics,
        )
