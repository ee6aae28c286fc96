"""build_plan: ordering, dependency merging, cycles, skipped rows, blocking, serialisation."""

from __future__ import annotations

import random
import re

import pytest

from models_core.discovery import ModelClass
from models_core.errors import DependencyCycleError
from models_core.plan import Plan, PlannedVersion, VersionRow, build_plan


def cls(model_id: str, *depends_on: str) -> ModelClass:
    return ModelClass(model_id, f"pkg.{model_id}:{model_id.title()}", tuple(depends_on))


def classes(*items: ModelClass) -> dict[str, ModelClass]:
    return {c.model_id: c for c in items}


def primaries(*model_ids: str) -> list[VersionRow]:
    return [VersionRow(id=i + 1, model_id=m, version="1.0.0", role="PRIMARY") for i, m in enumerate(model_ids)]


def order(plan: Plan) -> list[str]:
    return [m.model_id for m in plan.models]


# --- ordering ---------------------------------------------------------------------------


def test_independent_models_are_ordered_alphabetically():
    plan = build_plan(primaries("zeta", "alpha", "mid"), [], classes(cls("zeta"), cls("alpha"), cls("mid")))
    assert order(plan) == ["alpha", "mid", "zeta"]


def test_topological_order_takes_alphabetically_smallest_ready_model_first():
    # a <- z (z depends on a), b independent, c depends on z.
    deps = [("z", "a"), ("c", "z")]
    plan = build_plan(primaries("a", "b", "c", "z"), deps, classes(cls("a"), cls("b"), cls("c"), cls("z")))
    assert order(plan) == ["a", "b", "z", "c"]


def test_upstream_always_precedes_downstream():
    deps = [("d", "c"), ("c", "b"), ("b", "a"), ("e", "a")]
    plan = build_plan(primaries("a", "b", "c", "d", "e"), deps, classes(*(cls(m) for m in "abcde")))
    position = {m: i for i, m in enumerate(order(plan))}
    for downstream, upstream in deps:
        assert position[upstream] < position[downstream]
    assert order(plan) == ["a", "b", "c", "d", "e"]


def test_plan_is_identical_whatever_the_input_order():
    rows = primaries("a", "b", "c", "d", "e") + [
        VersionRow(id=10, model_id="b", version="2.0.0", role="SHADOW"),
        VersionRow(id=11, model_id="b", version="1.9.0", role="CHALLENGER"),
        VersionRow(id=12, model_id="ghost", version="0.1.0", role="PRIMARY"),
    ]
    deps = [("c", "a"), ("d", "c"), ("e", "b"), ("b", "a")]
    class_list = [cls(m) for m in "abcde"]
    reference = build_plan(rows, deps, classes(*class_list))
    rng = random.Random(1234)
    for _ in range(20):
        rng.shuffle(rows)
        rng.shuffle(deps)
        rng.shuffle(class_list)
        plan = build_plan(list(rows), list(deps), classes(*class_list))
        assert plan == reference
        assert plan.to_json() == reference.to_json()
        assert plan.fingerprint == reference.fingerprint


# --- dependency merging -----------------------------------------------------------------


def test_db_edges_and_class_depends_on_are_merged():
    plan = build_plan(primaries("a", "b", "c"), [("c", "a")], classes(cls("a"), cls("b"), cls("c", "b")))
    assert plan.model("c").upstream == ("a", "b")
    assert order(plan) == ["a", "b", "c"]


def test_same_edge_from_db_and_class_is_listed_once():
    plan = build_plan(primaries("a", "b"), [("b", "a")], classes(cls("a"), cls("b", "a")))
    assert plan.model("b").upstream == ("a",)


def test_db_edge_for_model_without_versions_is_ignored():
    plan = build_plan(primaries("a"), [("absent", "a")], classes(cls("a")))
    assert order(plan) == ["a"]
    assert plan.model("a").blocked_reason is None


# --- cycles -----------------------------------------------------------------------------


