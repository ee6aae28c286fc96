"""``modelreg`` / ``python -m models_core``: registry commands for operators."""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

from models_core.connections import registry_connection
from models_core.demo_registry import seed_demo_if_empty
from models_core.errors import ModelRegistryError
from models_core.migrate import migrate
from models_core.plan_doc import render_plan_doc
from models_core.plan_source import plan_from_registry
from models_core.settings import load_settings
from models_core.sql_files import queries


def _cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    with registry_connection(settings, application_name="modelreg:migrate") as conn:
        applied = migrate(conn, settings.schema)
        print(f"schema {settings.schema}: applied {', '.join(applied)}" if applied
              else f"schema {settings.schema}: up to date")
        if args.seed_demo:
            seeded = seed_demo_if_empty(conn)
            print("seeded the demo registry" if seeded else "registry not empty: demo not seeded")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(render_plan_doc(plan_from_registry(settings), settings))
    return 0


def _cmd_rows(args: argparse.Namespace) -> int:
    settings = load_settings()
    cycle = datetime.fromisoformat(args.cycle)
    with registry_connection(settings, application_name="modelreg:rows") as conn, conn.cursor() as cur:
        cur.execute(queries("reports.sql")["rows_per_version"], {"cycle": cycle})
        rows = cur.fetchall()
    header = ("model", "version", "role", "output rows", "metrics")
    table = [header] + [tuple(str(value) for value in row) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"rows stored for cycle {cycle.isoformat()}:")
    for row in table:
        print("  " + "  ".join(value.ljust(width) for value, width in zip(row, widths)))
    missing = [f"{row[0]}@{row[1]}" for row in rows if row[3] == 0]
    if missing:
        print(f"  no rows for: {', '.join(missing)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelreg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_migrate = sub.add_parser("migrate", help="create or upgrade the registry schema (idempotent)")
    p_migrate.add_argument("--seed-demo", action="store_true",
                           help="also insert the demo registry when it has no versions")
    p_migrate.set_defaults(func=_cmd_migrate)
    p_plan = sub.add_parser("plan", help="print the cycle plan the registry describes now")
    p_plan.set_defaults(func=_cmd_plan)
    p_rows = sub.add_parser("rows", help="rows stored per ACTIVE version for one cycle")
    p_rows.add_argument("--cycle", required=True, help="the cycle's timestamp, ISO-8601 with offset")
    p_rows.set_defaults(func=_cmd_rows)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelRegistryError, ValueError) as exc:
        print(f"modelreg {args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a database error etc.: one clear line, non-zero exit
        import psycopg2

        if isinstance(exc, psycopg2.Error):
            print(f"modelreg {args.command}: database error: {str(exc).strip()}", file=sys.stderr)
            return 1
        raise
