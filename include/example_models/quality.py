"""Track building and quality: how well each vessel is reported in the cycle's window."""

from __future__ import annotations

import statistics

from example_models import params
from example_models.detector import INGEST, AisDetector
from models_core import ModelContext, ModelResult


class TrackQuality(AisDetector):
    """Per vessel in the window: fixes, span, median and longest reporting interval.

    Params: ``min_fixes`` (3) and ``max_median_interval_s`` (60) make a track ``usable``;
    the alert router trusts alerts on usable tracks more. Not a detector: no ``alert``.
    """

    model_id = "track_quality"
    depends_on = [INGEST]
    compare_label = "usable"
    compare_score = "median_interval_s"

    def run(self, ctx: ModelContext) -> ModelResult:
        min_fixes = params.number(self, "min_fixes", 3, minimum=1)
        max_median = params.number(self, "max_median_interval_s", 60)
        cycle = self.cycle_tracks(ctx)
        outputs = []
        for mmsi, fixes in cycle.window_tracks():
            intervals = [b.t - a.t for a, b in zip(fixes, fixes[1:])]
            median = statistics.median(intervals) if intervals else None
            outputs.append(
                (
                    {"mmsi": mmsi},
                    {
                        "fixes": len(fixes),
                        "span_s": round(fixes[-1].t - fixes[0].t, 3),
                        "median_interval_s": None if median is None else round(median, 3),
                        "max_interval_s": round(max(intervals), 3) if intervals else None,
                        "usable": len(fixes) >= min_fixes and median is not None and median <= max_median,
                    },
                )
            )
        usable = sum(1 for _, out in outputs if out["usable"])
        return ModelResult(
            model_id=self.model_id,
            version_id=self.version_id,
            role=self.role,
            outputs_per_input=outputs,
            metrics={"vessels": float(len(outputs)), "usable_tracks": float(usable)},
        )
