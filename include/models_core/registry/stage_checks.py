"""Checks a version must pass before it may run as SHADOW or CHALLENGER.

The quality gates judge how a version *ran*; these judge whether it is fit to run at all:
the tags a model's owners require (``validated=true``), a description, and params that
match the JSON Schema the model class declares. They are cheap and need no cycle, so they
apply at ``activate`` and again, with the gates, at ``promote``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import validators

from models_core.registry.metadata import parse_tag_filter
from models_core.store.registry_reader import VersionRecord

#: At most this many params problems are spelled out; the rest are counted.
_SHOWN_PARAMS_ERRORS = 3


@dataclass(frozen=True)
class StageCheck:
    """One check with what it requires and what the version has, as text.

    The fields are the first four of a quality gate's figures (``GateCheck``), so both print
    in one table and are stored alike in the audit trail.
    """

    name: str
    threshold: str
    actual: str
    passed: bool


@dataclass(frozen=True)
class StageCheckPolicy:
    """A model's checks: ``required_tags`` entries are ``KEY`` (set) or ``KEY=VALUE``."""

    required_tags: tuple[str, ...] = ()
    require_description: bool = False


def evaluate_stage_checks(
    version: VersionRecord, policy: StageCheckPolicy, params_schema: dict[str, Any] | None, schema_owner: str
) -> list[StageCheck]:
    """Every check of ``policy`` (and of the class's ``params_schema``) against ``version``."""
    checks = []
    if policy.require_description:
        text = (version.description or "").strip()
        checks.append(StageCheck("description", "present", f"{len(text)} characters" if text else "none", bool(text)))
    for entry in policy.required_tags:
        key, value = parse_tag_filter(entry)
        have = version.tags.get(key)
        found = "missing" if have is None else f"{key}={have}"
        checks.append(
            StageCheck(
                f"tag:{key}",
                f"{key}={value}" if value is not None else f"{key} set",
                found,
                have is not None and (value is None or have == value),
            )
        )
    if params_schema is not None:
        problems = params_problems(version.params, params_schema)
        shown = "; ".join(problems[:_SHOWN_PARAMS_ERRORS])
        if len(problems) > _SHOWN_PARAMS_ERRORS:
            shown += f"; and {len(problems) - _SHOWN_PARAMS_ERRORS} more"
        checks.append(
            StageCheck(
                "params_schema", f"params valid against {schema_owner}.params_schema", shown or "valid", not problems
            )
        )
    return checks


def params_problems(params: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Each way ``params`` breaks ``schema``, as ``params.<path>: <message>``, in path order."""
    validator = validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    return [".".join(["params", *map(str, e.absolute_path)]) + f": {e.message}" for e in errors]
