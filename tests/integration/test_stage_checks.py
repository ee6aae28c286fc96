"""Checks before a version may run as SHADOW/CHALLENGER (issue 15, item 2): required tags, a
description, params valid against the class's JSON Schema; at activate and again at promote."""

from __future__ import annotations

import json

from registry_helpers import modelreg, modelreg_text


def _state(registry, model_id: str) -> list[tuple]:
    return registry.query(
        "SELECT version, status, role FROM detection_model_versions WHERE model_id = %s ORDER BY id", (model_id,)
    )


def test_activation_is_refused_until_the_required_tags_and_description_are_there(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW", status="DRAFT")
    code, policy, _ = modelreg(
        capsys,
        "checks",
        "loner",
        "--require-tags",
        "validated=true,data_version",
        "--require-description",
        "on",
        "--reason",
        "team rule",
    )
    assert code == 0 and policy == {
        "model_id": "loner",
        "guard": "checks",
        "applied": True,
        "values": {"required_tags": ["validated=true", "data_version"], "require_description": True},
    }

    code, _, err = modelreg(capsys, "activate", "loner", "1.1.0", "--role", "SHADOW")

    assert code == 1 and len(err.strip().splitlines()) == 1
    assert (
        "activation of loner@1.1.0 refused by its checks: description needs present, found none; "
        "tag:validated needs validated=true, found missing; tag:data_version needs data_version set, "
        "found missing" in err
    )
    assert _state(registry, "loner")[1] == ("1.1.0", "DRAFT", "SHADOW")

    modelreg(capsys, "tag", "loner", "1.1.0", "validated=false", "data_version=2026-11-01")
    code, _, err = modelreg(capsys, "activate", "loner", "1.1.0", "--role", "SHADOW")
    assert (
        code == 1
        and "tag:validated needs validated=true, found validated=false" in err
        and "data_version" not in err.split("refused by its checks:")[1].split(".")[0]
    )
    modelreg(capsys, "tag", "loner", "1.1.0", "validated=true")
    modelreg(capsys, "describe", "loner", "1.1.0", "tuned on the October storms")

    code, activated, _ = modelreg(capsys, "activate", "loner", "1.1.0", "--role", "CHALLENGER")

    assert code == 0 and activated["status"] == "ACTIVE" and activated["role"] == "CHALLENGER"
    assert {c["name"]: c["passed"] for c in activated["checks"]} == {
        "description": True,
        "tag:validated": True,
        "tag:data_version": True,
    }
    (figures,) = registry.query("SELECT gates FROM detection_model_transitions WHERE action = 'activate'")[0]
    assert [f["name"] for f in figures] == ["description", "tag:validated", "tag:data_version"]
    assert registry.query(
        "SELECT action, reason, details->'before', details->'after'->'required_tags'"
        " FROM detection_model_transitions WHERE action = 'checks'"
    ) == [("checks", "team rule", None, ["validated=true", "data_version"])]


def test_params_must_match_the_json_schema_the_model_class_declares(registry, capsys, tmp_path):
    registry.add_version("source", "1.0.0", params={"n": 3})
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"n": "many", "scale": "big", "metrics": {"made": "x"}, "extra": 1}))
    modelreg(capsys, "register", "source", "2.0.0", "--params", str(params))

    code, report, _ = modelreg(capsys, "activate", "source", "2.0.0", "--role", "SHADOW", "--check")
    code_text, text, _ = modelreg_text(capsys, "activate", "source", "2.0.0", "--role", "SHADOW")

    assert code == 1
    (check,) = json.loads(report)["checks"]
    assert check == {
        "name": "params_schema",
        "threshold": "params valid against Source.params_schema",
        "actual": "params.metrics.made: 'x' is not of type 'number'; "
        "params.n: 'many' is not of type 'integer'; "
        "params.scale: 'big' is not of type 'number'",
        "passed": False,
    }
    assert code_text == 1 and _state(registry, "source")[1] == ("2.0.0", "DRAFT", "SHADOW")
    code, _, err = modelreg(capsys, "promote", "source", "2.0.0", "--force", "--reason", "x", "--check")
    assert code == 1  # --check does not take --force
    code, _, err = modelreg(capsys, "promote", "source", "2.0.0")
    assert (
        code == 1
        and "promotion of source@2.0.0 refused by its checks and quality gates: params_schema needs "
        "params valid against Source.params_schema, found params.metrics"
        in err
    )

    params.write_text(json.dumps({"n": 4, "extra": 1}))  # keys the schema does not name are free
    modelreg(capsys, "register", "source", "2.0.1", "--params", str(params))
    assert modelreg(capsys, "activate", "source", "2.0.1", "--role", "SHADOW")[0] == 0


def test_a_model_without_settings_or_schema_needs_nothing_and_checks_show_what_applies(registry, capsys):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW", status="DRAFT")

    assert modelreg(capsys, "checks", "loner")[1] == {
        "model_id": "loner",
        "required_tags": [],
        "require_description": False,
    }
    assert modelreg(capsys, "activate", "loner", "1.1.0", "--role", "SHADOW")[1]["checks"] == []
    assert modelreg(capsys, "checks", "nobody", "--require-description", "on")[0] == 1
    code, _, err = modelreg(capsys, "checks", "loner", "--require-tags", "bad key")
    assert code == 1 and "tag key 'bad key' of the checks of loner is not allowed" in err
    assert modelreg(capsys, "checks", "loner", "--require-description", "on")[1]["values"]["required_tags"] == []
    assert modelreg(capsys, "checks", "loner", "--require-tags", "x")[1]["values"]["require_description"] is True
    shown = modelreg(capsys, "show", "loner")[1]
    assert shown["stage_checks"] == {"required_tags": ["x"], "require_description": True}
    assert "checks before SHADOW/CHALLENGER: tags x; description required" in modelreg_text(capsys, "show", "loner")[1]


def test_activation_without_the_models_package_says_so(registry, capsys, monkeypatch):
    registry.add_version("loner", "1.0.0")
    registry.add_version("loner", "1.1.0", "SHADOW", status="DRAFT")
    monkeypatch.setenv("AIRFLOW__MODEL_REGISTRY__MODELS_PACKAGE", "no_such_models")

    code, _, err = modelreg(capsys, "activate", "loner", "1.1.0", "--role", "SHADOW")

    assert code == 1 and "cannot import the models package 'no_such_models'" in err
    assert _state(registry, "loner")[1] == ("1.1.0", "DRAFT", "SHADOW")
