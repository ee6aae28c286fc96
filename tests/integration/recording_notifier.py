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
            out.write(json.dumps({"text": self.text, "kind": event["kind"], "model_id": event["model_id"],
                                  "version": event["version"], "figures": event["figures"]}) + "\n")
