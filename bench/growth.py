"""Growth: how the cost grows with the work, so the curve shows it.

Parse+serialize at ``--growth-versions`` (1,000, 2,000, 5,000) against a static DAG file of
the same graph, and the serialized DAG's size against linear growth from the smallest size;
then the hourly snapshot over ``--growth-days`` x ``--growth-models`` (90 days x 200 models,
about 62 million output rows per server) against the same queries without partition pruning
and indexes, on every server of the run. Not part of the default ``make bench`` (seeding the
history takes most of its half hour): ``make bench BENCH_ARGS=growth``.
"""

from __future__ import annotations

import argparse

from bench import snapshot
from bench.environment import BenchEnv
from bench.measure import Comparison, Figure, at_most
from bench.parse import GOAL, measure_parse


def run(env: BenchEnv, args: argparse.Namespace) -> list[Comparison]:
    comparisons: list[Comparison] = []
    sizes = sorted(args.growth_versions)
    bytes_per_version: float | None = None
    for versions in sizes:
        figures = measure_parse(env, versions // 2, args.runs, args.warmup, name="growth")
        comparisons.append(
            Comparison(
                f"parse+serialize at {figures.size}",
                figures.unchanged,
                figures.static,
                GOAL,
                f"first parse after a registry change: {figures.changed}",
            )
        )
        bytes_per_version = bytes_per_version or figures.serialized_bytes / versions
        comparisons.append(
            Comparison(
                f"serialized DAG at {versions:,} versions",
                Figure("size", figures.serialized_bytes, "B"),
                Figure(f"linear from {sizes[0]:,}", bytes_per_version * versions, "B"),
                at_most(1.1),
                f"{figures.serialized_bytes / versions:,.0f} B per version",
            )
        )
    history = argparse.Namespace(
        **{**vars(args), "snapshot_days": args.growth_days, "snapshot_models": args.growth_models}
    )
    return comparisons + snapshot.run(env, history)
