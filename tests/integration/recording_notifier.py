"""A real BaseNotifier for tests: appends each rendered notification to a JSON-lines file."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import BaseNotifier


class FileNotifier(BaseNotifier):
    """Writes ``text`` (a template, rendered with the task's context) and the event to ``path``."""

    template_fields = ("text",)

    def __init__(self, path: str, text: str) -> None:
        super().__init__()
        self.path = path
        self.text = text

    def notify(self, context) -> None:
        event = context["model_registry_event"]
        with Path(self.path).open("a") as out:
            out.write(
                json.dumps(
                    {
                        "text": self.text,
                        "kind": event["kind"],
                        "model_id": event["model_id"],
                        "version": event["version"],
                        "figures": event["figures"],
                    }
                )
                + "\n"
            )


#: Connections a MeddlingNotifier left holding a model's lock, for the test to release.
HELD: list = []


class MeddlingNotifier(FileNotifier):
    """A person who acts the moment self-healing tells them: after writing the event like
    :class:`FileNotifier`, on an event of kind ``on`` it promotes ``promote`` ("model:version",
    forced, as the person ``alice``) or takes the model's change lock ``lock`` ("model") in a
    session of its own and keeps it (:data:`HELD`) until the test releases it."""

    def __init__(self, path: str, text: str, on: str, promote: str | None = None, lock: str | None = None) -> None:
        super().__init__(path, text)
        self.on = on
        self.promote = promote
        self.lock = lock

    def notify(self, context) -> None:
        super().notify(context)
        if context["model_registry_event"]["kind"] != self.on:
            return
        from datetime import timedelta

        from registry_helpers import person

        from models_core.registry.model_registry import ModelRegistry
        from models_core.settings import load_settings
        from models_core.store.connections import registry_connection
        from models_core.store.sql_files import queries

        if self.promote:
            model_id, version = self.promote.split(":")
            with registry_connection(load_settings()) as conn:
                ModelRegistry(conn, person("alice")).lifecycle.promote(
                    model_id, version, window=timedelta(hours=1), force=True, reason="a person's promotion"
                )
        if self.lock:
            context_manager = registry_connection(load_settings())
            conn = context_manager.__enter__()
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute(queries("registry/session.sql")["try_lock_model"], {"model_id": self.lock})
            HELD.append((context_manager, conn))
