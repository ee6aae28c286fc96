"""The registry's event outbox and how its rows become Airflow Asset events exactly once.

Every audit row of the registry becomes an event of its model in the same transaction
(migration 0011's trigger on ``detection_model_transitions``): no door of the registry can
change it without an event, and a change that rolls back leaves none. Each model's events
carry a gapless ``seq`` in commit order.

The publisher is a task of the ``detection_model_registry_events`` DAG. Airflow records the
asset events a task emits together with the task's success, in one transaction of its
metadata database; the publisher therefore never marks anything itself at publish time:

1. it first settles the claims of earlier tries: a try that Airflow says succeeded did emit
   its events (mark them published); any other try emitted none (release them);
2. it claims the oldest unpublished events under its own try (``dag_id/run_id/try``),
   commits that, and emits them, in order, through the registry asset alias.

A kill at any moment leaves either a try that succeeded (its events are out, the next run
marks them) or one that did not (none are out, the next try or run sends them again), so
each outbox row becomes exactly one Asset event, and a model's events go out in ``seq`` order
(one run at a time; a run claims nothing while an earlier try is unsettled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Asset, AssetAlias
from psycopg2.extensions import connection as PgConnection

from models_core.store.sql_files import fetch_value, queries

log = logging.getLogger(__name__)

_SQL = "events/events.sql"
#: Every model's registry asset is ``detection_model_registry.<model_id>``.
REGISTRY_ASSET_PREFIX = "detection_model_registry."
#: The alias the publisher emits every model's registry asset event through.
REGISTRY_ALIAS = AssetAlias("detection_model_registry")
#: At most this many events per publisher try (the rest go in the next run, in order).
CLAIM_LIMIT = 1000
#: A try in one of these states did not succeed, and never will: Airflow recorded none of its events.
_NOT_PUBLISHED = frozenset({"failed", "upstream_failed", "skipped", "removed", "up_for_retry", None})


class UnsettledClaim(RuntimeError):
    """An earlier publisher try is still running (or its state is unknown): claim nothing yet."""


def registry_asset(model_id: str) -> Asset:
    """The Asset that ``model_id``'s registry events update: ``detection_model_registry.<model_id>``."""
    return Asset(REGISTRY_ASSET_PREFIX + model_id)


@dataclass(frozen=True)
class Claim:
    """One publisher try: the claim it writes on the events it emits."""

    dag_id: str
    run_id: str
    try_number: int

    @property
    def token(self) -> str:
        return f"{self.dag_id}/{self.run_id}/{self.try_number}"

    @classmethod
    def parse(cls, token: str) -> Claim:
        dag_id, rest = token.split("/", 1)
        run_id, try_number = rest.rsplit("/", 1)
        return cls(dag_id, run_id, int(try_number))


@dataclass(frozen=True)
class Event:
    """One outbox row as it goes out: the model, its place in the model's order and the payload."""

    event_id: int
    model_id: str
    seq: int
    payload: dict[str, Any]

    @property
    def extra(self) -> dict[str, Any]:
        """The Asset event's ``extra`` (and a webhook's body): the payload with its event id."""
        return {"event_id": self.event_id, **self.payload}


#: Airflow's state of a publisher task: (dag_id, run_id) -> the state, None if there is no such task.
TaskState = Callable[[str, str], str | None]


def settle(conn: PgConnection, me: Claim, task_state: TaskState) -> dict[str, int]:
    """Mark or release every claim of an earlier try; :class:`UnsettledClaim` if one is still open.

    Returns how many claims were marked published and how many released.
    """
    q = queries(_SQL)
    counts = {"marked": 0, "released": 0}
    with conn, conn.cursor() as cur:
        cur.execute(q["open_claims"])
        for (token,) in cur.fetchall():
            claim = Claim.parse(token)
            if claim == me:
                continue
            if (claim.dag_id, claim.run_id) == (me.dag_id, me.run_id):
                state: str | None = "failed"  # an earlier try of this very task: it did not succeed
            else:
                state = task_state(claim.dag_id, claim.run_id)
            if state == "success":
                cur.execute(q["mark_published"], {"claim": token})
                counts["marked"] += cur.rowcount
            elif state in _NOT_PUBLISHED:
                cur.execute(q["release_claim"], {"claim": token})
                counts["released"] += cur.rowcount
                log.info("publisher try %s ended %s: its %d event(s) go out again", token, state, cur.rowcount)
            else:
                raise UnsettledClaim(f"publisher try {token} is {state}: its events are not settled yet")
    return counts


def claim(conn: PgConnection, me: Claim, limit: int = CLAIM_LIMIT) -> list[Event]:
    """Claim the oldest unpublished events for ``me`` (committed before they are emitted)."""
    with conn, conn.cursor() as cur:
        cur.execute(queries(_SQL)["claim"], {"claim": me.token, "limit": limit})
        rows = cur.fetchall()
    return sorted((Event(*row) for row in rows), key=lambda e: e.event_id)


def emit(outlet_events: Any, events: list[Event]) -> None:
    """Add each event to the task's outlet events through the registry alias, in order."""
    for event in events:
        outlet_events[REGISTRY_ALIAS].add(registry_asset(event.model_id), extra=event.extra)


def backlog(conn: PgConnection) -> int:
    """How many events wait to be published (for the page and the fault's checks)."""
    with conn.cursor() as cur:
        cur.execute(queries(_SQL)["backlog"])
        count = fetch_value(cur)
    conn.rollback()
    return int(count or 0)
