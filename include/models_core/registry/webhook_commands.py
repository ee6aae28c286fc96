"""``modelreg webhooks ...``: the receivers of the registry's events and their delivery log.

Kept apart from :mod:`cli` (which registers them) so each concern's commands read on their own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from models_core.events.webhooks import ACTIONS, KINDS, deliveries, list_webhooks

if TYPE_CHECKING:
    from models_core.registry.cli import Command

Output = tuple[Any, str]
AddCommand = Callable[..., argparse.ArgumentParser]


def cmd_webhooks(cmd: Command) -> Output:

    args = cmd.args
    if args.webhooks_action == "add":
        events = [e.strip() for e in (args.events or "").split(",") if e.strip()]
        body = {"name": args.name, "url": args.url, "events": events, "secret_env": args.secret_env}
        added = cmd.change("webhooks_add", {}, body)
        return added, (
            f"webhook {added['name']} gets {', '.join(added['events']) or 'every event'} at {added['url']}, "
            f"signed with the secret in ${added['secret_env']} (set it where detection_model_registry_events runs)"
        )
    if args.webhooks_action == "remove":
        result = cmd.change("webhooks_remove", {"name": args.name}, {"reason": args.reason})
        return result, f"removed webhook {args.name} and its delivery log"
    if args.webhooks_action == "deliveries":
        return _deliveries(cmd)
    return _list(cmd)


def _deliveries(cmd: Command) -> Output:
    from models_core.registry.cli import table

    args = cmd.args
    log = deliveries(cmd.conn, args.name, args.limit)
    rows = [
        (
            d["id"],
            d["webhook"],
            d["event_id"],
            d["model_id"],
            d["status"],
            d["attempts"],
            d["last_http_status"],
            None if d["latency_ms"] is None else f"{d['latency_ms']:.0f}",
            d["next_attempt_at"].isoformat(timespec="seconds") if d["status"] == "PENDING" else None,
            d["last_error"],
        )
        for d in log
    ]
    header = ("id", "webhook", "event", "model", "status", "attempts", "http", "ms", "next attempt", "last error")
    return log, table(header, rows) if rows else "no deliveries yet"


def _list(cmd: Command) -> Output:
    from models_core.registry.cli import table

    hooks = list_webhooks(cmd.conn)
    rows = [
        (
            h["name"],
            h["url"],
            ",".join(h["events"]) or "all",
            h["secret_env"],
            h["delivered"],
            h["pending"],
            h["gave_up"],
        )
        for h in hooks
    ]
    header = ("webhook", "url", "events", "secret in", "delivered", "pending", "gave up")
    return hooks, table(header, rows) if rows else "no webhooks (`modelreg webhooks add NAME URL --secret-env VAR`)"


def add_commands(add: AddCommand, common_options: Callable[[argparse.ArgumentParser, bool], None]) -> None:
    """Register ``webhooks add|list|remove|deliveries`` with ``modelreg``'s ``add``."""
    p = add("webhooks", cmd_webhooks, "receivers of the registry's events: add NAME URL, list, remove, deliveries")
    actions = p.add_subparsers(dest="webhooks_action", required=True)
    added = actions.add_parser("add", help="POST the registry's events, signed, to URL")
    added.add_argument("name")
    added.add_argument("url")
    added.add_argument(
        "--events",
        metavar="EVENT,...",
        help=f"kinds ({', '.join(KINDS)}) or actions ({', '.join(ACTIONS)}) to send (default: every event)",
    )
    added.add_argument(
        "--secret-env", required=True, metavar="VAR", help="environment variable of the sender holding the secret"
    )
    removed = actions.add_parser("remove", help="remove a webhook and its delivery log")
    removed.add_argument("name")
    removed.add_argument("--reason")
    log = actions.add_parser("deliveries", help="the delivery log: status, attempts, last error, latency")
    log.add_argument("name", nargs="?", help="one webhook's deliveries (default: all)")
    log.add_argument("--limit", type=int, default=50, help="rows shown at most (default 50)")
    for sub in (added, removed, log, actions.add_parser("list", help="webhooks and their deliveries by status")):
        common_options(sub, False)
