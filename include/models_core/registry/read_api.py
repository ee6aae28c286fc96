"""Read a model's versions from outside the DAG: notebooks, services, reports.

What MLflow's ``models:/name/Production`` is to its registry, :func:`get_version` is to
ours: the whole row (:class:`~models_core.store.registry_reader.VersionRecord`: params, tags,
metadata, description, status, role) of a model's PRIMARY, of the version carrying a tag, or
of a version named outright::

    from models_core.registry.read_api import get_version

    primary = get_version("track_quality")                            # its ACTIVE PRIMARY
    checked = get_version("track_quality", tag="validated=true")      # newest version so tagged
    pinned = get_version("track_quality", version="1.2.0", dsn="postgresql://reader@db/models")
    primary.params, primary.metadata, primary.tags

It only reads. The connection is, in this order: ``conn`` (yours, left as it was found:
a transaction it opens is ended, one you had open is left open), ``dsn`` (opened and closed
here), or the ``[model_registry]`` connection the DAG uses (the Airflow connection
``registry_db``, or the embedded server). Table names are qualified with the registry
schema, so your connection's ``search_path`` does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from psycopg2.extensions import connection as PgConnection

from models_core.errors import ModelRegistryError
from models_core.model import VERSION_ROLES, Role
from models_core.registry.metadata import parse_tag_filter, tags_match
from models_core.registry.session import semver_key
from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.registry_reader import VersionRecord
from models_core.store.sql_files import queries


class VersionNotFound(ModelRegistryError, LookupError):
    """No version matches what was asked; the message names the model and the selector."""


def get_version(
    model_id: str,
    *,
    stage: str | None = None,
    version: str | None = None,
    tag: str | None = None,
    conn: PgConnection | None = None,
    dsn: str | None = None,
    schema: str | None = None,
) -> VersionRecord:
    """One version of ``model_id``, chosen by at most one of:

    - ``stage``: ``"PRIMARY"`` (the default), ``"SHADOW"`` or ``"CHALLENGER"``: the ACTIVE
      version in that role (the newest, if several run as SHADOW);
    - ``version``: that ``MAJOR.MINOR.PATCH``;
    - ``tag``: ``"KEY=VALUE"`` or ``"KEY"``: the newest version with that tag.

    Raises :class:`VersionNotFound` when none matches, naming the versions there are.
    """
    if sum(x is not None for x in (stage, version, tag)) > 1:
        raise ValueError("get_version takes one of stage=, version= or tag=")
    versions = list_versions(model_id, conn=conn, dsn=dsn, schema=schema)
    if version is not None:
        chosen = [v for v in versions if v.version == version]
        wanted = f"version {version}"
    elif tag is not None:
        chosen = [v for v in versions if tags_match(v.tags, [parse_tag_filter(tag)])]
        wanted = f"version tagged {tag}"
    else:
        role = stage or Role.PRIMARY.value
        if role not in VERSION_ROLES:
            raise ValueError(f"stage must be PRIMARY, SHADOW or CHALLENGER, got {stage!r}")
        chosen = [v for v in versions if v.status == "ACTIVE" and v.role == role]
        wanted = f"ACTIVE {role}"
    if not chosen:
        have = ", ".join(f"{v.version} {v.status} {v.role}" for v in versions) or "none"
        raise VersionNotFound(f"{model_id} has no {wanted} (its versions: {have})")
    return chosen[0]


def list_versions(
    model_id: str,
    *,
    tag: str | None = None,
    conn: PgConnection | None = None,
    dsn: str | None = None,
    schema: str | None = None,
) -> list[VersionRecord]:
    """Every version of ``model_id`` (with ``tag``, if given), newest first (1.10.0 before 1.9.0)."""
    schema = schema or load_settings().schema
    query = sql.SQL(queries("registry/read_api.sql")["model_versions"]).format(
        versions=sql.Identifier(schema, "detection_model_versions")
    )
    with _reading(conn, dsn) as reader, reader.cursor() as cur:
        cur.execute(query, {"model_id": model_id})
        versions = [VersionRecord(*row) for row in cur.fetchall()]
    if tag is not None:
        versions = [v for v in versions if tags_match(v.tags, [parse_tag_filter(tag)])]
    return sorted(versions, key=lambda v: tuple(-n for n in semver_key(v.version)))


@contextmanager
def _reading(conn: PgConnection | None, dsn: str | None) -> Iterator[PgConnection]:
    if conn is not None:
        started_here = conn.info.transaction_status == TRANSACTION_STATUS_IDLE and not conn.autocommit
        try:
            yield conn
        finally:
            if started_here:
                conn.rollback()
    elif dsn is not None:
        opened = psycopg2.connect(dsn, application_name="models_core:read_api")
        try:
            yield opened
        finally:
            opened.close()
    else:
        with registry_connection(load_settings(), application_name="models_core:read_api") as opened:
            yield opened
