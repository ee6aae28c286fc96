"""The benchmarks by name, and the results table.

To add one: write ``bench/<name>.py`` with ``run(env, args) -> list[Comparison]``, list it in
:data:`BENCHMARKS`, and give its sizes flags in ``bench/__main__.py``. Modules are
imported only when they run, after the environment is set, because importing Airflow
reads its configuration.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from bench.environment import BenchEnv
from bench.measure import Comparison, Table

#: A benchmark returns its rows of the results table, and any tables of its own.
Benchmark = Callable[[BenchEnv, argparse.Namespace], list[Comparison | Table]]

#: name -> module holding its ``run``; run in this order.
BENCHMARKS: dict[str, str] = {
    "parse": "bench.parse",
    "persistence": "bench.persistence",
    "xcom": "bench.xcom",
    "cycle": "bench.cycle",
    "backtest": "bench.backtest",
    "snapshot": "bench.snapshot",
    "capacity": "bench.capacity",
    "growth": "bench.growth",
    "ais": "bench.ais_replay",
    "registry": "bench.registry",
}
#: What ``make bench`` runs when no benchmark is named; the long ones are run by name.
#: ``registry`` seeds 100,000 versions on each server (about 40 minutes with two); ``backtest``
#: (a day of cycles of one model on a real Airflow, about 5 minutes) runs by name.
DEFAULT = ("parse", "persistence", "xcom", "cycle", "snapshot", "registry")


def load(name: str) -> Benchmark:
    return importlib.import_module(BENCHMARKS[name]).run


def format_table(results: list[Comparison | Table], errors: dict[str, str]) -> str:
    """The results as aligned text; notes and errors follow the table, then the benchmarks' own tables."""
    comparisons = [r for r in results if isinstance(r, Comparison)]
    tables = [r for r in results if isinstance(r, Table)]
    header = ("benchmark", "product", "baseline", "ratio", "goal", "result")
    rows = [
        (c.name, str(c.product), str(c.baseline), f"{c.ratio:.3g}", str(c.goal), "PASS" if c.passed else "MISS")
        for c in comparisons
    ]
    rows += [(name, "-", "-", "-", "-", "ERROR") for name in errors]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += [f"  * {c.name}: {c.note}" for c in comparisons if c.note]
    lines += [f"  ! {name}: {message}" for name, message in errors.items()]
    lines += [f"\n{table}" for table in tables]
    return "\n".join(lines)
