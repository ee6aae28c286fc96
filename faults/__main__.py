"""``python -m faults``: run the faults, print the table, exit 1 unless every outcome is right."""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import sys
import time
import traceback
from datetime import UTC, datetime

from faults.environment import SERVER_ENV, Suite
from faults.report import FaultReport, format_table, markdown_table
from faults.suite import FAULTS, load


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m faults",
        description="Inject faults into real Airflow processes and a real PostgreSQL (the one "
        f"{SERVER_ENV} names, a libpq URL, else an embedded one; a database that gets "
        "restarted is always an embedded one the suite starts itself), then check the outcome.",
    )
    parser.add_argument("faults", nargs="*", metavar="FAULT", help=f"any of {', '.join(FAULTS)} (default: all)")
    parser.add_argument("--seed", type=int, help="seed of every random moment and choice (default: from the clock)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data) and print its path")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        type=_setting,
        help="an environment variable for every process of every fault, e.g. "
        "AIRFLOW__MODEL_REGISTRY__TASK_TIMEOUT=3600 to see hung_shadow catch a weaker setting",
    )
    for name in FAULTS:
        load(name).add_arguments(parser)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    args.faults = [name for name in FAULTS if name in args.faults] if args.faults else list(FAULTS)
    if args.seed is None:
        args.seed = int(time.time())
    return args


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected VAR=VALUE, got {text!r}")
    return name, value


def _stop(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # so process groups and databases are cleaned up on SIGTERM too
    print(f"[faults] seed {args.seed}; faults: {', '.join(args.faults)}", file=sys.stderr, flush=True)
    suite = Suite.create(keep=args.keep, overrides=dict(args.set))
    if args.set:
        print(f"[faults] every process also gets {dict(args.set)}", file=sys.stderr, flush=True)
    reports: list[FaultReport] = []
    started_all = time.monotonic()
    try:
        for name in args.faults:
            print(f"[faults] {name} ...", file=sys.stderr, flush=True)
            report = FaultReport(name)
            started = time.monotonic()
            try:
                load(name).run(suite, args, random.Random(f"{args.seed}:{name}"), report)
            except Exception as exc:  # one broken fault must not hide the others' figures
                traceback.print_exc()
                report.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
            report.seconds = time.monotonic() - started
            reports.append(report)
            print(
                f"[faults] {name}: {'PASS' if report.passed and not report.error else 'FAIL'} "
                f"in {report.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        suite.close()
    machine = (
        f"{platform.node()}: {platform.machine()}, {_cpus()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"faults, seed {args.seed}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, "
        f"total {time.monotonic() - started_all:.0f} s"
    )
    print(format_table(reports))
    if args.markdown:
        print("\n" + markdown_table(reports))
    return 0 if reports and all(r.passed and not r.error for r in reports) else 1


def _cpus() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
