"""The base class of the generated models, and outputs shaped like a vessel-detection model's.

Kept apart from :mod:`bench.workload` so that a task process importing a generated models
package imports nothing beyond ``models_core``'s model contract.
"""

from __future__ import annotations

import random
from typing import Any

from models_core import BaseDetectionModel, ModelContext, ModelResult

LABELS = ("normal", "loitering", "dark_activity", "spoofing", "rendezvous")


def realistic_outputs(count: int, seed: int = 1) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` (input_ref, output) pairs; the same seed gives the same rows."""
    rng = random.Random(seed)
    return [
        (
            {"mmsi": 200_000_000 + i},
            {"score": round(rng.random(), 6), "label": rng.choice(LABELS), "speed_kn": round(rng.uniform(0, 30), 1)},
        )
        for i in range(count)
    ]


class SyntheticModel(BaseDetectionModel):
    """Returns ``params["rows"]`` realistic outputs; none by default (a trivial body)."""

    def run(self, ctx: ModelContext) -> ModelResult:
        rows = int(self.params.get("rows", 0))
        return ModelResult(
            model_id=self.model_id,
            version_id=self.version_id,
            role=self.role,
            outputs_per_input=realistic_outputs(rows),
            metrics={"rows": float(rows)},
        )
