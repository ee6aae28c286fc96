"""A version's tags and metadata document: what they may hold, checked before they are stored.

Tags are short ``KEY=VALUE`` strings people filter on (``validated=true``,
``data_version=2026-11-01``, ``promoted_by=ci``). The metadata document is one JSON object
per version describing how it was made; its documented keys have a fixed shape (checked with
the ``jsonschema`` library, the same validator as a model's ``params_schema``) so tools can
rely on them, and any other key is free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from models_core.errors import ModelRegistryError

#: Letters, digits and ``_ . : / -``, starting with a letter, digit or ``_``; up to 64 characters.
TAG_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}")
TAG_VALUE_MAX_LEN = 256

#: The documented keys of a version's metadata document; other keys are allowed as they are.
METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "training_data": {
            "description": "what the version was fitted or tuned on",
            "type": "object",
            "properties": {
                "source": {"type": "string"},
                "version": {"type": "string"},
                "rows": {"type": "integer", "minimum": 0},
                "start": {"type": "string"},
                "end": {"type": "string"},
            },
        },
        "framework": {
            "description": "the library the model is built with",
            "type": "object",
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
            "required": ["name"],
        },
        "input_schema": {
            "description": "input field -> type",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "output_schema": {
            "description": "output field -> type",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "dependencies": {
            "description": "library -> version it was tested with",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "created_by": {"description": "the person or pipeline that made the version", "type": "string"},
    },
}
_METADATA_VALIDATOR = Draft202012Validator(METADATA_SCHEMA)


class MetadataError(ModelRegistryError):
    """A tag, description or metadata document that cannot be stored; the message says where."""


def parse_tag_assignments(items: Iterable[str], label: str) -> dict[str, str]:
    """``["validated=true", "data_version=2026-11-01"]`` as a dict, each key and value checked."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise MetadataError(f"tag {item!r} for {label} needs a value: KEY=VALUE")
        check_tag_key(key, label)
        if len(value) > TAG_VALUE_MAX_LEN:
            raise MetadataError(
                f"tag {key!r} of {label}: the value is {len(value)} characters, at most {TAG_VALUE_MAX_LEN} are allowed"
            )
        check_text(value, f"tag {key!r} of {label}")
        tags[key] = value
    if not tags:
        raise MetadataError(f"no tags given for {label}: name at least one KEY=VALUE")
    return tags


def check_tag_key(key: str, label: str) -> None:
    if not TAG_KEY.fullmatch(key):
        raise MetadataError(
            f"tag key {key!r} of {label} is not allowed: use up to 64 letters, digits or "
            "'_ . : / -', starting with a letter, digit or '_'"
        )


def parse_tag_filter(item: str) -> tuple[str, str | None]:
    """``KEY=VALUE`` (the tag has that value) or ``KEY`` (the tag is set), as (key, value)."""
    key, sep, value = item.partition("=")
    check_tag_key(key, "the filter")
    if len(value) > TAG_VALUE_MAX_LEN:
        raise MetadataError(
            f"tag {key!r} of the filter: the value is {len(value)} characters, no tag's is longer than "
            f"{TAG_VALUE_MAX_LEN}"
        )
    return key, (value if sep else None)


def parse_tag_filters(items: Iterable[str]) -> tuple[tuple[str, str | None], ...]:
    """Several ``KEY=VALUE`` or ``KEY`` that one version must carry at once, each key named once:
    a version holds one value per key, so ``team=a`` with ``team=b`` would ask for no version."""
    found = tuple(parse_tag_filter(item) for item in items)
    check_filter_keys_once(found)
    return found


def check_filter_keys_once(wanted: Iterable[tuple[str, str | None]]) -> None:
    """A tag filter names each key once (see :func:`parse_tag_filters`)."""
    keys = [key for key, _ in wanted]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise MetadataError(
            f"the filter names tag {', '.join(map(repr, repeated))} more than once: a version has one value per key"
        )


def tags_match(tags: Mapping[str, str], wanted: Iterable[tuple[str, str | None]]) -> bool:
    """Whether ``tags`` has every wanted tag (any value where the filter names none)."""
    return all(key in tags and (value is None or tags[key] == value) for key, value in wanted)


def check_metadata(document: Any, label: str) -> dict[str, Any]:
    """Return ``document`` if it is a JSON object whose documented keys have their shape.

    Every problem is named with its path, e.g. ``framework.version: 3 is not of type 'string'``.
    """
    if not isinstance(document, dict):
        raise MetadataError(f"metadata of {label} must be a JSON object, got {type(document).__name__}")
    errors = sorted(_METADATA_VALIDATOR.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        described = "; ".join(f"{'.'.join(map(str, e.absolute_path)) or 'metadata'}: {e.message}" for e in errors)
        raise MetadataError(f"metadata of {label} does not have the documented shape: {described}")
    check_json_text(document, f"metadata of {label}")
    return document


def check_text(text: str, what: str) -> None:
    """Refuse text PostgreSQL cannot store, naming ``what``, before the database does.

    text and jsonb hold neither a NUL character nor a lone UTF-16 surrogate (half of a
    pair, which a JSON ``\\ud800`` escape or a badly decoded string can carry).
    """
    if "\x00" in text:
        raise MetadataError(f"{what} contains a NUL character (\\u0000), which PostgreSQL cannot store")
    lone = next((ch for ch in text if "\ud800" <= ch <= "\udfff"), None)
    if lone is not None:
        raise MetadataError(
            f"{what} contains a lone surrogate (\\u{ord(lone):04x}), which is not text PostgreSQL can store"
        )


def check_json_text(value: Any, what: str) -> None:
    """:func:`check_text` on every key and string of a JSON value."""
    if isinstance(value, str):
        check_text(value, what)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), what)
            check_json_text(item, what)
    elif isinstance(value, list):
        for item in value:
            check_json_text(item, what)
