"""The read API for notebooks and services (issue 15, item 6): a model's PRIMARY, a tagged or
named version, with params, tags and metadata, through any of the three ways to connect."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from registry_helpers import modelreg

from models_core.registry.read_api import VersionNotFound, get_version, list_versions


@pytest.fixture
def versions(registry, capsys, tmp_path) -> None:
    registry.add_version("loner", "1.0.0", params={"threshold": 0.7})
    registry.add_version("loner", "1.9.0", "SHADOW", params={"threshold": 0.6})
    registry.add_version("loner", "1.10.0", "SHADOW", params={"threshold": 0.5})
    registry.add_version("loner", "2.0.0", "SHADOW", status="DRAFT")
    modelreg(capsys, "tag", "loner", "1.9.0", "validated=true")
    modelreg(capsys, "tag", "loner", "1.10.0", "validated=true", "data_version=2026-11-01")
    meta = tmp_path / "meta.json"
    meta.write_text('{"framework": {"name": "numpy"}, "created_by": "ml-team"}')
    modelreg(capsys, "meta", "loner", "1.0.0", "--file", str(meta))


def test_the_primary_by_default_through_the_airflow_connection(versions):  # noqa: ARG001
    primary = get_version("loner")

    assert (primary.version, primary.role, primary.is_active_primary) == ("1.0.0", "PRIMARY", True)
    assert primary.params == {"threshold": 0.7}
    assert primary.metadata == {"framework": {"name": "numpy"}, "created_by": "ml-team"}


def test_a_version_by_tag_name_or_stage_through_a_dsn(versions, registry):  # noqa: ARG001
    dsn = registry.conn.dsn

    assert get_version("loner", tag="validated=true", dsn=dsn).version == "1.10.0"  # the newest so tagged
    assert get_version("loner", tag="data_version", dsn=dsn).tags == {"validated": "true", "data_version": "2026-11-01"}
    assert get_version("loner", version="2.0.0", dsn=dsn).status == "DRAFT"
    assert get_version("loner", stage="SHADOW", dsn=dsn).version == "1.10.0"
    assert [v.version for v in list_versions("loner", dsn=dsn)] == ["2.0.0", "1.10.0", "1.9.0", "1.0.0"]
    assert [v.version for v in list_versions("loner", tag="validated=true", dsn=dsn)] == ["1.10.0", "1.9.0"]


def test_not_found_names_the_model_and_its_versions(versions):  # noqa: ARG001
    with pytest.raises(
        VersionNotFound,
        match=r"loner has no version tagged validated=false \(its versions: "
        r"2.0.0 DRAFT SHADOW, 1.10.0 ACTIVE SHADOW",
    ):
        get_version("loner", tag="validated=false")
    with pytest.raises(VersionNotFound, match=r"loner has no ACTIVE CHALLENGER"):
        get_version("loner", stage="CHALLENGER")
    with pytest.raises(VersionNotFound, match=r"loner has no version 3.0.0"):
        get_version("loner", version="3.0.0")
    with pytest.raises(VersionNotFound, match=r"nobody has no ACTIVE PRIMARY \(its versions: none\)"):
        get_version("nobody")
    with pytest.raises(ValueError, match="one of stage=, version= or tag="):
        get_version("loner", stage="PRIMARY", version="1.0.0")
    with pytest.raises(ValueError, match="stage must be PRIMARY, SHADOW or CHALLENGER, got 'Production'"):
        get_version("loner", stage="Production")


def test_a_callers_connection_keeps_its_search_path_and_transaction_state(versions, registry):  # noqa: ARG001
    conn = psycopg2.connect(registry.conn.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET search_path TO public")
        conn.commit()
        assert get_version("loner", conn=conn).version == "1.0.0"
        assert conn.info.transaction_status == TRANSACTION_STATUS_IDLE  # the read's own transaction ended

        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE mine (x int)")  # the caller's transaction, still open
        assert get_version("loner", version="1.9.0", conn=conn).params == {"threshold": 0.6}
        assert conn.info.transaction_status == TRANSACTION_STATUS_INTRANS
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM mine")
            assert cur.fetchone() == (0,)
    finally:
        conn.close()
