"""The registry as one actor sees it: one object per concern, on one connection.

``ModelRegistry(conn, actor)`` is what the CLI, the registry API, the self-healing review
and the tests use. Each concern has its own home, so each rule has one:

- ``lifecycle``: versions and their transitions (register, activate, promote, rollback,
  ERROR, reactivate), behind the one transition policy (:mod:`transitions`);
- ``evidence``: what versions showed, the stage checks and quality gates, ``--check``;
- ``approvals``: requests for a second person, and their approval;
- ``guards``: what guards a model (gates, stage checks, approvals, healing policy);
- ``annotations``: descriptions, tags and metadata documents;
- ``dependencies``: the registry's dependency edges.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from psycopg2.extensions import connection as PgConnection

from models_core.registry.actors import Actor
from models_core.registry.annotations import Annotations
from models_core.registry.approvals import Approvals
from models_core.registry.dependencies import Dependencies
from models_core.registry.evidence import Evidence
from models_core.registry.guards import Guards
from models_core.registry.lifecycle import Lifecycle
from models_core.registry.metadata import tags_match
from models_core.registry.session import LifecycleError, RegistrySession
from models_core.store.registry_reader import VersionRecord


class ModelRegistry:
    """Every registry operation of one actor, through one connection."""

    def __init__(self, conn: PgConnection, actor: Actor) -> None:
        self.session = RegistrySession(conn, actor)
        self.conn = conn
        self.actor = actor
        self.evidence = Evidence(self)
        self.guards = Guards(self)
        self.approvals = Approvals(self)
        self.lifecycle = Lifecycle(self)
        self.annotations = Annotations(self)
        self.dependencies = Dependencies(self)

    def show(
        self,
        model_id: str,
        tags: list[tuple[str, str | None]] | None = None,
        *,
        every: list[VersionRecord] | None = None,
    ) -> dict[str, Any]:
        """A model's versions (those with ``tags`` only, if given) with their tags, metadata and
        latest metrics; its dependencies, gates, stage checks and approval requests. ``every``:
        the model's versions, when the caller has read them already."""
        every = self.session.versions(model_id) if every is None else every
        if not every:
            raise LifecycleError(f"unknown model {model_id!r}: it has no versions (see `modelreg list`)")
        versions = [v for v in every if tags_match(v.tags, tags or [])]
        latest = self.evidence.latest_metrics(model_id)
        edges = self.dependencies.edges_of(model_id)
        return {
            "model_id": model_id,
            "versions": [
                {
                    "id": v.id,
                    "version": v.version,
                    "status": v.status,
                    "role": v.role,
                    "params": v.params,
                    "description": v.description,
                    "tags": v.tags,
                    "metadata": v.metadata,
                    "latest": latest.get(v.id),
                }
                for v in versions
            ],
            "upstream": sorted(d for m, d in edges if m == model_id),
            "downstream": sorted(m for m, d in edges if d == model_id),
            "gates": self.evidence.gates(model_id),
            "stage_checks": asdict(self.guards.stage_checks(model_id)),
            "approvals": {
                **self.guards.approval(model_id).as_json(),
                "requests": [r.as_json() for r in self.approvals.requests(model_id)],
            },
        }
