"""Scores each vessel's track by how many positions it had in the cycle."""
from __future__ import annotations

from models_core import BaseDetectionModel, ModelContext, ModelResult


class TrackQuality(BaseDetectionModel):
    model_id = "track_quality"
    depends_on = ["ais_ingest"]
    compare_label = "usable"
    compare_score = "quality"
    params_schema = {"type": "object", "properties": {"min_points": {"type": "integer", "minimum": 1}}}

    def run(self, ctx: ModelContext) -> ModelResult:
        min_points = int(self.params.get("min_points", 3))
        outputs = []
        for input_ref, position in ctx.shared["ais_ingest"].outputs_per_input:
            score = min(1.0, position["points"] / 8)
            outputs.append((input_ref, {"quality": round(score, 3), "usable": position["points"] >= min_points}))
        usable = sum(1 for _, out in outputs if out["usable"])
        return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                           outputs_per_input=outputs, metrics={"usable_tracks": float(usable)})
