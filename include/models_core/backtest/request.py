"""A backtest as asked for, checked before anything runs.

The DAG's first task and ``modelreg backtest`` call the same :func:`check_request`, so the
command refuses what the run would refuse (an unknown version, the PRIMARY itself, a source
that cannot be replayed, a range with no past cycle), in the same words, before a run is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.backtest.cycles import CYCLES_PER_TASK, CycleRangeError, cycles_between, in_tasks, parse_moment
from models_core.backtest.runner import Candidate, resolve_candidate
from models_core.settings import Settings

#: The DAG a backtest runs as (:mod:`models_core.backtest.dag_factory`).
BACKTEST_DAG_ID = "detection_model_backtest"


@dataclass(frozen=True)
class BacktestRequest:
    """The version to backtest and the schedule's cycles in the range asked for."""

    candidate: Candidate
    start: datetime
    end: datetime
    cycles: list[datetime]

    def groups(self) -> list[list[str]]:
        """The cycles in groups of a task each (the DAG maps its run over them)."""
        return in_tasks(self.cycles)

    def as_json(self) -> dict[str, Any]:
        """What ``modelreg backtest --check`` and the registry API answer: the run it would make."""
        return {
            "dag_id": BACKTEST_DAG_ID,
            "conf": self.conf(),
            "cycles": len(self.cycles),
            "tasks": len(self.groups()),
            "cycles_per_task": CYCLES_PER_TASK,
        }

    def conf(self) -> dict[str, str]:
        """The DAG run's conf: its Params."""
        return {
            "model_id": self.candidate.model_id,
            "version": self.candidate.version,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def check_request(
    conn: PgConnection, settings: Settings, model_id: str, version: str, start: str, end: str
) -> BacktestRequest:
    """The request, or :class:`~models_core.backtest.runner.BacktestRefused` /
    :class:`~models_core.backtest.cycles.CycleRangeError` saying why it cannot run."""
    first, last = parse_moment(start, "start"), parse_moment(end, "end")
    cycles = cycles_between(settings.schedule, first, last)
    if not cycles:
        raise CycleRangeError(
            f"{first.isoformat()} to {last.isoformat()} holds no cycle of the schedule {settings.schedule!r}"
        )
    return BacktestRequest(resolve_candidate(conn, settings, model_id, version), first, last, cycles)
