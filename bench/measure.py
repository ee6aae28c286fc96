"""Timing and the comparison each benchmark reports: two figures, their ratio, a goal."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One value, e.g. ``Figure("static file", 1.93, "s")``; a median shows its runs' spread."""

    label: str
    value: float
    unit: str
    spread: float | None = None  # half the range of the runs, relative to their median

    @classmethod
    def median_of(cls, label: str, samples: list[float], unit: str) -> Figure:
        median = statistics.median(samples)
        return cls(label, median, unit, (max(samples) - min(samples)) / 2 / median)

    def __str__(self) -> str:
        if self.unit == "s":
            text = f"{self.value:.3g} s" if self.value >= 0.1 else f"{self.value * 1000:.3g} ms"
        else:
            text = f"{self.value:,.0f} {self.unit}"
        return f"{self.label} {text}" + ("" if self.spread is None else f" ±{self.spread:.0%}")


@dataclass(frozen=True)
class Goal:
    """A bound on ``product / baseline``."""

    op: str  # "<=" or ">="
    bound: float

    def met(self, ratio: float) -> bool:
        return ratio <= self.bound if self.op == "<=" else ratio >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


def at_most(bound: float) -> Goal:
    return Goal("<=", bound)


def at_least(bound: float) -> Goal:
    return Goal(">=", bound)


@dataclass(frozen=True)
class Comparison:
    """A row of the results table; ``note`` says how it was measured when that is not obvious."""

    name: str
    product: Figure
    baseline: Figure
    goal: Goal
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.product.value / self.baseline.value

    @property
    def passed(self) -> bool:
        return self.goal.met(self.ratio)


@dataclass(frozen=True)
class Table:
    """A benchmark's own table, printed after the results table (e.g. figures per size side by side)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]

    def __str__(self) -> str:
        widths = [max(len(row[i]) for row in [self.header, *self.rows]) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [self.header, *self.rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([self.title, "", *lines, *(f"  * {note}" for note in self.notes)])


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` took, after a garbage collection so earlier runs' garbage is not billed."""
    gc.collect()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def interleaved(sides: dict[str, Callable[[], float]], *, runs: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each timed run per side; one run of every side per round, so drift hits all alike.

    Each round starts one side later than the one before, so no side always runs right after
    the same other side (whatever one side leaves behind, the next one pays for). Each side
    returns the seconds of its timed part (its setup excluded); the first ``warmup`` rounds
    are dropped.
    """
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for round_number in range(warmup + runs):
        start = round_number % len(names)
        for name in names[start:] + names[:start]:
            seconds = sides[name]()
            if round_number >= warmup:
                samples[name].append(seconds)
    return samples
