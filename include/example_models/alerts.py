"""Turns the most anomalous vessels into alerts, at most ``max_alerts`` per cycle."""
from __future__ import annotations

from models_core import BaseDetectionModel, ModelContext, ModelResult


class AlertRouter(BaseDetectionModel):
    model_id = "alert_router"
    depends_on = ["anomaly_score"]

    def run(self, ctx: ModelContext) -> ModelResult:
        limit = int(self.params.get("max_alerts", 10))
        flagged = [(ref, out) for ref, out in ctx.shared["anomaly_score"].outputs_per_input if out["anomalous"]]
        flagged.sort(key=lambda pair: -pair[1]["score"])
        outputs = [(ref, {"alert": "speed_anomaly", "score": out["score"]}) for ref, out in flagged[:limit]]
        return ModelResult(model_id=self.model_id, version_id=self.version_id, role=self.role,
                           outputs_per_input=outputs, metrics={"alerts": float(len(outputs))})
