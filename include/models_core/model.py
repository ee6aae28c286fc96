"""The contract model code is written against: base class, context and result.

Users subclass :class:`BaseDetectionModel`; the framework instantiates one object per
ACTIVE version, hands it a :class:`ModelContext` and stores the :class:`ModelResult`.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from models_core.errors import ResultValidationError

#: VARCHAR(64) in the schema: longer ids would be cut or rejected by PostgreSQL.
MODEL_ID_MAX_LEN = 64
#: VARCHAR(64) in the schema: longer keys are dropped with a warning, not stored.
METRIC_KEY_MAX_LEN = 64


def _strict_json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``, made once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which is half the cost of
    encoding a small output; the C encoder the stdlib builds there is made once here
    instead (without the circular-reference check: a circular value ends in RecursionError).
    """
    stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_c_encoder is None:  # an interpreter without the C accelerator
        return stdlib.encode
    chunks = make_c_encoder(None, stdlib.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda value: "".join(chunks(value, 0))


_strict_json = _strict_json_encoder()
#: model_id becomes an Airflow TaskGroup id, which allows only these characters.
_MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class Role(str, enum.Enum):
    """How a version takes part in a cycle: an ACTIVE version's role, or ``BACKTEST``, a run
    over a past cycle (:mod:`models_core.backtest`) that is never a version's role in the
    registry and whose result feeds no one."""

    PRIMARY = "PRIMARY"
    SHADOW = "SHADOW"
    CHALLENGER = "CHALLENGER"
    BACKTEST = "BACKTEST"


#: The roles a version can have in the registry.
VERSION_ROLES = (Role.PRIMARY.value, Role.SHADOW.value, Role.CHALLENGER.value)


def check_model_id(model_id: str, owner: str) -> None:
    """Reject a model_id the registry or Airflow could not hold, naming ``owner``."""
    if not isinstance(model_id, str) or not model_id:
        raise ValueError(f"{owner}: model_id must be a non-empty string, got {model_id!r}")
    if len(model_id) > MODEL_ID_MAX_LEN:
        raise ValueError(
            f"{owner}: model_id {model_id!r} is {len(model_id)} characters, "
            f"the registry allows at most {MODEL_ID_MAX_LEN}"
        )
    if not _MODEL_ID_PATTERN.fullmatch(model_id):
        raise ValueError(
            f"{owner}: model_id {model_id!r} may hold only letters, digits, '_' and '-' "
            "(it becomes an Airflow task group id)"
        )


def check_params_schema(schema: Any, owner: str) -> None:
    """Reject a ``params_schema`` that is not a JSON Schema, naming ``owner`` and the fault."""
    from jsonschema import SchemaError, validators  # loaded only by classes that declare one

    if not isinstance(schema, dict):
        raise ValueError(f"{owner}: params_schema must be a JSON Schema (a dict), got {type(schema).__name__}")
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path) or "the top level"
        raise ValueError(f"{owner}: params_schema is not a valid JSON Schema at {where}: {exc.message}") from None


