"""Exceptions the framework raises; each message names the model, row or setting at fault."""
from __future__ import annotations


class ModelRegistryError(Exception):
    """Base class of the framework's own errors."""


class DependencyCycleError(ModelRegistryError):
    """The dependency graph has a cycle; ``models`` lists every model on one."""

    def __init__(self, cycles: list[list[str]]) -> None:
        self.cycles = cycles
        self.models = sorted({m for cycle in cycles for m in cycle})
        described = "; ".join(" -> ".join([*cycle, cycle[0]]) for cycle in cycles)
        super().__init__(
            f"dependency cycle among detection models {self.models}: {described}. "
            "Remove one of these edges from detection_model_dependencies or depends_on."
        )


class DuplicateModelIdError(ModelRegistryError, ValueError):
    """Two classes declare the same model_id."""


class ResultValidationError(ModelRegistryError):
    """A model returned a result that cannot be stored as is."""


class RegistryUnavailableError(ModelRegistryError):
    """The registry database cannot be read and there is no last-known-good plan."""
