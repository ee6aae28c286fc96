"""The independent check of stored results: nothing lost, nothing duplicated, nothing half-written.

Read straight from the registry tables, whatever the product logged:

- a **result set** is the output rows and metrics of one (cycle, version, role);
- it is **half-written** when its output rows differ in number from its ``output_count``
  metric (outputs without metrics count, and metrics without outputs), or its
  ``output_seq`` values are not exactly 0..n-1;
- **duplicated rows** are rows beyond one per ``output_seq`` in a result set;
- a (cycle, model) with PRIMARY rows from two versions has **two PRIMARY row sets**;
- **lost rows** are those a result set should hold (the fault knows how many) and does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from faults.environment import Workspace

#: How long a killed client's server session may take to end (and roll back what it had not committed).
SESSION_GONE_TIMEOUT_S = 30

_RESULT_SETS = """
WITH outputs AS (
    SELECT cycle_started_at, model_id, version_id, role, count(*) AS stored,
           count(DISTINCT output_seq) AS distinct_seq, min(output_seq) AS first_seq, max(output_seq) AS last_seq
    FROM detection_model_run_outputs GROUP BY 1, 2, 3, 4),
counted AS (
    SELECT cycle_started_at, model_id, version_id, role, metric_value AS output_count
    FROM detection_model_metrics WHERE metric_key = 'output_count')
SELECT coalesce(o.cycle_started_at, c.cycle_started_at), coalesce(o.model_id, c.model_id),
       coalesce(o.version_id, c.version_id), coalesce(o.role, c.role),
       coalesce(o.stored, 0), coalesce(o.distinct_seq, 0), o.first_seq, o.last_seq, c.output_count
FROM outputs o FULL JOIN counted c
  ON o.cycle_started_at = c.cycle_started_at AND o.version_id = c.version_id AND o.role = c.role
"""


@dataclass(frozen=True)
class ResultSet:
    cycle: datetime
    model_id: str
    version_id: int
    role: str
    stored: int
    distinct_seq: int
    first_seq: int | None
    last_seq: int | None
    output_count: float | None

    @property
    def label(self) -> str:
        return f"{self.model_id} (version id {self.version_id}, {self.role}) cycle {self.cycle.isoformat()}"

    @property
    def half_written(self) -> bool:
        if self.output_count is None or self.stored != self.output_count:
            return True
        return self.stored > 0 and (self.first_seq != 0 or self.last_seq != self.distinct_seq - 1)

    @property
    def duplicated(self) -> int:
        return self.stored - self.distinct_seq


@dataclass
class Scan:
    """Every result set in the registry, and what is wrong with them."""

    sets: list[ResultSet]
    double_primary: list[str] = field(default_factory=list)

    @property
    def half_written(self) -> list[ResultSet]:
        return [s for s in self.sets if s.half_written]

    @property
    def duplicated_rows(self) -> int:
        return sum(s.duplicated for s in self.sets)

    def find(self, cycle: datetime, model_id: str, role: str) -> list[ResultSet]:
        return [s for s in self.sets if s.cycle == cycle and s.model_id == model_id and s.role == role]

    def lost_rows(self, cycle: datetime, model_id: str, role: str, expected: int) -> int:
        """Rows of that model's result set missing against ``expected`` (all of them if it has none)."""
        found = self.find(cycle, model_id, role)
        return max(0, expected - max((s.distinct_seq for s in found), default=0))

    def problems(self) -> list[str]:
        lines = [
            f"half-written: {s.label}: {s.stored} rows ({s.distinct_seq} distinct), output_count {s.output_count}"
            for s in self.half_written
        ]
        lines += [f"two PRIMARY row sets: {item}" for item in self.double_primary]
        return lines


def scan(ws: Workspace) -> Scan:
    sets = [ResultSet(*row) for row in ws.registry_rows(_RESULT_SETS)]
    found = Scan(sorted(sets, key=lambda s: (s.cycle, s.model_id, s.role, s.version_id)))
    primaries: dict[tuple[datetime, str], set[int]] = {}
    for s in sets:
        if s.role == "PRIMARY" and s.stored:
            primaries.setdefault((s.cycle, s.model_id), set()).add(s.version_id)
    found.double_primary = [
        f"{model_id} cycle {cycle.isoformat()}: version ids {sorted(ids)}"
        for (cycle, model_id), ids in sorted(primaries.items())
        if len(ids) > 1
    ]
    return found


def wait_session_gone(ws: Workspace, model_id: str) -> None:
    """Until the killed client's server session has ended (and rolled back what it had not committed)."""
    deadline = time.monotonic() + SESSION_GONE_TIMEOUT_S
    while ws.registry_rows("SELECT 1 FROM pg_stat_activity WHERE application_name = %s", (f"model:{model_id}",)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the session of killed {model_id} still exists after {SESSION_GONE_TIMEOUT_S} s")
        time.sleep(0.2)


def state_of(found: list[ResultSet], rows: int) -> str:
    """``absent``, ``complete`` (``rows`` rows, once) or what is partial about a writer's result set."""
    if not found:
        return "absent"
    if len(found) == 1 and not found[0].half_written and found[0].distinct_seq == rows and not found[0].duplicated:
        return "complete"
    return "partial: " + "; ".join(f"{s.stored} rows, output_count {s.output_count}" for s in found)