def test_cycle_error_names_every_model_on_the_cycle():
    deps = [("a", "c"), ("b", "a"), ("c", "b")]
    with pytest.raises(DependencyCycleError) as info:
        build_plan(primaries("a", "b", "c"), deps, classes(cls("a"), cls("b"), cls("c")))
    assert info.value.models == ["a", "b", "c"]
    assert info.value.cycles == [["a", "b", "c"]]
    for model_id in ("a", "b", "c"):
        assert model_id in str(info.value)


def test_cycle_error_does_not_name_models_merely_downstream_of_the_cycle():
    deps = [("a", "b"), ("b", "a"), ("downstream", "a"), ("further", "downstream"), ("root_up", "root")]
    class_map = classes(*(cls(m) for m in ("a", "b", "downstream", "further", "root", "root_up")))
    with pytest.raises(DependencyCycleError) as info:
        build_plan(primaries("a", "b", "downstream", "further", "root", "root_up"), deps, class_map)
    assert info.value.models == ["a", "b"]
    assert info.value.cycles == [["a", "b"]]
    message = str(info.value)
    for bystander in ("downstream", "further", "root"):
        assert bystander not in message


def test_cycle_error_from_class_depends_on_only():
    with pytest.raises(DependencyCycleError) as info:
        build_plan(primaries("x", "y"), [], classes(cls("x", "y"), cls("y", "x")))
    assert info.value.models == ["x", "y"]


def test_cycle_error_names_model_that_depends_on_itself():
    with pytest.raises(DependencyCycleError) as info:
        build_plan(primaries("selfish", "other"), [], classes(cls("selfish", "selfish"), cls("other", "selfish")))
    assert info.value.models == ["selfish"]
    assert info.value.cycles == [["selfish"]]
    assert "selfish depends on selfish" in str(info.value)


def test_cycle_error_names_each_of_two_separate_cycles():
    deps = [("a", "b"), ("b", "a"), ("p", "q"), ("q", "r"), ("r", "p"), ("ok", "a")]
    class_map = classes(*(cls(m) for m in ("a", "b", "p", "q", "r", "ok", "free")))
    with pytest.raises(DependencyCycleError) as info:
        build_plan(primaries("a", "b", "p", "q", "r", "ok", "free"), deps, class_map)
    assert info.value.cycles == [["a", "b"], ["p", "q", "r"]]
    assert info.value.models == ["a", "b", "p", "q", "r"]


def test_cycle_error_message_lists_exactly_the_edges_on_the_cycle():
    deps = [("a", "c"), ("c", "b"), ("b", "d"), ("d", "a"), ("e", "a")]
    with pytest.raises(DependencyCycleError) as info:
        build_plan(primaries("a", "b", "c", "d", "e"), deps, classes(*(cls(m) for m in "abcde")))
    assert info.value.edges == sorted(deps[:4])
    for model, upstream in deps[:4]:
        assert f"{model} depends on {upstream}" in str(info.value)
    assert "e depends on" not in str(info.value)


# --- skipped rows -----------------------------------------------------------------------


def test_row_whose_model_has_no_class_is_skipped_with_warning_naming_model_and_version():
    rows = primaries("known") + [VersionRow(id=7, model_id="orphan", version="3.1.4", role="PRIMARY")]
    plan = build_plan(rows, [], classes(cls("known")))
    assert order(plan) == ["known"]
    matching = [w for w in plan.warnings if "orphan" in w]
    assert len(matching) == 1
    assert "orphan@3.1.4" in matching[0]
    assert "skipped" in matching[0]


def test_row_with_unknown_role_is_skipped_with_warning():
    rows = primaries("m") + [VersionRow(id=9, model_id="m", version="2.0.0", role="CANARY")]
    plan = build_plan(rows, [], classes(cls("m")))
    assert plan.model("m").shadows == ()
    assert [v.version_id for v in plan.model("m").versions] == [1]
    matching = [w for w in plan.warnings if "CANARY" in w]
    assert len(matching) == 1
    assert "m@2.0.0" in matching[0]
    assert "unknown role" in matching[0]


