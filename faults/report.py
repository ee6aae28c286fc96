"""One fault's figures, and the table ``make faults`` prints."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class FaultReport:
    """What one fault measured. ``passed`` is decided by the fault from its own expectations.

    ``outcomes`` counts trials by outcome (e.g. ``recovered``, ``failed-clean``, ``wrong``);
    ``recover_s`` holds, per trial, the seconds from the injection to the recovery the
    fault waits for; ``notes`` say what was seen, most useful first when it FAILs.
    """

    name: str
    trials: int = 0
    outcomes: Counter = field(default_factory=Counter)
    rows_lost: int = 0
    rows_duplicated: int = 0
    half_written: int = 0
    recover_s: list[float] = field(default_factory=list)
    passed: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the harness itself broke: no verdict on the product

    def note(self, line: str) -> None:
        self.notes.append(line)

    @property
    def data_intact(self) -> bool:
        """No row lost, duplicated or half-written: what every fault that writes must keep."""
        return not (self.rows_lost or self.rows_duplicated or self.half_written)

    def has_only(self, *accepted: str) -> bool:
        """Every trial ended in one of the ``accepted`` outcomes."""
        return all(outcome in accepted for outcome in self.outcomes)

    @property
    def recover_text(self) -> str:
        if not self.recover_s:
            return "-"
        return f"{statistics.median(self.recover_s):.1f} / {max(self.recover_s):.1f} s"

    @property
    def outcome_text(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items(), key=lambda i: -i[1])) or "-"


def count_text(values: Iterable[str]) -> str:
    """``a 2, b 1``: how often each value occurs, sorted by value."""
    counted = Counter(values)
    return ", ".join(f"{value} {counted[value]}" for value in sorted(counted))


HEADER = (
    "fault",
    "trials",
    "outcomes",
    "rows lost",
    "rows duplicated",
    "half-written",
    "time to recover (median / max)",
    "run time",
    "result",
)


def _cells(r: FaultReport) -> tuple[str, ...]:
    """One fault's row, as both tables show it."""
    return (
        r.name,
        str(r.trials),
        r.outcome_text,
        str(r.rows_lost),
        str(r.rows_duplicated),
        str(r.half_written),
        r.recover_text,
        f"{r.seconds:.0f} s",
        "ERROR" if r.error else ("PASS" if r.passed else "FAIL"),
    )


def format_table(reports: list[FaultReport]) -> str:
    """Aligned text: one row per fault, then each fault's notes."""
    rows = [_cells(r) for r in reports]
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [HEADER, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for report in reports:
        if report.error:
            lines.append(f"  ! {report.name}: harness error: {report.error}")
        lines += [f"  * {report.name}: {note}" for note in report.notes]
    return "\n".join(lines)


def markdown_table(reports: list[FaultReport]) -> str:
    """The same rows as a Markdown table, for docs/explanation/fault-tolerance.md."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in reports]
    return "\n".join(lines)
