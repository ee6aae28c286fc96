"""Which past cycles a backtest covers: the schedule's cycle times in a range. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

#: The most cycles one backtest covers: a month of 5-minute cycles.
MAX_CYCLES = 8928
#: Cycles one task of the backtest runs, one after another (a day of 5-minute cycles holds six).
CYCLES_PER_TASK = 48


class CycleRangeError(ValueError):
    """A range of cycles a backtest cannot cover, saying why."""


def parse_moment(text: str, field: str) -> datetime:
    """An ISO timestamp of a backtest's Params (naive means UTC), or an error naming ``field``."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise CycleRangeError(
            f"{field} must be an ISO timestamp such as 2026-12-01T00:00:00+00:00, got {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cycles_between(schedule: str | None, start: datetime, end: datetime) -> list[datetime]:
    """The cycle times of ``schedule`` from ``start`` to ``end``, both included."""
    if schedule is None:
        raise CycleRangeError("the cycle DAG has no schedule ([model_registry] schedule), so it has no past cycles")
    if end < start:
        raise CycleRangeError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    if end > datetime.now(UTC):
        raise CycleRangeError(f"end ({end.isoformat()}) is in the future: a backtest covers past cycles")
    times = croniter(schedule, start, ret_type=datetime, expand_from_start_time=False)
    found = [start] if croniter.match(schedule, start) else []
    while True:
        moment = times.get_next(datetime).astimezone(UTC)
        if moment > end:
            return found
        found.append(moment)
        if len(found) > MAX_CYCLES:
            raise CycleRangeError(
                f"{start.isoformat()} to {end.isoformat()} holds more than {MAX_CYCLES} cycles of {schedule!r}; "
                "backtest a shorter range (several backtests may cover a longer one)"
            )


def in_tasks(cycles: list[datetime], size: int = CYCLES_PER_TASK) -> list[list[str]]:
    """The cycles as ISO text, ``size`` to a task, in order."""
    text = [moment.isoformat() for moment in cycles]
    return [text[i : i + size] for i in range(0, len(text), size)]