def test_second_primary_of_a_model_is_skipped_with_warning():
    rows = [
        VersionRow(id=5, model_id="m", version="2.0.0", role="PRIMARY"),
        VersionRow(id=3, model_id="m", version="1.0.0", role="PRIMARY"),
    ]
    plan = build_plan(rows, [], classes(cls("m")))
    assert plan.model("m").primary.version_id == 3
    assert any("id 5" in w and "already has ACTIVE PRIMARY id 3" in w for w in plan.warnings)


def test_import_errors_come_first_among_the_warnings():
    plan = build_plan(primaries("m"), [], classes(cls("m")), import_errors=["from discovery"])
    assert plan.warnings == ("from discovery",)


def test_active_versions_left_out_of_the_plan_keep_why_naming_the_modules_that_failed_to_import():
    rows = primaries("m", "gone") + [
        VersionRow(id=7, model_id="gone", version="1.1.0", role="SHADOW"),
        VersionRow(id=8, model_id="m", version="0.9.0", role="WEIRD"),
        VersionRow(id=9, model_id="m", version="2.0.0", role="PRIMARY"),
    ]
    failed = "module pkg.gone failed to import: ModuleNotFoundError: No module named 'helper'"
    plan = build_plan(rows, [], classes(cls("m")), import_errors=[failed])

    reasons = {v.task_id: (v.version_id, v.reason) for v in plan.left_out}
    assert reasons == {
        "gone.primary": (2, f"no model class declares model_id 'gone' ({failed})"),
        "gone.shadow_1_1_0": (7, f"no model class declares model_id 'gone' ({failed})"),
        "m.weird_0_9_0": (8, "unknown role 'WEIRD'"),
        "m.primary": (9, "m already has ACTIVE PRIMARY id 1"),
    }
    assert plan.left_out_version("gone.shadow_1_1_0").label() == "gone@1.1.0[SHADOW]"
    assert plan.left_out_version("m.shadow_1_0_0") is None
    assert (
        build_plan(primaries("m", "gone"), [], classes(cls("m"))).left_out_version("gone.primary").reason
        == "no model class declares model_id 'gone'"
    )


# --- blocking ---------------------------------------------------------------------------


def test_model_whose_upstream_has_no_active_primary_is_blocked_naming_the_upstream():
    rows = primaries("down") + [VersionRow(id=20, model_id="up", version="1.0.0", role="SHADOW")]
    plan = build_plan(rows, [("down", "up")], classes(cls("up"), cls("down")))
    reason = plan.model("down").blocked_reason
    assert reason == "upstream up has no ACTIVE PRIMARY"
    assert any(w.startswith("down will not run") for w in plan.warnings)


def test_model_whose_upstream_has_no_rows_at_all_is_blocked():
    plan = build_plan(primaries("down"), [], classes(cls("down", "never_registered")))
    assert plan.model("down").blocked_reason == "upstream never_registered has no ACTIVE PRIMARY"


def test_model_downstream_of_a_blocked_model_is_blocked_too():
    rows = primaries("mid", "last", "fine") + [VersionRow(id=20, model_id="up", version="1.0.0", role="SHADOW")]
    deps = [("mid", "up"), ("last", "mid")]
    plan = build_plan(rows, deps, classes(cls("up"), cls("mid"), cls("last"), cls("fine")))
    assert plan.model("mid").blocked_reason == "upstream up has no ACTIVE PRIMARY"
    assert plan.model("last").blocked_reason == "upstream mid cannot run"
    assert plan.model("fine").blocked_reason is None


def test_model_with_only_shadow_versions_is_blocked():
    rows = [
        VersionRow(id=1, model_id="lonely", version="1.0.0", role="SHADOW"),
        VersionRow(id=2, model_id="lonely", version="1.1.0", role="CHALLENGER"),
    ]
    plan = build_plan(rows, [], classes(cls("lonely")))
    model = plan.model("lonely")
    assert model.primary is None
    assert len(model.shadows) == 2
    assert model.blocked_reason is not None
    assert "lonely has no ACTIVE PRIMARY" in model.blocked_reason


