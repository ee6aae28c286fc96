"""The tag table (migration 0015) under random writes through every door (a stateful property test).

The models page's tag filter reads ``detection_model_version_tags``, a table derived from the
versions' ``tags`` by a trigger. Nothing may make the two disagree: the product's tag and
untag, a registration, and plain SQL (an insert with tags, an update of the tags or of another
column, a change of a version's model or id, a delete). After every step the table must hold
exactly each version's (key, value) pairs, and the models page, filtered by random tags and
read page by page, must list exactly the models with a version that carries them all
(:func:`~models_core.registry.metadata.tags_match`, the rule ``modelreg list --tag`` applies).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from psycopg2 import sql

from harness.sql import REGISTRY_TABLES, empty_tables
from models_core.api.summaries import ModelFilter, models_overview
from models_core.maintenance.snapshots import Window
from models_core.registry.actors import Actor, ActorKind, person_permissions
from models_core.registry.metadata import TAG_VALUE_MAX_LEN, tags_match
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

pytestmark = pytest.mark.integration

MODELS = ("tag_a", "tag_b", "tag_c")
KEYS = ("team", "stage", "data")
VALUES = ("x", "y")
TAG_SETS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
#: Each key once: a filter naming one twice is refused (test_registry_models_page).
FILTERS = st.lists(
    st.tuples(st.sampled_from(KEYS), st.sampled_from((*VALUES, None))), min_size=1, max_size=2, unique_by=lambda t: t[0]
)
#: Plain SQL writes by outcome ("sql_delete:done", "sql_change_id:refused: ..."): every door must have opened.
DOORS: Counter[str] = Counter()
PERSON = Actor("tess", ActorKind.PERSON, person_permissions(may_edit=True, may_govern=False))


class TagIndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._opened = registry_connection(load_settings(), application_name="tag_index_machine")
        self.conn = self._opened.__enter__()
        with self.conn, self.conn.cursor() as cur:
            empty_tables(cur, list(REGISTRY_TABLES))
        self.registry = ModelRegistry(self.conn, PERSON)
        self.next_version = 0

    def teardown(self) -> None:
        self._opened.__exit__(None, None, None)

    def _sql(self, door: str, statement: str, params: tuple) -> None:
        """A plain SQL write as an operator makes it; one the schema refuses changes nothing."""
        try:
            with self.conn, self.conn.cursor() as cur:
                cur.execute(statement, params)
        except psycopg2.Error as exc:
            DOORS[f"{door}:refused: {str(exc).splitlines()[0]}"] += 1
        else:
            DOORS[f"{door}:done"] += 1

    def _versions(self) -> list[tuple[int, str, str, dict[str, str]]]:
        return rows(self.conn, "SELECT id, model_id, version, tags FROM detection_model_versions ORDER BY id")

    def _version_string(self) -> str:
        self.next_version += 1
        return f"1.0.{self.next_version}"

    # ---- the product's doors ----------------------------------------------------------------

    @rule(model=st.sampled_from(MODELS), tags=TAG_SETS)
    def register_and_tag(self, model: str, tags: dict[str, str]) -> None:
        version = self._version_string()
        self.registry.lifecycle.register(model, version, {})
        if tags:
            self.registry.annotations.set_tags(model, version, tags)

    @precondition(lambda self: self._versions())
    @rule(data=st.data(), tags=TAG_SETS.filter(bool))
    def tag(self, data: st.DataObject, tags: dict[str, str]) -> None:
        _, model, version, _ = data.draw(st.sampled_from(self._versions()))
        self.registry.annotations.set_tags(model, version, tags)

    @precondition(lambda self: any(tags for *_, tags in self._versions()))
    @rule(data=st.data())
    def untag(self, data: st.DataObject) -> None:
        _, model, version, tags = data.draw(st.sampled_from([v for v in self._versions() if v[3]]))
        keys = data.draw(st.lists(st.sampled_from(sorted(tags)), min_size=1, unique=True))
        self.registry.annotations.remove_tags(model, version, keys)

    # ---- plain SQL ------------------------------------------------------------------------

    @rule(model=st.sampled_from(MODELS), tags=TAG_SETS)
    def sql_insert(self, model: str, tags: dict[str, str]) -> None:
        self._sql(
            "sql_insert",
            "INSERT INTO detection_model_versions (model_id, version, status, role, tags)"
            " VALUES (%s, %s, 'DRAFT', 'SHADOW', %s)",
            (model, self._version_string(), json.dumps(tags)),
        )

    @precondition(lambda self: self._versions())
    @rule(data=st.data(), tags=TAG_SETS)
    def sql_update_tags(self, data: st.DataObject, tags: dict[str, str]) -> None:
        version_id = data.draw(st.sampled_from(self._versions()))[0]
        statement = "UPDATE detection_model_versions SET tags = %s WHERE id = %s"
        self._sql("sql_update_tags", statement, (json.dumps(tags), version_id))

    @precondition(lambda self: self._versions())
    @rule(data=st.data())
    def sql_update_description(self, data: st.DataObject) -> None:
        version_id = data.draw(st.sampled_from(self._versions()))[0]
        statement = "UPDATE detection_model_versions SET description = 'retrained' WHERE id = %s"
        self._sql("sql_update_description", statement, (version_id,))

    @precondition(lambda self: self._versions())
    @rule(data=st.data(), model=st.sampled_from(MODELS))
    def sql_move_to_another_model(self, data: st.DataObject, model: str) -> None:
        version_id = data.draw(st.sampled_from(self._versions()))[0]
        statement = "UPDATE detection_model_versions SET model_id = %s WHERE id = %s"
        self._sql("sql_move_to_another_model", statement, (model, version_id))

    @precondition(lambda self: self._versions())
    @rule(data=st.data())
    def sql_change_id(self, data: st.DataObject) -> None:
        version_id = data.draw(st.sampled_from(self._versions()))[0]
        self._sql("sql_change_id", "UPDATE detection_model_versions SET id = id + 1000 WHERE id = %s", (version_id,))

    @precondition(lambda self: self._versions())
    @rule(data=st.data())
    def sql_delete(self, data: st.DataObject) -> None:
        version_id = data.draw(st.sampled_from(self._versions()))[0]
        self._sql("sql_delete", "DELETE FROM detection_model_versions WHERE id = %s", (version_id,))

    @precondition(lambda self: any(tags for *_, tags in self._versions()))
    @rule(data=st.data(), key=st.sampled_from(KEYS), value=st.sampled_from(VALUES))
    def sql_write_the_tag_table_by_hand(self, data: st.DataObject, key: str, value: str) -> None:
        version_id, model, *_ = data.draw(st.sampled_from([v for v in self._versions() if v[3]]))
        statement, params = data.draw(
            st.sampled_from(
                [
                    (
                        "INSERT INTO detection_model_version_tags VALUES (%s, %s, %s, %s)",
                        (key, value, model, version_id),
                    ),
                    ("DELETE FROM detection_model_version_tags WHERE version_id = %s", (version_id,)),
                    ("UPDATE detection_model_version_tags SET value = %s WHERE version_id = %s", (value, version_id)),
                ]
            )
        )
        self._sql("sql_write_the_tag_table_by_hand", statement, params)

    # ---- what must hold -------------------------------------------------------------------

    @invariant()
    def the_table_holds_each_versions_tags(self) -> None:
        expected = sorted((k, v, model, vid) for vid, model, _, tags in self._versions() for k, v in tags.items())
        found = rows(
            self.conn, "SELECT key, value, model_id, version_id FROM detection_model_version_tags ORDER BY 1, 2, 3, 4"
        )
        assert found == expected

    @rule(wanted=FILTERS, limit=st.integers(1, 3))
    def the_page_lists_the_models_carrying_the_tags(self, wanted: list[tuple[str, str | None]], limit: int) -> None:
        expected = sorted({model for _, model, _, tags in self._versions() if tags_match(tags, wanted)})
        now = datetime.now(UTC)
        listed: list[str] = []
        for _ in range(len(MODELS) + 1):
            page = models_overview(
                self.registry,
                load_settings(),
                Window(now - timedelta(hours=1), now),
                ModelFilter(tuple(wanted)),
                limit=limit,
                offset=len(listed),
            )
            listed += [m["model_id"] for m in page["models"]]
            if not page["page"]["has_more"]:
                break
        assert listed == expected, wanted


@pytest.fixture
def machine_settings() -> Iterator[None]:
    TagIndexMachine.TestCase.settings = settings(
        max_examples=30,
        stateful_step_count=30,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    yield


def test_the_tag_table_follows_every_write_and_the_filter_reads_it(registry, machine_settings) -> None:  # noqa: ARG001
    DOORS.clear()
    TagIndexMachine.TestCase().runTest()
    print(dict(DOORS), file=sys.stderr)
    doors = ("sql_insert", "sql_update_tags", "sql_update_description", "sql_move_to_another_model", "sql_change_id",
             "sql_delete")  # fmt: skip
    assert all(DOORS[f"{door}:done"] for door in doors), DOORS
    by_hand = [door for door in DOORS if door.startswith("sql_write_the_tag_table_by_hand:")]
    assert by_hand and all("is derived from the versions' tags" in door for door in by_hand), DOORS


def test_a_tag_longer_than_the_product_allows_is_refused_naming_the_version(registry) -> None:
    """Plain SQL may write what the product's checks refuse; the tag table's trigger refuses a tag
    longer than the product allows in its words, and takes the longest allowed."""
    with registry.conn, registry.conn.cursor() as cur:
        cur.execute(
            "INSERT INTO detection_model_versions (model_id, version, status, role, tags)"
            " VALUES ('long_tags', '1.0.0', 'DRAFT', 'SHADOW', %s)",
            (json.dumps({"note": "n" * TAG_VALUE_MAX_LEN}),),
        )
    for tags in ({"note": "n" * (TAG_VALUE_MAX_LEN + 1)}, {"note": "n" * 3000}, {"k" * 65: "v"}):
        with pytest.raises(psycopg2.errors.CheckViolation, match=r"tag \w+ of long_tags@1\.0\.0: the key is"):
            with registry.conn, registry.conn.cursor() as cur:
                cur.execute("UPDATE detection_model_versions SET tags = %s", (json.dumps(tags),))
    assert rows(registry.conn, "SELECT key, length(value) FROM detection_model_version_tags") == [
        ("note", TAG_VALUE_MAX_LEN)
    ]


def test_a_role_that_owns_nothing_tags_versions_but_cannot_write_the_tag_table(registry) -> None:
    """The product runs as a role that owns nothing. Granted every table as an operator would
    (the tag table too), it registers and tags versions, and the tag table follows; it cannot
    write the tag table itself, by hand or from a trigger of its own (which runs it one trigger
    deep, as the product's own writes are)."""
    role = f"tag_app_{uuid.uuid4().hex[:8]}"
    conn = registry.conn
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        cur.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(load_settings().schema), sql.Identifier(role)
            )
        )
        for what in ("SELECT, INSERT, UPDATE, DELETE ON ALL TABLES", "USAGE ON ALL SEQUENCES"):
            cur.execute(
                sql.SQL("GRANT " + what + " IN SCHEMA {} TO {}").format(
                    sql.Identifier(load_settings().schema), sql.Identifier(role)
                )
            )
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cur.execute(
                "INSERT INTO detection_model_versions (model_id, version, status, role, tags)"
                " VALUES ('owned_by_none', '1.0.0', 'DRAFT', 'SHADOW', '{\"team\": \"x\"}') RETURNING id"
            )
            ((version_id,),) = cur.fetchall()
            cur.execute('UPDATE detection_model_versions SET tags = \'{"team": "y", "stage": "x"}\'')
        assert rows(conn, "SELECT key, value FROM detection_model_version_tags ORDER BY 1") == [
            ("stage", "x"),
            ("team", "y"),
        ]
        by_hand = "DELETE FROM detection_model_version_tags WHERE version_id = %s"
        from_a_trigger = (
            "CREATE TEMP TABLE poke (x int);"
            " CREATE FUNCTION pg_temp.poke() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN DELETE FROM detection_model_version_tags WHERE version_id = %s; RETURN NULL; END $$;"
            " CREATE TRIGGER poke AFTER INSERT ON poke FOR EACH ROW EXECUTE FUNCTION pg_temp.poke();"
            " INSERT INTO poke VALUES (1)"
        )
        for statement in (by_hand, from_a_trigger):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="is derived from the versions' tags"):
                with conn, conn.cursor() as cur:
                    cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                    cur.execute(statement, (version_id,))
        assert len(rows(conn, "SELECT 1 FROM detection_model_version_tags")) == 2
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM detection_model_versions")
            cur.execute(sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(sql.Identifier(role), sql.Identifier(role)))


def rows(conn: Any, statement: str, params: tuple = ()) -> list[tuple]:
    """The rows of a read, its transaction ended."""
    with conn.cursor() as cur:
        cur.execute(statement, params)
        found = cur.fetchall()
    conn.rollback()
    return found
