"""Identity collisions: one MMSI reported from two places too far apart to be one ship."""

from __future__ import annotations

from typing import Any

from example_models import params
from example_models.detector import AisDetector
from example_models.replay import Position, iso
from example_models.tracks import distance_nm, step
from models_core import ModelContext, ModelResult


def split_tracks(fixes: list[Position], max_speed_kn: float, min_dt_s: float) -> list[list[Position]]:
    """Greedy split of one MMSI's fixes into tracks that one ship could each have sailed.

    Each fix joins the nearest track it is reachable from at ``max_speed_kn``, or starts a
    new one. A single ship gives one track (plus one-fix tracks for outliers, which are the
    spoofing detector's concern); two ships sharing an MMSI give two long, interleaved ones.
    """
    tracks: list[list[Position]] = []
    for fix in fixes:
        candidates = [(step(track[-1], fix, min_dt_s), track) for track in tracks]
        reachable = [(s.distance_nm, track) for s, track in candidates if s.implied_speed_kn <= max_speed_kn]
        if reachable:
            min(reachable, key=lambda pair: pair[0])[1].append(fix)
        else:
            tracks.append([fix])
    return tracks


def closest_in_time(a: list[Position], b: list[Position]) -> tuple[Position, Position]:
    """The pair of fixes, one from each track, nearest to each other in time."""
    return min(((p, q) for p in a for q in b), key=lambda pair: abs(pair[0].t - pair[1].t))


class IdentityCollisionDetector(AisDetector):
    """Params: ``max_speed_kn`` (60) splits an MMSI's window fixes into tracks; two tracks of
    at least ``min_fixes`` (3) each, overlapping in time and at least ``min_separation_nm``
    (1.0) apart at their closest moment in time, are two ships with one identity.
    """

    model_id = "identity_collision"

    def run(self, ctx: ModelContext) -> ModelResult:
        max_speed = params.number(self, "max_speed_kn", 60, minimum=1)
        min_fixes = params.number(self, "min_fixes", 3, minimum=1)
        min_separation = params.number(self, "min_separation_nm", 1.0, minimum=0.001)
        min_dt = params.number(self, "min_dt_s", 1, minimum=0.001)
        cycle = self.cycle_tracks(ctx)
        outputs = []
        for mmsi, fixes in cycle.window_tracks():
            tracks = sorted(
                (t for t in split_tracks(fixes, max_speed, min_dt) if len(t) >= min_fixes), key=len, reverse=True
            )
            figures: dict[str, Any] = {
                "alert": False,
                "tracks": len(tracks),
                "fixes": len(fixes),
                "separation_nm": None,
                "severity": 0.0,
            }
            if len(tracks) >= 2:
                first, second = tracks[:2]
                overlap = max(first[0].t, second[0].t) < min(first[-1].t, second[-1].t)
                a, b = closest_in_time(first, second)
                separation = distance_nm(a, b)
                figures.update(
                    alert=overlap and separation >= min_separation,
                    separation_nm=round(separation, 3),
                    severity=round(separation / min_separation, 3) if overlap else 0.0,
                    track_fixes=[len(first), len(second)],
                    at=iso(max(a.t, b.t)),
                    recorded_at=iso(max(a.recorded_t, b.recorded_t)),
                    positions=[[a.lat, a.lon], [b.lat, b.lon]],
                )
            outputs.append(({"mmsi": mmsi}, figures))
        return self.result(outputs)
