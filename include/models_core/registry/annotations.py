"""What people write on a version: its description, tags and metadata document.

None of these changes what runs, so they need only the request permission; each is checked
(:mod:`metadata`) before it is stored, in the model's change transaction, and audited like
every other column of the version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from models_core.registry.actors import Permission
from models_core.registry.metadata import MetadataError, check_metadata, check_tag_key, check_text
from models_core.registry.session import find_version
from models_core.store.sql_files import queries

if TYPE_CHECKING:
    from models_core.registry.model_registry import ModelRegistry

_SQL = "registry/annotations.sql"


class Annotations:
    """Description, tags and metadata of versions."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.session = registry.session

    def metadata(self, model_id: str, version: str) -> dict[str, Any]:
        """A version's metadata document; an unknown version is an error naming the known ones."""
        return find_version(self.session.versions(model_id), model_id, version).metadata

    def describe(self, model_id: str, version: str, description: str, reason: str | None = None) -> None:
        """Replace a version's description; an empty one removes it."""
        check_text(description, f"the description of {model_id}@{version}")
        self._write(
            model_id,
            version,
            "set_description",
            "describe",
            reason,
            lambda _target: {"description": description.strip() or None},
        )

    def set_tags(
        self, model_id: str, version: str, tags: Mapping[str, str], reason: str | None = None
    ) -> dict[str, str]:
        """Set (add or overwrite) tags of a version; returns all its tags now.

        Build ``tags`` with :func:`~models_core.registry.metadata.parse_tag_assignments`
        from ``KEY=VALUE`` text, which checks keys and values.
        """
        now: dict[str, str] = {}

        def values(target: Any) -> dict[str, Any]:
            now.update({**target.tags, **tags})
            return {"tags": json.dumps(now)}

        self._write(model_id, version, "set_tags", "tag", reason, values)
        return now

    def remove_tags(
        self, model_id: str, version: str, keys: Iterable[str], reason: str | None = None
    ) -> dict[str, str]:
        """Remove tags by key; a key the version does not have is an error naming its tags."""
        keys = list(keys)
        now: dict[str, str] = {}

        def values(target: Any) -> dict[str, Any]:
            for key in keys:
                check_tag_key(key, target.label())
                if key not in target.tags:
                    raise MetadataError(
                        f"{target.label()} has no tag {key!r} (its tags: {', '.join(sorted(target.tags)) or 'none'})"
                    )
            now.update({k: v for k, v in target.tags.items() if k not in keys})
            return {"tags": json.dumps(now)}

        self._write(model_id, version, "set_tags", "untag", reason, values)
        return now

    def set_metadata(self, model_id: str, version: str, metadata: dict[str, Any], reason: str | None = None) -> None:
        """Replace a version's metadata document, checked against the documented shape
        (:data:`~models_core.registry.metadata.METADATA_SCHEMA`; other keys are free)."""
        label = f"{model_id}@{version}"
        check_metadata(metadata, label)
        try:
            document = json.dumps(metadata, allow_nan=False)
        except ValueError as exc:
            raise MetadataError(f"metadata of {label} holds a value JSON cannot: {exc}") from None
        self._write(model_id, version, "set_metadata", "meta", reason, lambda _target: {"metadata": document})

    def _write(self, model_id: str, version: str, query: str, action: str, reason: str | None, values: Any) -> None:
        """One version's row changed in the model's transaction; ``values(target)`` gives the new columns."""
        self.session.actor.require(Permission.REQUEST, f"{action} {model_id}@{version}")
        if reason is not None:
            check_text(reason, f"the reason for {action} {model_id}@{version}")
        with self.session.change(model_id) as cur:
            target = find_version(self.session.locked_versions(cur, model_id), model_id, version)
            columns = values(target)
            self.session.context(cur, action, reason)
            cur.execute(queries(_SQL)[query], {"id": target.id, **columns})
