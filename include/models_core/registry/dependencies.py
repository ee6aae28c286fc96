"""The registry's dependency edges between models, and the rule that they never close a cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models_core.plan import find_cycles
from models_core.registry.actors import Permission
from models_core.registry.session import LifecycleError
from models_core.store.sql_files import queries

if TYPE_CHECKING:
    from models_core.registry.model_registry import ModelRegistry

_SQL = "registry/dependencies.sql"


class Dependencies:
    """Reads and changes of ``detection_model_dependencies``."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.session = registry.session

    def edges(self) -> list[tuple[str, str]]:
        """Every (model_id, depends_on) edge of the registry."""
        return [tuple(row) for row in self.session.fetch("dependencies", {}, _SQL)]

    def edges_of(self, model_id: str) -> list[tuple[str, str]]:
        """The (model_id, depends_on) edges from and to ``model_id``."""
        return [tuple(row) for row in self.session.fetch("edges_of_model", {"model_id": model_id}, _SQL)]

    def add(self, model_id: str, upstream: str, plan_classes: dict[str, tuple[str, ...]]) -> None:
        """Add ``model_id`` depends on ``upstream``; refuses unknown models and cycles.

        ``plan_classes`` maps each discovered model_id to its class-level depends_on, so a
        cycle through code-declared edges is refused too. The graph is read under the
        registry-wide lock, so two changes at once cannot each close half of a cycle.
        """
        self.session.actor.require(Permission.REQUEST, f"add the dependency {model_id} -> {upstream}")
        if model_id == upstream:
            raise LifecycleError(f"{model_id} cannot depend on itself")
        with self.session.change(model_id, graph=True) as cur:
            known = {v.model_id for v in self.session.versions()} | set(plan_classes)
            for name in (model_id, upstream):
                if name not in known:
                    raise LifecycleError(f"unknown model {name!r}: no version row and no model class declares it")
            graph: dict[str, set[str]] = {name: set(plan_classes.get(name, ())) for name in known}
            for m, d in self.edges():
                graph.setdefault(m, set()).add(d)
            graph[model_id].add(upstream)
            for cycle in find_cycles(graph):
                if model_id in cycle and upstream in cycle:
                    raise LifecycleError(f"{model_id} -> {upstream} would close a dependency cycle among {cycle}")
            self.session.context(cur, "deps_add")
            cur.execute(queries(_SQL)["insert_dependency"], {"model_id": model_id, "depends_on": upstream})

    def remove(self, model_id: str, upstream: str) -> None:
        self.session.actor.require(Permission.REQUEST, f"remove the dependency {model_id} -> {upstream}")
        with self.session.change(model_id, graph=True) as cur:
            self.session.context(cur, "deps_remove")
            cur.execute(queries(_SQL)["delete_dependency"], {"model_id": model_id, "depends_on": upstream})
            if cur.rowcount == 0:
                raise LifecycleError(
                    f"{model_id} has no registry dependency on {upstream} (class-level depends_on is changed in code)"
                )