@dataclass
class ModelResult:
    """What one version produced in one cycle.

    ``outputs_per_input`` holds ``(input_ref, output)`` pairs of JSON-able values;
    ``metrics`` maps a key (at most 64 characters) to a finite number.
    """

    model_id: str
    version_id: int
    role: Role | str
    outputs_per_input: list[tuple[Any, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    duration_ms: float = 0


@dataclass
class ModelContext:
    """Everything a model sees during one cycle.

    ``shared`` maps each upstream model_id to its PRIMARY's result of this cycle and
    nothing else. Results are loaded from the run-output table on first access, so a model
    that does not read an upstream does not pay for it. ``conn`` is opened by ``connect``
    on first use for the same reason: most models never touch it, and every connection a
    task opens costs the database a new backend process.
    """

    cycle_started_at: datetime
    shared: Mapping[str, ModelResult]
    params: dict[str, Any]
    connect: Callable[[], Any] | None = None
    primary_result_loader: Callable[[], ModelResult | None] | None = None

    @cached_property
    def conn(self) -> Any:
        """A DB-API connection to the registry database, the model's own."""
        if self.connect is None:
            raise RuntimeError("this ModelContext was built without a database connection (connect=None)")
        return self.connect()

    @property
    def primary_result(self) -> ModelResult | None:
        """For a SHADOW/CHALLENGER: its own model's PRIMARY result in this cycle."""
        if self.primary_result_loader is None:
            return None
        return self.primary_result_loader()


class BaseDetectionModel:
    """Base class of every detection model; one instance per ACTIVE version.

    ``compare_label`` and ``compare_score`` name keys of the output dicts that the default
    :meth:`evaluate` compares between a SHADOW/CHALLENGER and its PRIMARY. ``backend`` names
    the registered inference backend the model calls (a version's params may name another
    with the key ``backend``): while that backend is DOWN, the version's task skips.

    ``params_schema`` is an optional JSON Schema of the versions' ``params``. A version
    whose params do not match it is refused by ``modelreg activate`` and ``promote`` (the
    registry's checks before a version runs), so a typo in a params file is caught before a
    cycle runs the version rather than when it fails in one. The schema itself is checked
    when the class is defined.
    """

    model_id: ClassVar[str] = ""
    depends_on: ClassVar[list[str]] = []
    backend: ClassVar[str | None] = None
    compare_label: ClassVar[str | None] = None
    compare_score: ClassVar[str | None] = None
    params_schema: ClassVar[dict[str, Any] | None] = None
    #: A model without upstream models reads its own source; True when that source gives the
    #: same inputs for a past cycle again (a recording replayed by cycle time), so a backtest
    #: may run it over past cycles. Models with upstream models are fed the stored results.
    replayable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__dict__.get("model_id"):
            check_model_id(cls.model_id, owner)
        if cls.__dict__.get("params_schema") is not None:
            check_params_schema(cls.params_schema, owner)

    def __init__(
        self, *, version_id: int, version_str: str, role: Role | str, params: dict[str, Any] | None = None
    ) -> None:
        check_model_id(self.model_id, type(self).__qualname__)
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(
                f"{self.model_id}@{version_str}: params must be a JSON object, "
                f"got {type(params).__name__} {params!r:.80}"
            )
        self.version_id = version_id
        self.version_str = version_str
        self.role = Role(role)
        self.params = dict(params or {})

    def label(self) -> str:
        """Names the version in logs: ``model_id@version[ROLE]``."""
        return f"{self.model_id}@{self.version_str}[{self.role.value}]"

    def run(self, ctx: ModelContext) -> ModelResult:
        raise NotImplementedError(f"{type(self).__qualname__} must implement run(ctx)")

    def evaluate(self, result: ModelResult, primary: ModelResult) -> dict[str, float]:
        """Compare this SHADOW/CHALLENGER result with its PRIMARY's, input by input.

        Returns metrics stored with this version (prefix ``eval_``); override to add your own.
        The default matches outputs by ``input_ref`` and reports coverage, the agreement rate
        on ``compare_label`` and the absolute difference on ``compare_score``.
        """
        return compare_outputs(result, primary, self.compare_label, self.compare_score)


def _input_key(input_ref: Any) -> str:
    return json.dumps(input_ref, sort_keys=True, separators=(",", ":"))


def _field(output: Any, key: str) -> Any:
    return output.get(key) if isinstance(output, Mapping) else None


def compare_outputs(
    result: ModelResult, primary: ModelResult, label: str | None, score: str | None
) -> dict[str, float]:
    """Coverage, label agreement and score differences of two results on the same inputs."""
    mine = {_input_key(ref): out for ref, out in result.outputs_per_input}
    theirs = {_input_key(ref): out for ref, out in primary.outputs_per_input}
    both = mine.keys() & theirs.keys()
    union = len(mine.keys() | theirs.keys())
    metrics = {
        "eval_inputs_both": float(len(both)),
        "eval_inputs_shadow_only": float(len(mine.keys() - theirs.keys())),
        "eval_inputs_primary_only": float(len(theirs.keys() - mine.keys())),
        "eval_coverage": len(both) / union if union else 1.0,
    }
    if label and both:
        agreed = sum(_field(mine[k], label) == _field(theirs[k], label) for k in both)
        metrics["eval_inputs_agreed"] = float(agreed)  # the interval gates count inputs, not rates
        metrics["eval_agreement"] = agreed / len(both)
    if score:
        diffs = [
            abs(float(_field(mine[k], score)) - float(_field(theirs[k], score)))
            for k in both
            if isinstance(_field(mine[k], score), (int, float)) and isinstance(_field(theirs[k], score), (int, float))
        ]
        if diffs:
            metrics["eval_score_mean_abs_diff"] = sum(diffs) / len(diffs)
            metrics["eval_score_max_abs_diff"] = max(diffs)
    return metrics


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def validate_result(result: Any, model: BaseDetectionModel) -> ModelResult:
    """Check a model's return value before anything is written.

    Raises :class:`ResultValidationError` naming the model, version and the offending
    field. The pairs are checked by :func:`encode_pairs` as they are encoded for storage,
    inside the writing transaction, so a bad pair still leaves nothing stored.
    """
    who = model.label()
    if not isinstance(result, ModelResult):
        raise ResultValidationError(f"{who}: run() returned {type(result).__name__}, not ModelResult")
    if result.model_id != model.model_id:
        raise ResultValidationError(f"{who}: result.model_id is {result.model_id!r}, expected {model.model_id!r}")
    if result.version_id != model.version_id:
        raise ResultValidationError(f"{who}: result.version_id is {result.version_id!r}, expected {model.version_id!r}")
    try:
        role = Role(result.role)
    except ValueError:
        raise ResultValidationError(f"{who}: result.role {result.role!r} is not a known role") from None
    if role is not model.role:
        raise ResultValidationError(f"{who}: result.role is {role.value}, expected {model.role.value}")
    if not isinstance(result.outputs_per_input, (list, tuple)):
        raise ResultValidationError(f"{who}: outputs_per_input must be a list of (input_ref, output) pairs")
    if not isinstance(result.metrics, Mapping):
        raise ResultValidationError(f"{who}: metrics must be a mapping of key to number")
    for key, value in result.metrics.items():
        if not isinstance(key, str):
            raise ResultValidationError(f"{who}: metric key {key!r} is not a string")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _is_finite(value):
            raise ResultValidationError(f"{who}: metric {key!r} has non-finite or non-numeric value {value!r}")
    return result


def encode_pairs(result: ModelResult, who: str) -> Iterator[tuple[str, str]]:
    """Each (input_ref, output) pair as the JSON texts stored for it, checked on the way.

    Encoding happens once, here, while the rows stream into the database. Raises
    :class:`ResultValidationError` naming the pair's index and part for a malformed pair, a
    value JSON cannot hold (NaN, a set, an object) or one PostgreSQL's jsonb cannot (a NUL
    character, a lone surrogate).
    """
    for index, pair in enumerate(result.outputs_per_input):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ResultValidationError(f"{who}: outputs_per_input[{index}] is not an (input_ref, output) pair")
        yield _encode(pair[0], who, index, "input_ref"), _encode(pair[1], who, index, "output")


def _encode(value: Any, who: str, index: int, part: str) -> str:
    try:
        text = _strict_json(value)
    except (TypeError, ValueError) as exc:
        raise ResultValidationError(
            f"{who}: outputs_per_input[{index}] {part} is not JSON-serialisable: {exc}"
        ) from None
    except RecursionError:
        raise ResultValidationError(
            f"{who}: outputs_per_input[{index}] {part} is not JSON-serialisable: it refers to itself "
            "(or nests too deeply)"
        ) from None
    if "\\u0000" in text and _has_nul(text):
        raise ResultValidationError(
            f"{who}: outputs_per_input[{index}] {part} contains a NUL character (\\u0000), "
            "which PostgreSQL's jsonb cannot store"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ResultValidationError(
                f"{who}: outputs_per_input[{index}] {part} contains a lone surrogate, which is not valid UTF-8"
            ) from None
    return text


def _has_nul(text: str) -> bool:
    """Whether JSON text holds the escape ``\\u0000`` (not an escaped backslash followed by ``u0000``)."""
    start = text.find("\\u0000")
    while start != -1:
        backslashes = len(text[:start]) - len(text[:start].rstrip("\\"))
        if backslashes % 2 == 0:
            return True
        start = text.find("\\u0000", start + 1)
    return False
