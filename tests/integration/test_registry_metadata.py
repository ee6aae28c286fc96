"""A version's description, tags and metadata document: set through `modelreg`, filtered on,
shown, and audited one row per change, whoever makes it (issue 15, item 1)."""

from __future__ import annotations

import json

from registry_helpers import modelreg, modelreg_text

METADATA = {
    "training_data": {"source": "s3://tracks/2026-10", "version": "2026-10-31", "rows": 120000},
    "framework": {"name": "numpy", "version": "2.1"},
    "input_schema": {"mmsi": "integer", "points": "integer"},
    "output_schema": {"quality": "number", "usable": "boolean"},
    "dependencies": {"numpy": "2.1.3"},
    "created_by": "ml-team",
    "notebook": "tuning/quality.ipynb",  # a key of the team's own
}


def _audit(registry, model_id: str) -> list[tuple]:
    return registry.query(
        "SELECT action, version, actor, reason, source, details FROM detection_model_transitions"
        " WHERE model_id = %s AND action NOT LIKE 'sql_insert' ORDER BY id",
        (model_id,),
    )


def test_description_tags_and_metadata_are_set_shown_and_audited_once_each(registry, capsys, tmp_path):
    registry.add_version("loner", "1.0.0")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(METADATA))

    assert modelreg(capsys, "describe", "loner", "1.0.0", "fewer false alarms at sea")[0] == 0
    assert modelreg(capsys, "tag", "loner", "1.0.0", "validated=true", "data_version=2026-10-31")[1]["tags"] == {
        "validated": "true",
        "data_version": "2026-10-31",
    }
    assert modelreg(capsys, "tag", "loner", "1.0.0", "validated=false", "--reason", "drift found")[0] == 0
    assert modelreg(capsys, "untag", "loner", "1.0.0", "data_version")[1]["tags"] == {"validated": "false"}
    assert modelreg(capsys, "meta", "loner", "1.0.0", "--file", str(meta))[1]["metadata"] == METADATA

    (shown,) = modelreg(capsys, "show", "loner")[1]["versions"]
    assert (shown["description"], shown["tags"], shown["metadata"]) == (
        "fewer false alarms at sea",
        {"validated": "false"},
        METADATA,
    )
    tester = registry.db_user  # direct database mode: the service account is the database user
    assert _audit(registry, "loner") == [
        ("describe", "1.0.0", tester, None, "api", {"description": [None, "fewer false alarms at sea"]}),
        ("tag", "1.0.0", tester, None, "api", {"tags": [{}, {"validated": "true", "data_version": "2026-10-31"}]}),
        (
            "tag",
            "1.0.0",
            tester,
            "drift found",
            "api",
            {
                "tags": [
                    {"validated": "true", "data_version": "2026-10-31"},
                    {"validated": "false", "data_version": "2026-10-31"},
                ]
            },
        ),
        (
            "untag",
            "1.0.0",
            tester,
            None,
            "api",
            {"tags": [{"validated": "false", "data_version": "2026-10-31"}, {"validated": "false"}]},
        ),
        ("meta", "1.0.0", tester, None, "api", {"metadata": [{}, METADATA]}),
    ]


def test_metadata_and_tags_changed_with_plain_sql_are_audited_too(registry):
    version_id = registry.add_version("loner", "1.0.0")
    registry.execute(
        'UPDATE detection_model_versions SET tags = \'{"validated": "true"}\','
        ' metadata = \'{"created_by": "bob"}\' WHERE id = %s',
        (version_id,),
    )
    registry.execute("UPDATE detection_model_versions SET updated_at = now() WHERE id = %s", (version_id,))

    assert _audit(registry, "loner") == [
        (
            "sql_update",
            "1.0.0",
            registry.query("SELECT session_user")[0][0],
            None,
            "sql",
            {"tags": [{}, {"validated": "true"}], "metadata": [{}, {"created_by": "bob"}]},
        )
    ]


def test_tags_must_be_strings_even_from_plain_sql(registry):
    registry.add_version("loner", "1.0.0")
    try:
        registry.execute("UPDATE detection_model_versions SET tags = '{\"validated\": true}'")
    except Exception as exc:  # noqa: BLE001 - the constraint's name is what matters
        assert "detection_model_versions_tags_check" in str(exc)
    else:
        raise AssertionError("a non-string tag value was stored")


