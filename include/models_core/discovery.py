"""Find the model classes of a models package.

Every module under the package is imported and each :class:`BaseDetectionModel` subclass
with a ``model_id`` is collected. A module that fails to import is logged and reported
(the others still load); two classes with one model_id are an error naming both.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import Any, cast

from models_core.errors import DuplicateModelIdError
from models_core.model import BaseDetectionModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelClass:
    """A discovered class: where to import it from and what it declares."""

    model_id: str
    class_path: str  # "package.module:ClassName"
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class Discovery:
    classes: dict[str, ModelClass]
    import_errors: tuple[str, ...] = field(default_factory=tuple)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def discover_models(package_name: str) -> Discovery:
    """Import ``package_name`` and its submodules and collect their model classes."""
    package = importlib.import_module(package_name)
    modules = [package]
    errors: list[str] = []
    # onerror: a sub-package that raises is reported by the import below, like a module.
    for info in pkgutil.walk_packages(
        getattr(package, "__path__", []), prefix=f"{package_name}.", onerror=lambda name: None
    ):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception as exc:  # one broken module must not hide the others
            # One line: the reason stands in the plan's warnings and the DAG's docs; the
            # traceback is there for whoever turns on debug logging.
            log.warning(
                "cannot import model module %s; its models are skipped: %s: %s", info.name, type(exc).__name__, exc
            )
            log.debug("import of model module %s failed", info.name, exc_info=True)
            errors.append(f"module {info.name} failed to import: {type(exc).__name__}: {exc}")
    found: dict[str, type[BaseDetectionModel]] = {}
    for module in modules:
        for obj in vars(module).values():
            if not (isinstance(obj, type) and issubclass(obj, BaseDetectionModel)):
                continue
            if obj.__module__ != module.__name__ or not obj.__dict__.get("model_id"):
                continue
            existing = found.get(obj.model_id)
            if existing is not None and existing is not obj:
                raise DuplicateModelIdError(
                    f"model_id {obj.model_id!r} is declared by both {_class_path(existing)} "
                    f"and {_class_path(obj)}; model ids must be unique"
                )
            found[obj.model_id] = obj
    classes = {
        model_id: ModelClass(model_id, _class_path(cls), tuple(cls.depends_on or ()))
        for model_id, cls in sorted(found.items())
    }
    log.info("discovered %d model classes in %s: %s", len(classes), package_name, sorted(classes))
    return Discovery(classes=classes, import_errors=tuple(errors))


def code_dependencies(package_name: str) -> dict[str, tuple[str, ...]]:
    """Each model class's own ``depends_on``: the edges a dependency change must not close a cycle with."""
    return {model_id: cls.depends_on for model_id, cls in discover_models(package_name).classes.items()}


def import_model_class(class_path: str) -> type[BaseDetectionModel]:
    """Load the class a plan names, e.g. ``example_models.ingest:AisIngest``."""
    module_name, _, qualname = class_path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    # A plan names only classes that discovery found subclassing BaseDetectionModel.
    return cast(type[BaseDetectionModel], obj)
