"""Find the model classes of a models package.

Every module under the package is imported and each :class:`BaseDetectionModel` subclass
with a ``model_id`` is collected. A module that fails to import is logged and reported
(the others still load); two classes with one model_id are an error naming both.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import os
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


#: A package's Python files, each as (path, size, modification time in ns).
PackageFiles = list[tuple[str, int, int]]
#: Each package's last discovery, with the module files it was made from (see :func:`discover_models`).
_discovered: dict[str, tuple[list[str], Discovery]] = {}


def module_paths(package_name: str) -> list[str]:
    """The package's module files, found without importing it, as the import system finds
    modules: through symlinked folders too (each real folder once), every suffix a module may
    have (``.py``, ``.pyc``, extension modules)."""
    spec = importlib.util.find_spec(package_name)
    roots: list[str] = []
    if spec is not None:
        roots = list(spec.submodule_search_locations or [])
        if not roots and spec.origin is not None:  # a single-module package
            roots = [spec.origin]
    suffixes = tuple(importlib.machinery.all_suffixes())
    paths: list[str] = []
    seen: set[str] = set()
    for root in roots:
        if not os.path.isdir(root):
            paths.append(root)
            continue
        for folder, folders, names in os.walk(root, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:  # a link back up the tree: walked already
                folders.clear()
                continue
            seen.add(real)
            folders[:] = [f for f in folders if f != "__pycache__"]  # the import system's cache, not modules
            paths += [os.path.join(folder, name) for name in names if name.endswith(suffixes)]
    return sorted(paths)


def package_files(package_name: str) -> PackageFiles:
    """The package's module files (:func:`module_paths`) by size and time: what a plan built
    from a discovery depends on. A file that cannot be read meanwhile (removed since listed, a
    dangling link such as an editor's lock file ``.#a.py``) is no module: it is left out,
    never an error."""
    found = []
    for path in module_paths(package_name):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        found.append((path, stat.st_size, stat.st_mtime_ns))
    return found


def discover_models(package_name: str) -> Discovery:
    """Import ``package_name`` and its submodules and collect their model classes.

    A long-lived process (the API server asks at every request that checks a version) reuses
    its last discovery of the package while the package's module files are those it was made
    from, by path, and every module imported: a module changed in place would not be imported
    again in that process anyway, and walking 1,000 classes (or stat-ing their files) costs more
    than the request's queries. A new or removed file, or a module that failed to import, makes
    it discover again.
    """
    paths = module_paths(package_name)
    kept = _discovered.get(package_name)
    if kept is not None and kept[0] == paths:
        return kept[1]
    found = _discover(package_name)
    if not found.import_errors:
        _discovered[package_name] = (paths, found)
    return found


def _discover(package_name: str) -> Discovery:
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
    log.info("discovered %d model classes in %s", len(classes), package_name)
    log.debug("model classes of %s: %s", package_name, sorted(classes))
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
