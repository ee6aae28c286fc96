"""Merges the cycle's alerts of every upstream detector and ranks the vessels."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from example_models import params
from models_core import BaseDetectionModel, ModelContext, ModelResult

#: Weight of each detector's alerts in the ranking, unless params.weights says otherwise.
DEFAULT_WEIGHTS = {"spoof_detector": 3.0, "identity_collision": 3.0, "dark_gap_detector": 2.0}
#: Severity is capped so one absurd figure (a 600,000 kn jump) does not drown everything else.
MAX_SEVERITY = 10.0


class AlertRouter(BaseDetectionModel):
    """One row per vessel with at least one alert: its rank, score, kinds and severities.

    An alert is any upstream output with ``alert`` true, so a new detector needs only a
    dependency to be routed. Score = sum over kinds of weight x min(severity, 10), halved
    (``poor_track_factor``) when ``track_quality`` found the vessel's track not usable.
    Params: ``weights`` ({model_id: weight}), ``max_alerts`` (50), ``poor_track_factor``.
    """

    model_id = "alert_router"
    depends_on = ["spoof_detector", "dark_gap_detector", "identity_collision", "track_quality"]

    def run(self, ctx: ModelContext) -> ModelResult:
        limit = int(params.number(self, "max_alerts", 50, minimum=1))
        poor_track = params.number(self, "poor_track_factor", 0.5)
        overrides = self.params.get("weights", {})
        if not isinstance(overrides, dict):
            raise ValueError(f"{self.label()}: params.weights must map model_id to a number, got {overrides!r}")
        weights = {**DEFAULT_WEIGHTS, **overrides}
        severities: dict[int, dict[str, float]] = defaultdict(dict)
        usable: dict[int, bool] = {}
        for model_id in sorted(ctx.shared):
            for input_ref, output in ctx.shared[model_id].outputs_per_input:
                if "usable" in output:
                    usable[input_ref["mmsi"]] = output["usable"]
                if output.get("alert") is True:
                    severities[input_ref["mmsi"]][model_id] = float(output.get("severity", 1.0))
        ranked: list[tuple[float, int, dict[str, Any]]] = []
        for mmsi, kinds in severities.items():
            score = sum(weights.get(kind, 1.0) * min(severity, MAX_SEVERITY) for kind, severity in kinds.items())
            if usable.get(mmsi) is False:
                score *= poor_track
            ranked.append(
                (round(score, 3), mmsi, {"kinds": sorted(kinds), "severity": kinds, "track_usable": usable.get(mmsi)})
            )
        ranked.sort(key=lambda item: (-item[0], item[1]))
        outputs = [
            ({"mmsi": mmsi}, {"rank": rank, "score": score, **details})
            for rank, (score, mmsi, details) in enumerate(ranked[:limit], start=1)
        ]
        per_kind: defaultdict[str, int] = defaultdict(int)
        for kinds in severities.values():
            for kind in kinds:
                per_kind[kind] += 1
        return ModelResult(
            model_id=self.model_id,
            version_id=self.version_id,
            role=self.role,
            outputs_per_input=outputs,
            metrics={
                "vessels_alerted": float(len(ranked)),
                "routed": float(len(outputs)),
                **{f"alerts_{kind}": float(n) for kind, n in per_kind.items()},
            },
        )