def test_list_and_show_filter_by_tag(registry, capsys):
    for model_id, version, role in (
        ("source", "1.0.0", "PRIMARY"),
        ("source", "1.1.0", "SHADOW"),
        ("middle", "1.0.0", "PRIMARY"),
        ("loner", "1.0.0", "PRIMARY"),
    ):
        registry.add_version(model_id, version, role)
    modelreg(capsys, "tag", "source", "1.1.0", "validated=true")
    modelreg(capsys, "tag", "middle", "1.0.0", "validated=false")
    modelreg(capsys, "tag", "loner", "1.0.0", "validated=true", "team=sea")

    listed = modelreg(capsys, "list", "--tag", "validated=true")[1]
    assert [(m["model_id"], m["primary"], m["tagged"]) for m in listed] == [
        ("loner", "1.0.0", ["1.0.0"]),
        ("source", "1.0.0", ["1.1.0"]),
    ]
    assert [m["model_id"] for m in modelreg(capsys, "list", "--tag", "validated")[1]] == ["loner", "middle", "source"]
    assert [m["model_id"] for m in modelreg(capsys, "list", "--tag", "validated=true", "--tag", "team")[1]] == ["loner"]
    assert [v["version"] for v in modelreg(capsys, "show", "source", "--tag", "validated=true")[1]["versions"]] == [
        "1.1.0"
    ]
    code, text, _ = modelreg_text(capsys, "list", "--tag", "validated=true")
    assert code == 0 and "tagged validated=true" in text.splitlines()[0] and "source" in text


def test_bad_tags_descriptions_and_metadata_are_named_and_nothing_is_written(registry, capsys, tmp_path):
    registry.add_version("loner", "1.0.0")
    before = registry.query("SELECT count(*) FROM detection_model_transitions")
    bad_meta = tmp_path / "bad.json"
    bad_meta.write_text(json.dumps({"framework": {"version": 3}, "created_by": ["a"]}))
    nan_meta = tmp_path / "nan.json"
    nan_meta.write_text('{"rows": NaN}')

    cases = [
        (("tag", "loner", "1.0.0", "validated"), "tag 'validated' for loner@1.0.0 needs a value: KEY=VALUE"),
        (("tag", "loner", "1.0.0", "bad key=1"), "tag key 'bad key' of loner@1.0.0 is not allowed"),
        (("tag", "loner", "9.9.9", "a=b"), "loner@9.9.9 is not registered (versions: 1.0.0)"),
        (("untag", "loner", "1.0.0", "missing"), "loner@1.0.0 has no tag 'missing' (its tags: none)"),
        (("describe", "loner", "1.0.0", "nul \x00 here"), "body.description: the text contains a NUL"),
        (
            ("meta", "loner", "1.0.0", "--file", str(bad_meta)),
            "metadata of loner@1.0.0 does not have the documented shape: created_by: ['a'] is not of type 'string'; "
            "framework: 'name' is a required property; framework.version: 3 is not of type 'string'",
        ),
        (("meta", "loner", "1.0.0", "--file", str(nan_meta)), "NaN is not valid JSON"),
        (("meta", "loner", "1.0.0", "--file", str(tmp_path / "absent.json")), "cannot read metadata file"),
    ]
    for argv, message in cases:
        code, _, err = modelreg(capsys, *argv)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, (argv, err)

    assert registry.query("SELECT count(*) FROM detection_model_transitions") == before
    assert registry.query("SELECT description, tags, metadata FROM detection_model_versions") == [(None, {}, {})]


def test_meta_without_a_file_prints_the_document(registry, capsys, tmp_path):
    registry.add_version("loner", "1.0.0")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"created_by": "ci"}))
    modelreg(capsys, "meta", "loner", "1.0.0", "--file", str(meta))

    assert modelreg(capsys, "meta", "loner", "1.0.0")[1] == {
        "model_id": "loner",
        "version": "1.0.0",
        "metadata": {"created_by": "ci"},
    }
    assert modelreg_text(capsys, "meta", "loner", "1.0.0")[1].strip() == '{\n  "created_by": "ci"\n}'


def test_a_version_inserted_with_tags_and_metadata_by_sql_has_them_in_its_history(registry):
    registry.execute(
        "INSERT INTO detection_model_versions (model_id, version, tags, metadata)"
        " VALUES ('loner', '1.0.0', '{\"validated\": \"true\"}', '{\"created_by\": \"bob\"}')"
    )

    assert registry.query("SELECT action, details FROM detection_model_transitions") == [
        (
            "sql_insert",
            {"params": {}, "description": None, "tags": {"validated": "true"}, "metadata": {"created_by": "bob"}},
        )
    ]
