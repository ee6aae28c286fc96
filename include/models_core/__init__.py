"""models_core: turns a PostgreSQL model registry into Airflow cycles.

Model code imports :class:`BaseDetectionModel`, :class:`ModelContext`,
:class:`ModelResult` and :class:`Role` from here; the rest is the framework.
"""

from models_core.errors import DependencyCycleError, DuplicateModelIdError, ResultValidationError
from models_core.model import BaseDetectionModel, ModelContext, ModelResult, Role

__all__ = [
    "BaseDetectionModel",
    "DependencyCycleError",
    "DuplicateModelIdError",
    "ModelContext",
    "ModelResult",
    "ResultValidationError",
    "Role",
]
