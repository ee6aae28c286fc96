"""Which version of a model did best on a metric: ``modelreg best``.

Every version that ran in the window is a candidate, whatever its role, so a SHADOW can be
compared with the PRIMARY it shadows and with the versions before it. A candidate is ranked
by the mean of the metric over the window; one with fewer cycles than asked for, or without
a value of the metric, is listed apart with the reason, so nobody wonders where it went.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.errors import ModelRegistryError
from models_core.store.sql_files import queries


class RankingError(ModelRegistryError):
    """Nothing can be ranked; the message says why and what to try."""


@dataclass(frozen=True)
class Candidate:
    """One version's figures over the window."""

    version: str
    status: str
    role: str
    cycles: int
    failed: int
    mean: float | None
    samples: int
    framework_samples: int

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.cycles if self.cycles else None


@dataclass(frozen=True)
class Ranking:
    """The ranked candidates, best first, and the ones left out with why."""

    model_id: str
    metric: str
    window_hours: float
    min_cycles: int
    lower_is_better: bool
    ranked: list[Candidate]
    excluded: list[tuple[Candidate, str]] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def as_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "metric": self.metric,
            "window_hours": self.window_hours,
            "min_cycles": self.min_cycles,
            "lower_is_better": self.lower_is_better,
            "best": self.best.version if self.best else None,
            "ranked": [{"rank": i, **_figures(c)} for i, c in enumerate(self.ranked, start=1)],
            "excluded": [{**_figures(c), "why": why} for c, why in self.excluded],
        }


def rank_versions(
    candidates: list[Candidate], *, min_cycles: int, lower_is_better: bool
) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """Order the candidates by their mean, best first; set apart those that cannot be ranked.

    Equal means are ordered by failure rate (lower first), then cycles (more first); full
    ties keep the order given, newest version first as the query returns them, so the same
    figures always give the same order.
    """
    ranked: list[tuple[float, Candidate]] = []
    excluded: list[tuple[Candidate, str]] = []
    for candidate in candidates:
        if candidate.cycles < min_cycles:
            cycles = f"{candidate.cycles} cycle" + ("" if candidate.cycles == 1 else "s")
            excluded.append((candidate, f"{cycles}, fewer than {min_cycles}"))
        elif candidate.mean is None:
            excluded.append((candidate, "no values of the metric"))
        else:
            ranked.append((candidate.mean, candidate))
    direction = 1 if lower_is_better else -1
    ranked.sort(key=lambda item: (direction * item[0], item[1].failure_rate, -item[1].cycles))
    return [candidate for _, candidate in ranked], excluded


def best_versions(
    conn: PgConnection,
    model_id: str,
    metric: str,
    *,
    window: timedelta,
    min_cycles: int = 1,
    lower_is_better: bool = False,
    include_defaults: bool = False,
) -> Ranking:
    """Rank ``model_id``'s versions that ran in the last ``window`` by the mean of ``metric``.

    The framework's own metrics (``cycle_duration_ms``, ``output_count``, the ``eval_*``
    figures of a shadow) rank only with ``include_defaults``. Raises :class:`RankingError`
    when no version ran, or none recorded the metric (naming the ones recorded).
    """
    if min_cycles < 0:
        raise RankingError(f"--min-cycles must be 0 or more, got {min_cycles}")
    end = datetime.now(UTC)
    span = {
        "model_id": model_id,
        "metric": metric,
        "start": end - window,
        "end": end,
        "include_defaults": include_defaults,
    }
    q = queries("registry/ranking.sql")
    with conn.cursor() as cur:
        cur.execute(q["version_figures"], span)
        candidates = [Candidate(*row) for row in cur.fetchall()]
        cur.execute(q["metric_keys"], span)
        recorded = [key for (key,) in cur.fetchall()]
    conn.rollback()
    hours = window.total_seconds() / 3600
    if not candidates:
        raise RankingError(
            f"no version of {model_id} ran in the last {hours:g} h (is the model id right? see `modelreg list`)"
        )
    if not any(c.samples for c in candidates):
        if any(c.framework_samples for c in candidates):
            raise RankingError(
                f"{metric!r} of {model_id} is recorded by the framework, not the model; "
                "add --include-defaults to rank by it"
            )
        raise RankingError(
            f"no version of {model_id} recorded the metric {metric!r} in the last {hours:g} h "
            f"(recorded: {', '.join(recorded) or 'none'})"
        )
    ranked, excluded = rank_versions(candidates, min_cycles=min_cycles, lower_is_better=lower_is_better)
    return Ranking(model_id, metric, hours, min_cycles, lower_is_better, ranked, excluded)


def _figures(candidate: Candidate) -> dict[str, Any]:
    figures = asdict(candidate)
    figures["failure_rate"] = candidate.failure_rate
    return figures
