"""source -> middle -> sink. Each records what it saw of its upstream in its outputs."""
from __future__ import annotations

from models_core import BaseDetectionModel, ModelContext, ModelResult


class _Recording(BaseDetectionModel):
    compare_label = "label"
    compare_score = "score"

    def run(self, ctx: ModelContext) -> ModelResult:
        if self.params.get("fail"):
            raise RuntimeError(f"{self.label()} was told to fail")
        seen = {}
        for model_id in sorted(ctx.shared):
            upstream = ctx.shared[model_id]
            seen[model_id] = {"version_id": upstream.version_id, "role": str(getattr(upstream.role, "value", upstream.role)),
                              "outputs": [list(pair) for pair in upstream.outputs_per_input],
                              "metrics": upstream.metrics}
        primary = ctx.primary_result
        outputs = [({"i": i}, {"by": self.version_str, "label": i % 2, "score": i * float(self.params.get("scale", 1)),
                               "seen": seen if i == 0 else {},
                               "primary_outputs": len(primary.outputs_per_input) if primary else None,
                               "cycle": ctx.cycle_started_at.isoformat()})
                   for i in range(int(self.params.get("n", 2)))]
        metrics = {"made": float(len(outputs)), **self.params.get("metrics", {})}
        version_id = self.version_id + 1000 if self.params.get("bad_result") else self.version_id
        return ModelResult(model_id=self.model_id, version_id=version_id, role=self.role,
                           outputs_per_input=outputs, metrics=metrics)


class Source(_Recording):
    model_id = "source"


class Middle(_Recording):
    model_id = "middle"
    depends_on = ["source"]


class Sink(_Recording):
    model_id = "sink"


class Loner(_Recording):
    """No dependencies; used to show one model's trouble leaves the others alone."""

    model_id = "loner"
