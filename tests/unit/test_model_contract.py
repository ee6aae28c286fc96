"""The model contract: model_id rules, validate_result, and metric_rows defaults."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from models_core.cycle.persistence import metric_rows
from models_core.errors import ResultValidationError
from models_core.model import BaseDetectionModel, ModelContext, ModelResult, Role, encode_pairs, validate_result

CYCLE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- model_id at class definition -------------------------------------------------------


def test_model_id_of_exactly_64_characters_is_accepted():
    class Fine(BaseDetectionModel):
        model_id = "m" * 64

    assert Fine.model_id == "m" * 64


def test_model_id_longer_than_64_characters_is_rejected_at_class_definition():
    with pytest.raises(ValueError) as info:

        class TooLong(BaseDetectionModel):
            model_id = "m" * 65

    message = str(info.value)
    assert "TooLong" in message
    assert "65 characters" in message
    assert "64" in message


@pytest.mark.parametrize("bad_id", ["has space", "dotted.id", "slash/id", "-leading-dash", "émoji", "semi;colon"])
def test_model_id_with_bad_characters_is_rejected_at_class_definition(bad_id):
    with pytest.raises(ValueError) as info:

        class Bad(BaseDetectionModel):
            model_id = bad_id

    assert repr(bad_id) in str(info.value)
    assert "Bad" in str(info.value)


def test_model_id_with_trailing_newline_is_rejected_at_class_definition():
    with pytest.raises(ValueError):

        class Newline(BaseDetectionModel):
            model_id = "abc\n"


@pytest.mark.parametrize("good_id", ["a", "ais_ingest", "Model-2", "_private", "9lives"])
def test_model_id_with_letters_digits_underscore_and_dash_is_accepted(good_id):
    class Good(BaseDetectionModel):
        model_id = good_id

    assert Good.model_id == good_id


def test_class_without_model_id_is_allowed_as_an_abstract_base():
    class Abstract(BaseDetectionModel):
        pass

    assert Abstract.model_id == ""


# --- ModelContext.conn --------------------------------------------------------------------


def test_ctx_conn_is_opened_on_first_use_and_only_once():
    opened: list[object] = []

    def connect() -> object:
        opened.append(object())
        return opened[-1]

    ctx = ModelContext(cycle_started_at=CYCLE, shared={}, params={}, connect=connect)
    assert opened == []  # a model that never touches ctx.conn costs no connection
    assert ctx.conn is ctx.conn is opened[0]
    assert len(opened) == 1


def test_ctx_conn_without_a_way_to_connect_says_so():
    with pytest.raises(RuntimeError, match="without a database connection"):
        _ = ModelContext(cycle_started_at=CYCLE, shared={}, params={}).conn


# --- validate_result --------------------------------------------------------------------


class Detector(BaseDetectionModel):
    model_id = "detector"


@pytest.fixture
def model() -> Detector:
    return Detector(version_id=7, version_str="1.2.0", role="SHADOW")


LABEL = "detector@1.2.0[SHADOW]"


def result(**overrides) -> ModelResult:
    fields = dict(
        model_id="detector",
        version_id=7,
        role="SHADOW",
        outputs_per_input=[("in-1", {"score": 0.5}), ("in-2", [1, 2, None])],
        metrics={"precision": 0.9, "count": 3},
    )
    fields.update(overrides)
    return ModelResult(**fields)


def rejected(model, res) -> str:
    """The error the contract's checks give: validate_result, then the pairs as they are encoded."""
    with pytest.raises(ResultValidationError) as info:
        list(encode_pairs(validate_result(res, model), model.label()))
    message = str(info.value)
    assert LABEL in message
    return message


def test_good_result_is_accepted_and_returned(model):
    res = result()
    assert validate_result(res, model) is res


def test_result_with_role_enum_is_accepted(model):
    res = result(role=Role.SHADOW)
    assert validate_result(res, model) is res


def test_empty_result_is_accepted(model):
    res = result(outputs_per_input=[], metrics={})
    assert validate_result(res, model) is res


def test_non_model_result_is_rejected(model):
    message = rejected(model, {"model_id": "detector"})
    assert "dict" in message


def test_wrong_model_id_is_rejected_naming_the_field(model):
    message = rejected(model, result(model_id="other"))
    assert "model_id" in message and "'other'" in message


def test_wrong_version_id_is_rejected_naming_the_field(model):
    message = rejected(model, result(version_id=8))
    assert "version_id" in message and "8" in message


def test_wrong_role_is_rejected_naming_the_field(model):
    message = rejected(model, result(role="PRIMARY"))
    assert "role" in message and "PRIMARY" in message and "SHADOW" in message


def test_unknown_role_is_rejected(model):
    message = rejected(model, result(role="CANARY"))
    assert "role" in message and "'CANARY'" in message


