"""Telling people what self-healing did, through Airflow's notifier interface.

Any ``BaseNotifier`` works: the class named by the ``notifier`` setting (a dotted path, e.g.
``airflow.providers.slack.notifications.slack.SlackNotifier``), built with the keyword
arguments of ``notifier_kwargs`` (JSON). Its templated fields are rendered with the task's
context plus ``model_registry_event`` (kind, model_id, version, message, figures, cycle), so
``{"text": "{{ model_registry_event.message }}"}`` is a whole Slack configuration. Without
a setting, :class:`LogNotifier` writes the event to the task log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.module_loading import import_string

from models_core.settings import SECTION, Settings

log = logging.getLogger(__name__)

EVENT_KEY = "model_registry_event"


class LogNotifier(BaseNotifier):
    """The default notifier: one warning line per event in the task log."""

    def notify(self, context: Mapping[str, Any]) -> None:
        event = context[EVENT_KEY]
        log.warning("model registry %s: %s", event["kind"], event["message"])


def notifier_class(settings: Settings) -> type[BaseNotifier]:
    """The configured notifier class, or a clear error naming the setting."""
    if not settings.notifier:
        return LogNotifier
    try:
        cls = import_string(settings.notifier)
    except ImportError as exc:
        raise ValueError(f"[{SECTION}] notifier {settings.notifier!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseNotifier)):
        raise ValueError(f"[{SECTION}] notifier {settings.notifier!r} is not a BaseNotifier subclass")
    return cls


def notify(settings: Settings, context: Mapping[str, Any], event: dict[str, Any]) -> bool:
    """Send ``event`` through a fresh notifier (rendering templates changes it); False if that failed.

    A notifier that fails is logged, never raised: the change it reports is already
    committed and audited, and the next models must still be reviewed.
    """
    try:
        notifier = notifier_class(settings)(**settings.notifier_kwargs)
        notifier({**context, EVENT_KEY: event})
    except Exception as exc:  # any provider's failure: logged with the event, the review goes on
        log.error(
            "could not send the %s notification for %s (%s: %s): %s",
            event["kind"],
            event["model_id"],
            type(exc).__name__,
            exc,
            event["message"],
        )
        return False
    return True
