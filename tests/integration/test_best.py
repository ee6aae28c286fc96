"""`modelreg best`: the versions that ran, ranked by a metric's mean over seeded history
(issue 15, item 5). Values are exact binary fractions, so ties are real ties."""

from __future__ import annotations

import pytest
from registry_helpers import modelreg, modelreg_text


@pytest.fixture
def history(registry) -> None:
    """loner's versions and what each recorded (precision is the model's own metric)."""
    ids = {
        version: registry.add_version("loner", version, role, status)
        for version, role, status in (
            ("1.0.0", "PRIMARY", "ACTIVE"),
            ("1.1.0", "SHADOW", "ACTIVE"),
            ("1.2.0", "SHADOW", "INACTIVE"),
            ("1.4.0", "SHADOW", "ACTIVE"),
            ("1.9.0", "SHADOW", "ACTIVE"),
            ("1.10.0", "CHALLENGER", "ACTIVE"),
            ("1.5.0", "SHADOW", "DRAFT"),
        )
    }
    registry.seed_cycles(
        "loner",
        ids["1.0.0"],
        ["success"] * 6,
        {"precision": 0.5},
        "PRIMARY",
        framework_metrics={"cycle_duration_ms": 100.0},
    )
    registry.seed_cycles("loner", ids["1.0.0"], ["success"], {"precision": 1.0}, "PRIMARY", hours_ago=300)
    registry.seed_cycles(
        "loner",
        ids["1.1.0"],
        ["success"] * 5 + ["failed"],
        {"precision": 0.75},
        framework_metrics={"cycle_duration_ms": 80.0},
    )
    registry.seed_cycles("loner", ids["1.9.0"], ["success"] * 6, {"precision": 0.75})
    registry.seed_cycles("loner", ids["1.10.0"], ["success"] * 6, {"precision": 0.75}, "CHALLENGER")
    registry.seed_cycles("loner", ids["1.2.0"], ["success"] * 2, {"precision": 0.875})
    registry.seed_cycles("loner", ids["1.4.0"], ["success"] * 3, {"recall": 0.5})


def _ranked(data) -> list[tuple]:
    return [(r["rank"], r["version"], r["mean"], r["cycles"], r["failed"]) for r in data["ranked"]]


@pytest.mark.usefixtures("history")
def test_best_ranks_by_mean_then_failures_then_cycles_then_newest(capsys):
    code, data, _ = modelreg(capsys, "best", "loner", "--metric", "precision")

    assert code == 0 and data["best"] == "1.2.0"
    assert _ranked(data) == [
        (1, "1.2.0", 0.875, 2, 0),
        (2, "1.10.0", 0.75, 6, 0),
        (3, "1.9.0", 0.75, 6, 0),
        (4, "1.1.0", 0.75, 6, 1),
        (5, "1.0.0", 0.5, 6, 0),
    ]
    assert [(r["version"], r["why"]) for r in data["excluded"]] == [("1.4.0", "no values of the metric")]
    assert data["ranked"][3]["failure_rate"] == pytest.approx(1 / 6)


@pytest.mark.usefixtures("history")
def test_min_cycles_window_and_lower_is_better(capsys):
    data = modelreg(capsys, "best", "loner", "--metric", "precision", "--min-cycles", "3")[1]
    assert [r[1] for r in _ranked(data)] == ["1.10.0", "1.9.0", "1.1.0", "1.0.0"]
    assert [(r["version"], r["why"]) for r in data["excluded"]] == [
        ("1.4.0", "no values of the metric"),
        ("1.2.0", "2 cycles, fewer than 3"),
    ]

    lower = modelreg(capsys, "best", "loner", "--metric", "precision", "--lower-is-better")[1]
    assert [r[1] for r in _ranked(lower)] == ["1.0.0", "1.10.0", "1.9.0", "1.1.0", "1.2.0"]

    wide = modelreg(capsys, "best", "loner", "--metric", "precision", "--window", "400", "--min-cycles", "3")[1]
    assert ("1.0.0", 7, (0.5 * 6 + 1.0) / 7) in [(r["version"], r["cycles"], r["mean"]) for r in wide["ranked"]]
    narrow = modelreg(capsys, "best", "loner", "--metric", "precision", "--window", "0.1")
    assert narrow[0] == 1 and "no version of loner ran in the last 0.1 h" in narrow[2]


@pytest.mark.usefixtures("history")
def test_framework_metrics_rank_only_when_asked_and_an_unknown_metric_is_named(capsys):
    code, _, err = modelreg(capsys, "best", "loner", "--metric", "cycle_duration_ms")
    assert (
        code == 1
        and "'cycle_duration_ms' of loner is recorded by the framework, not the model; add --include-defaults" in err
    )

    data = modelreg(
        capsys, "best", "loner", "--metric", "cycle_duration_ms", "--include-defaults", "--lower-is-better"
    )[1]
    assert [(r[1], r[2]) for r in _ranked(data)] == [("1.1.0", 80.0), ("1.0.0", 100.0)]

    code, _, err = modelreg(capsys, "best", "loner", "--metric", "f1")
    assert (
        code == 1
        and "no version of loner recorded the metric 'f1' in the last 168 h "
        "(recorded: cycle_duration_ms, precision, recall)"
        in err
    )


@pytest.mark.usefixtures("history")
def test_best_prints_a_table_with_the_figures(capsys):
    code, text, _ = modelreg_text(capsys, "best", "loner", "--metric", "precision", "--min-cycles", "3")

    lines = text.splitlines()
    assert code == 0 and lines[0].startswith("loner: versions by mean precision over the last 168 h")
    assert lines[2].split() == ["1", "1.10.0", "ACTIVE", "CHALLENGER", "6", "0", "0.75", "6"]
    assert "(left out: 2 cycles, fewer than 3)" in text and lines[-1] == "best: 1.10.0"
