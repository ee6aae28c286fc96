"""Dark gaps: a vessel that was moving and then went silent for longer than a threshold."""

from __future__ import annotations

import math

from example_models import params
from example_models.detector import AisDetector
from example_models.replay import Position, iso
from models_core import ModelContext, ModelResult


class DarkGapDetector(AisDetector):
    """Alerts in the cycle in which a moving vessel's silence reaches ``threshold_s``.

    Params: ``threshold_s`` (600) and ``min_sog_kn`` (1.0, the speed over ground at the
    last fix before the silence that counts as moving). A silence is alerted once, by the
    cycle whose window holds the moment it reaches the threshold, so the ingest's
    ``history_s`` must be at least ``threshold_s``. Every vessel of the cycle's data
    (window and history) gets a row; ``silence_s`` is its silence at the end of the window
    (or, when alerting, the length of the silence that alerted, up to its end or the window's).
    """

    model_id = "dark_gap_detector"
    #: Checked by `modelreg activate` and `promote` before a version runs (run() checks them too).
    params_schema = {
        "type": "object",
        "properties": {"threshold_s": {"type": "number", "minimum": 1}, "min_sog_kn": {"type": "number", "minimum": 0}},
    }

    @staticmethod
    def _gap_alert(
        track: list[Position], threshold: float, min_sog: float, since: float, until: float
    ) -> tuple[Position, float] | None:
        """The fix after which a moving vessel went silent, if that silence reached ``threshold`` in the window."""
        for fix, following in zip(track, [*track[1:], None]):
            reaches = fix.t + threshold
            resumed = math.inf if following is None else following.t
            if since <= reaches < until and resumed > reaches and (fix.sog_kn or 0.0) >= min_sog:
                return fix, min(resumed, until) - fix.t
        return None

    def run(self, ctx: ModelContext) -> ModelResult:
        threshold = params.number(self, "threshold_s", 600, minimum=1)
        min_sog = params.number(self, "min_sog_kn", 1.0)
        cycle = self.cycle_tracks(ctx)
        outputs = []
        for mmsi, track in cycle.tracks.items():
            found = self._gap_alert(track, threshold, min_sog, cycle.since, cycle.until)
            last, silence = found if found else (track[-1], max(0.0, cycle.until - track[-1].t))
            outputs.append(
                (
                    {"mmsi": mmsi},
                    {
                        "alert": found is not None,
                        "silence_s": round(silence, 3),
                        "threshold_s": threshold,
                        "severity": round(silence / threshold, 3),
                        "last_fix": iso(last.t),
                        "recorded_at": iso(last.recorded_t),
                        "last_sog_kn": last.sog_kn,
                        "last_lat_lon": [last.lat, last.lon],
                    },
                )
            )
        return self.result(outputs)
