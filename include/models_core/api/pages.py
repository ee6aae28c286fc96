"""The page modules the Airflow UI loads: plain ES modules in ``static/``, no build step.

Served by the registry app itself (so they are behind Airflow's login like every other
route) from a fixed list of files, so no path in a request can reach anything else. They are
the page, not the API: the OpenAPI document leaves them out.
"""

from __future__ import annotations

from importlib import resources

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

STATIC = resources.files("models_core.api") / "static"
#: Files the UI may load: the two React-app entry modules, what they import, the nav icon.
FILES = {entry.name: entry for entry in STATIC.iterdir() if entry.name.endswith((".js", ".svg"))}

router = APIRouter()


@router.get("/static/{name}", include_in_schema=False)
def page_file(name: str, _user: GetUserDep) -> FileResponse:
    if name not in FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no page file {name!r}")
    return FileResponse(str(FILES[name]), headers={"Cache-Control": "no-cache"})
