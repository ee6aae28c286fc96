"""A class whose model_id is longer than the registry's 64 characters: refused where it is defined."""

from __future__ import annotations

from models_core import BaseDetectionModel


class TooLong(BaseDetectionModel):
    model_id = "model_id_" + "x" * 70
