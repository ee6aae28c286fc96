"""Each model's PRIMARY output as an Airflow Asset, so other DAGs can run on fresh results.

The PRIMARY task of model ``m`` has the outlet ``Asset("detection_model.m")``; when it
succeeds, Airflow records an asset event whose ``extra`` is the result's reference (model,
version, cycle, row count: :class:`~models_core.cycle.persistence.ResultRef`). A DAG
scheduled on that asset runs after each such event and finds the rows with
:func:`~models_core.cycle.persistence.load_result`. A skipped or failed PRIMARY emits no
event, so consumers never run on a cycle without a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset

from models_core.cycle.persistence import ResultRef

ASSET_PREFIX = "detection_model."


def primary_asset(model_id: str) -> Asset:
    """The Asset a model's PRIMARY results update: ``detection_model.<model_id>``."""
    return Asset(ASSET_PREFIX + model_id)


def publish_result(context: Mapping[str, Any], ref: ResultRef) -> None:
    """Put the stored result's reference in the asset event this task emits when it succeeds."""
    context["outlet_events"][primary_asset(ref.model_id)].extra = ref.to_xcom()


def result_refs(context: Mapping[str, Any], model_id: str) -> list[ResultRef]:
    """The result references of the asset events that triggered a consumer DAG's run, oldest first.

    Several cycles can land between two consumer runs; each has its own event.
    """
    events = context["triggering_asset_events"].get(primary_asset(model_id), [])
    return [ResultRef.from_xcom(dict(event.extra)) for event in events]
