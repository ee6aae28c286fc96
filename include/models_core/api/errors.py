"""Registry refusals and invalid requests as HTTP answers carrying the one line ``modelreg`` prints."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from models_core.registry.changes import validation_line
from models_core.registry.errors import RegistryRefusal


def _refusal(request: Request, exc: RegistryRefusal) -> JSONResponse:  # noqa: ARG001 - handler signature
    body: dict[str, Any] = {"detail": exc.line}
    if exc.gates is not None:
        body["gates"] = exc.gates
    return JSONResponse(body, status_code=exc.status_code)


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:  # noqa: ARG001
    """One line naming each offending field, e.g. ``body.window_hours: Input should be ...``."""
    return JSONResponse({"detail": validation_line(exc.errors())}, status_code=status.HTTP_422_UNPROCESSABLE_ENTITY)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RegistryRefusal, _refusal)
    app.add_exception_handler(RequestValidationError, _invalid_request)
