"""The parameters the registry's routes name, checked as the registry can hold them.

A model id over 64 characters, a version over 32, or one with a NUL or a lone surrogate is a
422 naming the parameter (``path.model_id: ...``), never a database error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, StringConstraints

from models_core.model import MODEL_ID_MAX_LEN
from models_core.registry.changes import storable
from models_core.registry.lifecycle import VERSION_MAX_LEN

ModelId = Annotated[str, Path(max_length=MODEL_ID_MAX_LEN, description="The model's id."), AfterValidator(storable)]
#: A model id as one item of a repeated query parameter (``?model=a&model=b``), checked alike.
ModelIdItem = Annotated[str, StringConstraints(max_length=MODEL_ID_MAX_LEN), AfterValidator(storable)]
Version = Annotated[
    str, Path(max_length=VERSION_MAX_LEN, description="The version, `MAJOR.MINOR.PATCH`."), AfterValidator(storable)
]
BackendName = Annotated[str, Path(max_length=64, description="The backend's name."), AfterValidator(storable)]
WebhookName = Annotated[str, Path(max_length=64, description="The webhook's name."), AfterValidator(storable)]
