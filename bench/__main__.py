"""``python -m bench``: run the benchmarks, print the results table, exit 1 if a goal is missed."""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback

from bench.environment import SERVER_ENV, BenchEnv
from bench.measure import Comparison, Table
from bench.suite import BENCHMARKS, DEFAULT, format_table, load


def _row_counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=f"Benchmarks against the PostgreSQL named by {SERVER_ENV} (a libpq URL), else an embedded one.",
    )
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(BENCHMARKS)} (default: {', '.join(DEFAULT)})",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=9,
        help="timed runs per figure; the median is reported (>= 3). One run varies by up to "
        "+-25%% from the next on a 2-core VM, so a median needs this many to hold its goal",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
    parser.add_argument(
        "--models",
        type=int,
        default=500,
        help="parse: models, each with a PRIMARY and a SHADOW or CHALLENGER, ~2 edges each",
    )
    parser.add_argument("--rows", type=int, default=200_000, help="persistence: output rows written per run")
    parser.add_argument(
        "--xcom-rows",
        type=_row_counts,
        default=[100, 10_000, 1_000_000],
        help="xcom: comma-separated output sizes of the PRIMARY task",
    )
    parser.add_argument("--cycle-models", type=int, default=50, help="cycle: models (PRIMARY only, ~2 edges each)")
    parser.add_argument("--cycle-runs", type=int, default=3, help="cycle: timed DAG runs of each DAG (>= 3)")
    parser.add_argument("--snapshot-days", type=int, default=30, help="snapshot: days of seeded history")
    parser.add_argument("--snapshot-models", type=int, default=50, help="snapshot: models in the seeded history")
    parser.add_argument(
        "--capacity-versions",
        type=_row_counts,
        default=[50, 100, 200, 400, 800],
        help="capacity: comma-separated cycle sizes in versions (half PRIMARY, half SHADOW/CHALLENGER)",
    )
    parser.add_argument("--celery-concurrency", type=int, default=4, help="capacity: task slots per Celery worker")
    parser.add_argument(
        "--capacity-runs",
        type=int,
        default=3,
        help="capacity: timed runs of each DAG per size (>= 3; sizes under 200 versions get more, up to 3x)",
    )
    parser.add_argument(
        "--growth-versions",
        type=_row_counts,
        default=[1000, 2000, 5000],
        help="growth: comma-separated registry sizes in versions for parse time and DAG size",
    )
    parser.add_argument("--growth-days", type=int, default=90, help="growth: days of seeded snapshot history")
    parser.add_argument("--growth-models", type=int, default=200, help="growth: models in that history")
    parser.add_argument(
        "--ais-copies",
        type=_row_counts,
        default=[1, 10, 100],
        help="ais: comma-separated vessel multipliers of the New York replay",
    )
    parser.add_argument("--ais-runs", type=int, default=3, help="ais: timed DAG runs per multiplier (>= 3)")
    parser.add_argument(
        "--registry-versions",
        type=_row_counts,
        default=[10_000, 100_000],
        help="registry: comma-separated registry sizes in versions (--registry-versions-per-model each model)",
    )
    parser.add_argument("--registry-versions-per-model", type=int, default=100, help="registry: versions per model")
    parser.add_argument(
        "--registry-calls", type=int, default=200, help="registry: calls per figure, for its p50 and p99"
    )
    parser.add_argument(
        "--registry-process-calls",
        type=int,
        default=15,
        help="registry: calls of the whole processes (modelreg) and of the hourly snapshot",
    )
    parser.add_argument(
        "--registry-seconds",
        type=float,
        default=60,
        help="registry: stop a figure's calls after this many seconds (at least 3 calls)",
    )
    parser.add_argument("--registry-days", type=int, default=90, help="registry: days of cycles of the ACTIVE versions")
    parser.add_argument(
        "--registry-cycle-minutes", type=int, default=60, help="registry: minutes between the seeded cycles"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.benchmarks) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if min(args.runs, args.cycle_runs, args.capacity_runs, args.ais_runs) < 3:
        parser.error(
            "--runs, --cycle-runs, --capacity-runs and --ais-runs must be at least 3: a median of fewer is not a median"
        )
    # Always in the registry's order, so that every run of the suite sets things up alike.
    args.benchmarks = [name for name in BENCHMARKS if name in args.benchmarks] if args.benchmarks else list(DEFAULT)
    return args


def _stop(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # so cleanup (process groups, databases) runs on SIGTERM too
    env = BenchEnv.create()
    results: list[Comparison | Table] = []
    errors: dict[str, str] = {}
    try:
        for name in args.benchmarks:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                results += load(name)(env, args)
            except Exception as exc:  # one broken benchmark must not hide the others' results
                traceback.print_exc()
                errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"[bench] {name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        env.close()
    print(format_table(results, errors))
    return 1 if errors or not all(r.passed for r in results if isinstance(r, Comparison)) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
