"""Which database errors a model task retries: real errors from a real PostgreSQL (issue 11, defect 9)."""

from __future__ import annotations

import threading

import psycopg2
import pytest

from models_core.settings import load_settings
from models_core.store.connections import registry_connection
from models_core.store.transient import is_transient, retry_transient


def _error_of(statement: str, conn) -> psycopg2.Error:
    with pytest.raises(psycopg2.Error) as info:
        with conn.cursor() as cur:
            cur.execute(statement)
    conn.rollback()
    return info.value


def test_a_lost_connection_is_transient(registry):  # noqa: ARG001 - the schema must exist
    settings = load_settings()
    with registry_connection(settings) as victim, registry_connection(settings) as killer:
        with victim.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        victim.rollback()
        with killer.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg2.Error) as lost:
            with victim.cursor() as cur:
                cur.execute("SELECT 1")
        assert is_transient(lost.value)
        with pytest.raises(psycopg2.InterfaceError) as closed:
            victim.cursor()
        assert is_transient(closed.value)


def test_a_serialization_failure_is_transient(registry):
    registry.add_version("loner", "1.0.0")
    settings = load_settings()
    with registry_connection(settings) as first, registry_connection(settings) as second:
        for conn in (first, second):
            conn.set_session(isolation_level="REPEATABLE READ")
            with conn.cursor() as cur:
                cur.execute("SELECT status FROM detection_model_versions WHERE model_id = 'loner'")
        with first.cursor() as cur:
            cur.execute("UPDATE detection_model_versions SET description = 'first' WHERE model_id = 'loner'")
        done = threading.Thread(target=first.commit)
        error = None
        try:
            with second.cursor() as cur:
                done.start()
                cur.execute("UPDATE detection_model_versions SET description = 'second' WHERE model_id = 'loner'")
        except psycopg2.Error as exc:
            error = exc
        done.join()
        second.rollback()
    assert isinstance(error, psycopg2.errors.SerializationFailure) and is_transient(error)


def test_errors_about_the_work_itself_are_not_transient(registry):
    registry.add_version("loner", "1.0.0")
    with registry_connection(load_settings()) as conn:
        duplicate = _error_of(
            "INSERT INTO detection_model_versions (model_id, version) VALUES ('loner', '1.0.0')", conn
        )
        canceled = _error_of("SET statement_timeout = 50; SELECT pg_sleep(1)", conn)
        missing = _error_of("SELECT * FROM no_such_table", conn)
    assert not any(is_transient(exc) for exc in (duplicate, canceled, missing))
    assert not is_transient(ValueError("not a database error"))


def test_retry_transient_tries_again_then_gives_up_after_its_budget(caplog):
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        return "done"

    assert retry_transient(flaky, "m@1.0.0[PRIMARY]", budget_s=10) == "done"
    assert len(attempts) == 3
    assert sum("transient database error" in r.getMessage() for r in caplog.records) == 2

    def broken() -> None:
        raise psycopg2.OperationalError("could not connect to server")

    with pytest.raises(psycopg2.OperationalError):
        retry_transient(broken, "m@1.0.0[PRIMARY]", budget_s=1)
    assert any("giving up" in r.getMessage() for r in caplog.records)


def test_a_connection_closed_mid_statement_is_transient_but_client_side_errors_are_not():
    # What psycopg2 raises when the server goes away while a statement runs: no SQLSTATE.
    assert is_transient(psycopg2.DatabaseError("server closed the connection unexpectedly"))
    assert not is_transient(psycopg2.ProgrammingError("can't adapt type 'object'"))
    assert not is_transient(psycopg2.DataError("invalid input"))
