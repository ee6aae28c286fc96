"""``modelreg backends ...``, ``modelreg reactivate`` and ``modelreg policy``: the self-healing commands.

Kept apart from :mod:`cli` (which registers them) so each concern's commands read on their own.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from models_core.backends.catalog import backend_statuses
from models_core.registry.guards import ON_PRIMARY_ERROR

if TYPE_CHECKING:
    from models_core.registry.cli import Command

Output = tuple[Any, str]
AddCommand = Callable[..., argparse.ArgumentParser]


def cmd_backends(cmd: Command) -> Output:
    from models_core.registry.cli import table

    args = cmd.args
    if args.backends_action == "add":
        backend = cmd.change(
            "backends_add",
            {},
            {
                "name": args.name,
                "url": args.url,
                "health_path": args.health_path,
                "status_path": args.status_path,
                "timeout_s": args.timeout,
                "reason": args.reason,
            },
        )
        return (
            backend,
            f"registered backend {backend['name']} ({backend['base_url'].rstrip('/')}"
            f"{backend['health_path']}); DAG detection_model_backend_health probes it from its next round",
        )
    if args.backends_action == "remove":
        result = cmd.change("backends_remove", {"name": args.name}, {"reason": args.reason, "force": args.force})
        return result, f"removed backend {args.name}"
    statuses = backend_statuses(cmd.conn)
    rows = [
        (
            s.backend.name,
            s.backend.base_url,
            s.status or "never probed",
            s.since.isoformat(timespec="seconds") if s.since else None,
            None if s.latency_ms is None else f"{s.latency_ms:g}",
            None if s.baseline_ms is None else f"{s.baseline_ms:.1f}",
            s.load_class,
            s.active_jobs,
            s.last_sample_at.isoformat(timespec="seconds") if s.last_sample_at else None,
            s.error,
        )
        for s in statuses
    ]
    text = (
        table(
            ("backend", "url", "status", "since", "latency ms", "baseline ms", "load", "jobs", "last sample", "error"),
            rows,
        )
        if rows
        else "no backends registered (`modelreg backends add NAME URL`)"
    )
    return [s.as_dict() for s in statuses], text


def cmd_reactivate(cmd: Command) -> Output:
    args = cmd.args
    result = cmd.change(
        "reactivate",
        {"model_id": args.model, "version": args.version},
        {"reason": args.reason, "role": args.role, "window_hours": args.window, "force": args.force},
    )
    return result, (f"{args.model}@{args.version} is ACTIVE {result['role']} again; its failure count starts from zero")


def cmd_policy(cmd: Command) -> Output:
    from models_core.registry.cli import guard_output, json_option

    args = cmd.args
    thresholds = json_option(args.metric_thresholds, "--metric-thresholds")
    changes = {
        "error_after_failures": args.error_after,
        "on_primary_error": args.on_primary_error,
        "max_failure_rate": args.max_failure_rate,
        "metric_thresholds": thresholds,
        "min_cycles": args.min_cycles,
        "window_hours": args.window,
        "cooldown_minutes": args.cooldown,
    }

    def text(policy: dict[str, Any]) -> str:
        return "\n".join(f"{key}: {json.dumps(value)}" for key, value in policy.items())

    if all(v is None for v in changes.values()):
        policy = cmd.registry.guards.healing_policy(args.model)
        return policy, text(policy)
    return guard_output(cmd.change("policy", {"model_id": args.model}, {**changes, "reason": args.reason}), text)


def add_commands(add: AddCommand, common_options: Callable[[argparse.ArgumentParser, bool], None]) -> None:
    """Register the commands with ``modelreg``'s ``add(name, func, help, *positionals)``.

    ``common_options`` adds ``--json`` to the ``backends`` sub-commands, so it is taken after them too.
    """
    p = add("backends", cmd_backends, "inference backends: add NAME URL, list, remove NAME")
    actions = p.add_subparsers(dest="backends_action", required=True)
    added = actions.add_parser("add", help="register a backend the health DAG probes")
    added.add_argument("name")
    added.add_argument("url", help="base URL, e.g. http://gpu-a:8000")
    added.add_argument("--health-path", default="/health", help="answers 2xx when healthy (default /health)")
    added.add_argument("--status-path", help='JSON with "active_jobs", for the load class (optional)')
    added.add_argument("--timeout", type=float, default=5.0, help="seconds a probe waits (default 5)")
    added.add_argument("--reason")
    actions.add_parser("list", help="backends with status UP/DOWN, latency, baseline and load class")
    removed = actions.add_parser("remove", help="remove a backend and its health history")
    removed.add_argument("name")
    removed.add_argument("--force", action="store_true", help="even if ACTIVE versions call it")
    removed.add_argument("--reason")
    for sub in (added, removed, actions.choices["list"]):
        common_options(sub, False)
    p = add("reactivate", cmd_reactivate, "bring a version out of ERROR, ACTIVE in its role again", "model", "version")
    p.add_argument("--role", choices=["PRIMARY", "SHADOW", "CHALLENGER"], help="another role than it had")
    p.add_argument(
        "--window",
        type=float,
        default=168,
        help="hours the gates look at when reactivating into PRIMARY is a promotion (default 168)",
    )
    p.add_argument("--force", action="store_true", help="past failing checks or gates (needs --reason)")
    p.add_argument("--reason")
    p = add("policy", cmd_policy, "show or set a model's self-healing policy", "model")
    p.add_argument(
        "--on-primary-error",
        choices=ON_PRIMARY_ERROR,
        help="when the PRIMARY goes to ERROR or degrades: alert only, or roll back",
    )
    p.add_argument("--error-after", type=int, metavar="K", help="failed cycles in a row before ERROR")
    p.add_argument("--max-failure-rate", type=float, help="degradation rule: failure rate over the window")
    p.add_argument("--metric-thresholds", help='degradation rule, JSON, e.g. {"flagged": {"max": 50}}')
    p.add_argument("--min-cycles", type=int, help="cycles in the window before the rules judge")
    p.add_argument("--window", type=float, help="hours the degradation rules look back")
    p.add_argument("--cooldown", type=float, help="minutes after a PRIMARY change before an automatic rollback")
    p.add_argument("--reason", help="why the policy changes (recorded in the history)")
