"""Reading a version's params with errors that name the model, version and key."""

from __future__ import annotations

from typing import Any

from models_core import BaseDetectionModel


def number(model: BaseDetectionModel, key: str, default: float, *, minimum: float = 0.0) -> float:
    """``model.params[key]`` (or ``default``) as a float of at least ``minimum``."""
    value: Any = model.params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{model.label()}: params.{key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def choice(model: BaseDetectionModel, key: str, default: str, options: tuple[str, ...]) -> str:
    """``model.params[key]`` (or ``default``), one of ``options``."""
    value = model.params.get(key, default)
    if value not in options:
        raise ValueError(f"{model.label()}: params.{key} must be one of {', '.join(options)}, got {value!r}")
    return value