def test_unblocked_model_has_no_reason_and_no_warning():
    plan = build_plan(primaries("a", "b"), [("b", "a")], classes(cls("a"), cls("b")))
    assert [m.blocked_reason for m in plan.models] == [None, None]
    assert plan.warnings == ()


# --- shadows ----------------------------------------------------------------------------


def test_shadows_sorted_by_role_then_semantic_version():
    rows = primaries("m") + [
        VersionRow(id=30, model_id="m", version="1.10.0", role="SHADOW"),
        VersionRow(id=31, model_id="m", version="1.9.0", role="SHADOW"),
        VersionRow(id=32, model_id="m", version="2.0.0", role="CHALLENGER"),
        VersionRow(id=33, model_id="m", version="1.2.0", role="SHADOW"),
        VersionRow(id=34, model_id="m", version="1.11.0", role="CHALLENGER"),
    ]
    plan = build_plan(rows, [], classes(cls("m")))
    assert [(v.role, v.version) for v in plan.model("m").shadows] == [
        ("CHALLENGER", "1.11.0"),
        ("CHALLENGER", "2.0.0"),
        ("SHADOW", "1.2.0"),
        ("SHADOW", "1.9.0"),
        ("SHADOW", "1.10.0"),
    ]
    assert plan.model("m").versions[0].role == "PRIMARY"


def test_planned_versions_carry_class_path():
    plan = build_plan(primaries("m"), [], classes(cls("m")))
    assert plan.model("m").primary.class_path == "pkg.m:M"


# --- serialisation ----------------------------------------------------------------------


def _rich_plan() -> Plan:
    rows = primaries("a", "b") + [
        VersionRow(id=40, model_id="b", version="1.2.0", role="SHADOW"),
        VersionRow(id=41, model_id="c", version="1.0.0", role="SHADOW"),
        VersionRow(id=42, model_id="d", version="1.0.0", role="WEIRD"),
    ]
    return build_plan(
        rows, [("b", "a")], classes(cls("a"), cls("b"), cls("c"), cls("d")), import_errors=["module x failed to import"]
    )


def test_plan_json_round_trip_is_equal():
    plan = _rich_plan()
    restored = Plan.from_json(plan.to_json())
    assert restored == plan
    assert restored.to_json() == plan.to_json()
    assert isinstance(restored.models[0].shadows, tuple)
    assert isinstance(restored.warnings, tuple)
    assert restored.left_out == plan.left_out and len(plan.left_out) == 1


def test_a_plan_saved_before_plans_kept_their_left_out_versions_still_loads():
    data = _rich_plan().to_dict()
    del data["left_out"]
    assert Plan.from_dict(data).left_out == ()


def test_plan_fingerprint_is_stable_and_changes_with_the_plan():
    plan = _rich_plan()
    assert plan.fingerprint == _rich_plan().fingerprint
    assert plan.fingerprint == Plan.from_json(plan.to_json()).fingerprint
    assert re.fullmatch(r"[0-9a-f]{12}", plan.fingerprint)
    other = build_plan(primaries("a"), [], classes(cls("a")))
    assert other.fingerprint != plan.fingerprint


# --- task ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "version", "task_name"),
    [
        ("PRIMARY", "1.0.0", "primary"),
        ("SHADOW", "1.2.0", "shadow_1_2_0"),
        ("CHALLENGER", "2.1.0", "challenger_2_1_0"),
    ],
)
def test_task_names_by_role_and_version(role, version, task_name):
    planned = PlannedVersion("ais_ingest", 1, version, role, "pkg:Cls")
    assert planned.task_name == task_name
    assert planned.task_id == f"ais_ingest.{task_name}"


def test_version_label_names_model_version_and_role():
    assert PlannedVersion("m", 1, "1.2.0", "SHADOW", "pkg:Cls").label() == "m@1.2.0[SHADOW]"
