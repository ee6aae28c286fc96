"""Who may call the registry API: Airflow's own login and permissions, plus a CSRF guard.

A plugin's FastAPI app is not protected by Airflow, so every route states its access with
Airflow's security dependencies: they accept the UI's ``_token`` cookie and a Bearer token
from ``POST /auth/token`` alike, answer 401 to anonymous callers and 403 to users the auth
manager refuses. Reading needs read access to the ``detection_models`` DAG (the registry is
what that DAG is built from); every change needs edit access to it.

The actor of a change is the logged-in user, by the auth manager's stable user id, with the
registry permissions the auth manager grants (:func:`request_actor`): edit access to the DAG
gives request and approve; the ``governors`` setting, or the auth manager's right to edit
Airflow's configuration, adds force and govern.
"""

from __future__ import annotations

from email.message import Message
from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, HTTPException, Request, status

from models_core.plan import CYCLE_DAG_ID
from models_core.registry.actors import Actor, ActorKind, person_permissions
from models_core.settings import load_settings

#: The DAG whose permissions guard the registry.

#: The media type every change must be sent with (see :func:`json_request_only`).
JSON = "application/json"


def request_actor(user: GetUserDep) -> Actor:
    """The logged-in Airflow user as the registry's actor: stable id, display name, permissions."""
    auth = get_auth_manager()
    user_id = str(user.get_id())
    may_edit = auth.is_authorized_dag(method="PUT", details=DagDetails(id=CYCLE_DAG_ID), user=user)
    may_govern = user_id in load_settings().governors or auth.is_authorized_configuration(method="PUT", user=user)
    return Actor(
        user_id, ActorKind.PERSON, person_permissions(may_edit=may_edit, may_govern=may_govern), name=user.get_name()
    )


def json_request_only(request: Request) -> None:
    """Refuse a change that a page of another origin could send without asking first.

    The UI's ``_token`` cookie is SameSite=Lax, which keeps other *sites* out but not other
    origins of the same site (another port or subdomain). Those can POST an HTML form
    (urlencoded, multipart or text/plain) or a ``no-cors`` fetch without a Content-Type,
    which FastAPI would still parse as JSON. A JSON Content-Type makes the browser ask first
    (a CORS preflight), which Airflow answers only for its configured allowed origins.
    """
    header = Message()
    header["content-type"] = request.headers.get("content-type", "")
    if header.get_content_type() != JSON:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"changes are accepted as {JSON} only, not {header['content-type'] or 'no Content-Type'}",
        )


#: Dependencies of the read routes and of the change routes.
READ_ACCESS = [Depends(requires_access_dag("GET", param_dag_id=CYCLE_DAG_ID))]
EDIT_ACCESS = [Depends(requires_access_dag("PUT", param_dag_id=CYCLE_DAG_ID)), Depends(json_request_only)]
ActorDep = Annotated[Actor, Depends(request_actor)]