def test_outputs_that_are_not_a_list_are_rejected(model):
    message = rejected(model, result(outputs_per_input={"a": 1}))
    assert "outputs_per_input" in message


@pytest.mark.parametrize(
    ("pairs", "index"),
    [
        ([("ok", 1), ("only-one",)], 1),
        ([("a", 1, "extra")], 0),
        ([("ok", 1), ("ok", 2), "not-a-pair"], 2),
        ([None], 0),
    ],
)
def test_malformed_pair_is_rejected_naming_its_index(model, pairs, index):
    message = rejected(model, result(outputs_per_input=pairs))
    assert f"outputs_per_input[{index}]" in message
    assert "pair" in message


@pytest.mark.parametrize(
    ("pairs", "index", "part"),
    [
        ([("in", 1), ("in", {1, 2})], 1, "output"),
        ([("in", float("nan"))], 0, "output"),
        ([("in", {"score": float("inf")})], 0, "output"),
        ([(object(), 1)], 0, "input_ref"),
        ([("a", 1), ("b", 2), ({"k": {3}}, 3)], 2, "input_ref"),
    ],
)
def test_non_json_serialisable_output_is_rejected_naming_index_and_part(model, pairs, index, part):
    message = rejected(model, result(outputs_per_input=pairs))
    assert f"outputs_per_input[{index}] {part}" in message
    assert "JSON" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_metric_is_rejected_naming_the_key(model, value):
    message = rejected(model, result(metrics={"good": 1.0, "recall": value}))
    assert "'recall'" in message


@pytest.mark.parametrize("value", ["0.5", None, [1.0], {"v": 1}])
def test_non_numeric_metric_is_rejected_naming_the_key(model, value):
    message = rejected(model, result(metrics={"recall": value}))
    assert "'recall'" in message


@pytest.mark.parametrize("value", [True, False])
def test_bool_metric_is_rejected_naming_the_key(model, value):
    message = rejected(model, result(metrics={"flag": value}))
    assert "'flag'" in message


def test_non_string_metric_key_is_rejected(model):
    message = rejected(model, result(metrics={3: 1.0}))
    assert "metric key 3" in message


def test_metrics_that_are_not_a_mapping_are_rejected(model):
    message = rejected(model, result(metrics=[("a", 1.0)]))
    assert "metrics" in message


def test_int_metric_too_large_for_a_float_is_rejected_naming_the_key(model):
    message = rejected(model, result(metrics={"huge": 10**400}))
    assert "'huge'" in message


# --- metric_rows ------------------------------------------------------------------------


def rows_by_key(rows):
    return {row[4]: row for row in rows}


def test_metric_rows_add_duration_and_output_count_as_defaults():
    res = result(metrics={"precision": 0.9})
    rows = rows_by_key(metric_rows(res, CYCLE, duration_ms=1500))
    assert set(rows) == {"precision", "cycle_duration_ms", "output_count"}
    assert rows["precision"] == (CYCLE, "detector", 7, "SHADOW", "precision", 0.9, False)
    assert rows["cycle_duration_ms"] == (CYCLE, "detector", 7, "SHADOW", "cycle_duration_ms", 1500.0, True)
    assert rows["output_count"] == (CYCLE, "detector", 7, "SHADOW", "output_count", 2.0, True)


def test_metric_rows_keep_model_reported_duration_and_output_count_as_not_default():
    res = result(metrics={"cycle_duration_ms": 42, "output_count": 99})
    rows = rows_by_key(metric_rows(res, CYCLE, duration_ms=1500))
    assert rows["cycle_duration_ms"][5:] == (42.0, False)
    assert rows["output_count"][5:] == (99.0, False)
    assert len(rows) == 2


def test_metric_rows_values_are_floats_and_role_is_a_string():
    res = result(role=Role.SHADOW, metrics={"count": 3})
    rows = metric_rows(res, CYCLE, duration_ms=0)
    assert all(isinstance(row[5], float) for row in rows)
    assert all(row[3] == "SHADOW" for row in rows)


def test_metric_rows_drop_too_long_key_with_warning_and_keep_the_others(caplog):
    long_key = "k" * 65
    ok_key = "k" * 64
    res = result(metrics={long_key: 1.0, ok_key: 2.0, "precision": 0.5})
    with caplog.at_level(logging.WARNING, logger="models_core.cycle.persistence"):
        rows = rows_by_key(metric_rows(res, CYCLE, duration_ms=10))
    assert set(rows) == {ok_key, "precision", "cycle_duration_ms", "output_count"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert long_key in message
    assert "detector@7" in message
    assert "65" in message


def test_params_that_are_not_a_json_object_are_refused_naming_the_version():
    with pytest.raises(ValueError, match=r"detector@1\.2\.0: params must be a JSON object, got list \[1, 2\]"):
        Detector(version_id=7, version_str="1.2.0", role="SHADOW", params=[1, 2])
