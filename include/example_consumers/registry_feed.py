"""The registry feed: an example DAG that runs on each change of one model in the registry.

It is scheduled on the registry asset of the demo chain's last model,
``detection_model_registry.alert_router``: each committed change of that model (a promotion,
a rollback, a version put in ERROR, an approval, a guard change) becomes one asset event
whose extra is the event (kind, action, version, from/to state, actor, reason, audit id,
``seq``), published within a minute by ``detection_model_registry_events``. What a platform
team would do with it: tell the model's owners when its PRIMARY changes (here, the log: put
your chat, pager or change-management ticket there), in the model's own order (``seq``).
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, get_current_context, task

from models_core.events.outbox import registry_asset
from models_core.settings import load_settings

log = logging.getLogger(__name__)

#: The model whose changes this feed follows; the only line to change for another model.
FOLLOWED_MODEL = "alert_router"
DAG_ID = "example_registry_feed"


def announce_changes() -> dict[str, Any]:
    """Task body: each triggering registry event, oldest first; PRIMARY changes announced."""
    events = get_current_context()["triggering_asset_events"].get(registry_asset(FOLLOWED_MODEL), [])
    seen = sorted((dict(event.extra) for event in events), key=lambda extra: extra["seq"])
    for extra in seen:
        if extra.get("to_role") == "PRIMARY" and extra.get("to_status") == "ACTIVE":
            log.warning(
                "%s@%s is now the PRIMARY (%s by %s, basis %s): %s",
                extra["model_id"],
                extra["version"],
                extra["action"],
                extra["actor"],
                extra.get("basis"),
                extra.get("reason") or "no reason given",
            )
    return {"events": [{"event_id": e["event_id"], "seq": e["seq"], "action": e["action"]} for e in seen]}


def build_registry_feed_dag() -> DAG:
    """A DAG run per registry change of ``alert_router`` (several at once if they queued up)."""
    with DAG(
        dag_id=DAG_ID,
        schedule=[registry_asset(FOLLOWED_MODEL)],
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        tags=["model-registry", "example"],
        default_args={"owner": load_settings().dag_owner},
        doc_md=f"Runs on each registry change of `{FOLLOWED_MODEL}` (Asset "
        f"`{registry_asset(FOLLOWED_MODEL).name}`) and announces PRIMARY changes.",
    ) as dag:
        task(task_id="announce_changes")(announce_changes)()
    return dag
