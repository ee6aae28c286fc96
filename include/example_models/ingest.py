"""Reads the cycle's vessel positions (generated here, deterministically)."""
from __future__ import annotations

import random

from models_core import BaseDetectionModel, ModelContext, ModelResult


class AisIngest(BaseDetectionModel):
    model_id = "ais_ingest"

    def run(self, ctx: ModelContext) -> ModelResult:
        rng = random.Random(int(ctx.cycle_started_at.timestamp()))
        vessels = int(self.params.get("vessels", 40))
        outputs = []
        for mmsi in range(440_000_000, 440_000_000 + vessels):
            points = rng.randint(1, 8)
            outputs.append(({"mmsi": mmsi}, {"points": points, "speed_kn": round(rng.uniform(0, 25), 2)}))
        return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                           outputs_per_input=outputs, metrics={"vessels_seen": float(vessels)})
