"""Registry errors as HTTP answers carrying the one line ``modelreg`` prints for them.

An operator who meets a refusal in the page and then tries the CLI (or the other way
round) reads the same words. The registry rolled the change back before raising, so
nothing is half-applied; the answer only reports it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import psycopg2
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from models_core.errors import ModelRegistryError
from models_core.registry.cli import error_line
from models_core.registry.lifecycle import ChecksFailed


class RegistryRefusal(Exception):
    """A request the registry or its database refused; ``line`` is what the CLI prints."""

    def __init__(self, status_code: int, line: str, gates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(line)
        self.status_code = status_code
        self.line = line
        self.gates = gates


@contextmanager
def as_cli_errors(command: str, refused: int = status.HTTP_409_CONFLICT) -> Iterator[None]:
    """Turn what ``modelreg <command>`` reports as an error into a :class:`RegistryRefusal`.

    ``refused`` is the status of a registry refusal: 409 for a change (a gate, a lock held
    by another change, a cycle, an unknown version), 404 for a read of something absent.
    """
    try:
        yield
    except ChecksFailed as exc:
        raise RegistryRefusal(refused, error_line(command, exc), [asdict(c) for c in exc.checks]) from exc
    except ModelRegistryError as exc:
        raise RegistryRefusal(refused, error_line(command, exc)) from exc
    except ValueError as exc:
        raise RegistryRefusal(status.HTTP_400_BAD_REQUEST, error_line(command, exc)) from exc
    except psycopg2.Error as exc:
        raise RegistryRefusal(status.HTTP_503_SERVICE_UNAVAILABLE, error_line(command, exc)) from exc


def _refusal(request: Request, exc: RegistryRefusal) -> JSONResponse:  # noqa: ARG001 - handler signature
    body: dict[str, Any] = {"detail": exc.line}
    if exc.gates is not None:
        body["gates"] = exc.gates
    return JSONResponse(body, status_code=exc.status_code)


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:  # noqa: ARG001
    """One line naming each offending field, e.g. ``body.window_hours: Input should be ...``."""
    problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors())
    return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_ENTITY)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RegistryRefusal, _refusal)
    app.add_exception_handler(RequestValidationError, _invalid_request)
