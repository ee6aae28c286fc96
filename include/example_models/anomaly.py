"""Flags vessels whose speed is unusual for a usable track."""
from __future__ import annotations

from models_core import BaseDetectionModel, ModelContext, ModelResult


class AnomalyScore(BaseDetectionModel):
    model_id = "anomaly_score"
    depends_on = ["track_quality"]
    compare_label = "anomalous"
    compare_score = "score"

    def run(self, ctx: ModelContext) -> ModelResult:
        threshold = float(self.params.get("threshold", 0.7))
        outputs = []
        for input_ref, track in ctx.shared["track_quality"].outputs_per_input:
            if not track["usable"]:
                continue
            score = round((input_ref["mmsi"] % 97) / 96 * track["quality"], 3)
            outputs.append((input_ref, {"score": score, "anomalous": score >= threshold}))
        flagged = sum(1 for _, out in outputs if out["anomalous"])
        return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                           outputs_per_input=outputs, metrics={"flagged": float(flagged)})
