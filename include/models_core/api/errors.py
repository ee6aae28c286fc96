"""Registry refusals and invalid requests as HTTP answers carrying the one line ``modelreg`` prints.

Every 4xx answer, and the 503 of an unavailable database, is a
:class:`~models_core.api.schemas.Refusal`: ``{"detail": line}``, with ``gates`` when stage checks
or quality gates refused a change. Airflow's own 401 and 403 (no login, or a user it refuses)
have the same shape. :func:`refusals` documents them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from models_core.api.schemas import Refusal
from models_core.registry.changes import validation_line
from models_core.registry.errors import RegistryRefusal

#: What each status a route may answer with means, as the OpenAPI document says it.
MEANINGS = {
    400: "A value the database refused.",
    401: "Not logged in: no token or ``_token`` cookie, or an expired one.",
    403: "Airflow refused the user (or its token), or the registry refused a permission the change needs.",
    404: "No such model, version or version id.",
    409: "The registry refused the change: its stage checks or quality gates (``gates`` has every figure), "
    "another change of the model in progress, a dependency cycle, an unknown version, ...",
    415: "A change sent without ``Content-Type: application/json``.",
    422: "A parameter or body field the registry cannot take, named in ``detail``.",
    503: "The registry database is unavailable.",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that may answer with ``codes``, each a :class:`Refusal`."""
    return {code: {"model": Refusal, "description": MEANINGS[code]} for code in codes}


def _refusal(request: Request, exc: RegistryRefusal) -> JSONResponse:  # noqa: ARG001 - handler signature
    body: dict[str, Any] = {"detail": exc.line}
    if exc.gates is not None:
        body["gates"] = exc.gates
    return JSONResponse(body, status_code=exc.status_code)


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:  # noqa: ARG001
    """One line naming each offending field, e.g. ``body.window_hours: Input should be ...``."""
    return JSONResponse({"detail": validation_line(exc.errors())}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def install_error_handlers(app: FastAPI) -> None:
    app.exception_handler(RegistryRefusal)(_refusal)
    app.exception_handler(RequestValidationError)(_invalid_request)
