"""What every AIS detector shares: reading the cycle's positions and shaping its result."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from example_models.positions import cycle_positions
from example_models.replay import Position
from example_models.tracks import by_vessel
from models_core import BaseDetectionModel, ModelContext, ModelResult

INGEST = "ais_ingest"


@dataclass(frozen=True)
class CycleTracks:
    """The cycle's tracks by MMSI (history included) and its window ``[since, until)`` in UNIX seconds.

    ``until`` ends where the feed's coverage of the window ends, so a silence is never
    measured past the end of a recording.
    """

    tracks: dict[int, list[Position]]
    since: float
    until: float

    def in_window(self, track: list[Position]) -> list[Position]:
        return [p for p in track if self.since <= p.t < self.until]

    def window_tracks(self) -> Iterator[tuple[int, list[Position]]]:
        """Each vessel seen in the window, with its fixes there."""
        for mmsi, track in self.tracks.items():
            fixes = self.in_window(track)
            if fixes:
                yield mmsi, fixes


class AisDetector(BaseDetectionModel):
    """Base of the detectors: each output row is ``({"mmsi": m}, {"alert": bool, "severity": x, ...figures})``.

    ``severity`` is how far past its threshold the deciding figure is (> 1 when alerting);
    the alert router ranks by it, and shadow evaluation compares it.
    """

    depends_on: ClassVar[list[str]] = [INGEST]
    compare_label: ClassVar[str | None] = "alert"
    compare_score: ClassVar[str | None] = "severity"

    def cycle_tracks(self, ctx: ModelContext) -> CycleTracks:
        since = ctx.cycle_started_at.timestamp()
        observed = ctx.shared[INGEST].metrics["observed_s"]
        return CycleTracks(by_vessel(cycle_positions(ctx.conn, ctx.cycle_started_at)), since, since + observed)

    def result(self, outputs: list[tuple[dict[str, Any], dict[str, Any]]]) -> ModelResult:
        alerts = sum(1 for _, out in outputs if out["alert"])
        return ModelResult(
            model_id=self.model_id,
            version_id=self.version_id,
            role=self.role,
            outputs_per_input=outputs,
            metrics={"vessels": float(len(outputs)), "alerts": float(alerts)},
        )
