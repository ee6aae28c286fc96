"""Exceptions the framework raises; each message names the model, row or setting at fault."""

from __future__ import annotations


class ModelRegistryError(Exception):
    """Base class of the framework's own errors."""


class DependencyCycleError(ModelRegistryError):
    """The dependency graph has a cycle; ``models`` lists every model on one.

    ``cycles`` holds each group of models that depend on each other in a circle, and
    ``edges`` the (model, depends_on) pairs inside those groups.
    """

    def __init__(self, cycles: list[list[str]], edges: list[tuple[str, str]]) -> None:
        self.cycles = cycles
        self.edges = edges
        self.models = sorted({m for cycle in cycles for m in cycle})
        described = ", ".join(f"{model} depends on {upstream}" for model, upstream in edges)
        super().__init__(
            f"dependency cycle among detection models {self.models} ({described}). "
            "Remove one of these edges from detection_model_dependencies or the class's depends_on."
        )


class DuplicateModelIdError(ModelRegistryError, ValueError):
    """Two classes declare the same model_id."""


class ResultValidationError(ModelRegistryError):
    """A model returned a result that cannot be stored as is."""


class RegistryUnavailableError(ModelRegistryError):
    """The registry database cannot be read and there is no last-known-good plan."""


class VersionNotActiveError(ModelRegistryError):
    """A version's result was not stored: it left its ACTIVE role while the task ran."""

    def __init__(self, label: str, status: str, role: str | None) -> None:
        self.status = status
        self.role = role
        now = status if role is None else f"{status} {role}"
        super().__init__(f"{label}: result not stored: the version is now {now} (changed while it ran)")
