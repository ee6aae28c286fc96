"""Spoofing / impossible movement: a vessel that moves faster than any ship can, or faster than it says."""

from __future__ import annotations

from example_models import params
from example_models.detector import AisDetector
from example_models.replay import iso
from example_models.tracks import Step, steps
from models_core import ModelContext, ModelResult

METHODS = ("implied_speed", "sog_consistency")


class SpoofingDetector(AisDetector):
    """Judges every step (two consecutive fixes) that ends in the cycle's window.

    Params: ``method`` ``implied_speed`` (default): the implied speed exceeds
    ``max_speed_kn`` (60, faster than the fastest craft in these waters); or
    ``sog_consistency``: the jump is longer than the reported speed over ground allows,
    ``max(SOG before, SOG after) * dt * sog_factor (1.5) + slack_nm (0.05)``. Either way the
    jump must be at least ``min_jump_nm`` (0.1), because receiver time stamps jitter by a
    second or two and make fast craft on short steps look faster than they are; steps under
    ``min_dt_s`` (1) count as that long.
    """

    model_id = "spoof_detector"

    def _bound_nm(self, s: Step, method: str, max_speed: float, factor: float, slack: float, min_dt: float) -> float:
        """How far the vessel could plausibly have gone in this step."""
        hours = max(s.dt_s, min_dt) / 3600
        sogs = [v for v in (s.before.sog_kn, s.after.sog_kn) if v is not None]
        if method == "sog_consistency" and sogs:
            return max(sogs) * hours * factor + slack
        return max_speed * hours

    def run(self, ctx: ModelContext) -> ModelResult:
        method = params.choice(self, "method", "implied_speed", METHODS)
        max_speed = params.number(self, "max_speed_kn", 60, minimum=1)
        min_jump = params.number(self, "min_jump_nm", 0.1)
        min_dt = params.number(self, "min_dt_s", 1, minimum=0.001)
        factor = params.number(self, "sog_factor", 1.5, minimum=1)
        slack = params.number(self, "slack_nm", 0.05)
        cycle = self.cycle_tracks(ctx)
        outputs = []
        for mmsi, _ in cycle.window_tracks():
            judged = []
            for s in steps(cycle.tracks[mmsi], min_dt, since=cycle.since):
                bound = self._bound_nm(s, method, max_speed, factor, slack, min_dt)
                judged.append((s.distance_nm / bound if s.distance_nm >= min_jump else 0.0, s))
            figures = {
                "alert": False,
                "method": method,
                "steps": len(judged),
                "suspicious_steps": 0,
                "max_implied_speed_kn": None,
                "severity": 0.0,
            }
            if judged:
                severity, worst = max(judged, key=lambda pair: (pair[0], pair[1].implied_speed_kn))
                figures.update(
                    alert=severity > 1,
                    suspicious_steps=sum(1 for ratio, _ in judged if ratio > 1),
                    max_implied_speed_kn=round(max(s.implied_speed_kn for _, s in judged), 1),
                    severity=round(severity, 3),
                    worst_step={
                        "from": iso(worst.before.t),
                        "to": iso(worst.after.t),
                        "recorded_from": iso(worst.before.recorded_t),
                        "recorded_to": iso(worst.after.recorded_t),
                        "jump_nm": round(worst.distance_nm, 3),
                        "dt_s": round(worst.dt_s, 3),
                        "implied_speed_kn": round(worst.implied_speed_kn, 1),
                        "sog_kn": [worst.before.sog_kn, worst.after.sog_kn],
                        "from_lat_lon": [worst.before.lat, worst.before.lon],
                        "to_lat_lon": [worst.after.lat, worst.after.lon],
                    },
                )
            outputs.append(({"mmsi": mmsi}, figures))
        return self.result(outputs)
