"""Replays a real AIS recording (or an NMEA feed) into ``ais_positions``, one window per cycle."""

from __future__ import annotations

import logging
from pathlib import Path

from example_models import params
from example_models.nmea import read_feed
from example_models.positions import store_positions
from example_models.recordings import RECORDINGS, Recording, load_recording
from example_models.replay import iso, replay_window, replayed_positions
from example_models.tracks import by_vessel
from models_core import BaseDetectionModel, ModelContext, ModelResult, Role

log = logging.getLogger(__name__)


class AisReplayIngest(BaseDetectionModel):
    """Params: ``recording`` (``solent`` | ``nyharbor``) or ``nmea_path`` (a feed file);
    ``interval_s`` (300, the schedule's interval), ``history_s`` (900, how far back the
    detectors may look), ``copies`` (1; more for scale tests), ``retention_hours`` (24).

    Outputs one row per vessel seen in the cycle's window. Only the PRIMARY writes the
    positions: a SHADOW/CHALLENGER ingest must not change what the detectors read.
    """

    model_id = "ais_ingest"
    #: A cycle's window of the recording depends on the cycle's time only: a backtest replays it.
    replayable = True

    def _recording(self) -> tuple[Recording, dict[str, float]]:
        name, feed = self.params.get("recording"), self.params.get("nmea_path")
        if name is not None and feed is None:
            return load_recording(name), {}
        if name is not None or feed is None:
            raise ValueError(
                f"{self.label()}: params need exactly one of recording "
                f"({' | '.join(sorted(RECORDINGS))}) or nmea_path, got {sorted(self.params)}"
            )
        recording, stats = read_feed(Path(feed))
        if stats.rejected:
            log.warning(
                "%s: %d sentences of %s skipped: %s",
                self.label(),
                stats.rejected,
                feed,
                "; ".join(stats.rejected_lines),
            )
        return recording, {
            "nmea_positions": float(stats.positions),
            "nmea_rejected": float(stats.rejected),
            "nmea_other_messages": float(stats.other_messages),
        }

    def run(self, ctx: ModelContext) -> ModelResult:
        interval = params.number(self, "interval_s", 300, minimum=1)
        history = params.number(self, "history_s", 900)
        copies = int(params.number(self, "copies", 1, minimum=1))
        retention = params.number(self, "retention_hours", 24, minimum=1)
        recording, feed_metrics = self._recording()
        window = replay_window(recording, ctx.cycle_started_at, interval, history)
        positions = list(replayed_positions(recording, window, copies))
        if self.role is Role.PRIMARY:
            store_positions(ctx.conn, ctx.cycle_started_at, positions, retention)
        since = ctx.cycle_started_at.timestamp()
        in_window = by_vessel(p for p in positions if p.t >= since)
        outputs = [
            (
                {"mmsi": mmsi},
                {
                    "fixes": len(track),
                    "first_fix": iso(track[0].t),
                    "last_fix": iso(track[-1].t),
                    "recorded_from": iso(track[0].recorded_t),
                },
            )
            for mmsi, track in in_window.items()
        ]
        log.info(
            "%s: %s offset %.0f s of a %.0f s loop (pass started %s): %d fixes in the window, %d with history",
            self.label(),
            recording.name,
            window.offset_s,
            window.loop_s,
            window.pass_started_at.isoformat(),
            sum(len(t) for t in in_window.values()),
            len(positions),
        )
        return ModelResult(
            model_id=self.model_id,
            version_id=self.version_id,
            role=self.role,
            outputs_per_input=outputs,
            metrics={
                "vessels": float(len(outputs)),
                "fixes": float(sum(len(t) for t in in_window.values())),
                "fixes_with_history": float(len(positions)),
                "replay_offset_s": window.offset_s,
                "observed_s": window.observed_s,
                **feed_metrics,
            },
        )
