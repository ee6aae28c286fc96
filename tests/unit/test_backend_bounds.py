"""Whatever a backend answers, its sample fits its columns: texts cleaned and bounded, figures in range. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from models_core.backends.health_check import storable
from models_core.backends.health_rules import Probe
from models_core.backends.probe import clean_text

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_clean_text_escapes_what_postgresql_text_cannot_hold_and_keeps_one_bounded_line():
    cleaned = clean_text("HTTP 500:\x00 lone \udcff surrogate,\r\n\tbell \x07 zero-width \u200b end")

    assert cleaned == "HTTP 500:\\x00 lone \\udcff surrogate, bell \\x07 zero-width \\u200b end"
    assert cleaned.encode("utf-8").decode("utf-8") == cleaned


def test_clean_text_cuts_at_the_limit_with_an_ellipsis():
    assert clean_text("x" * 1000, limit=20) == "x" * 17 + "..."
    assert clean_text("short", limit=20) == "short"


def test_a_sample_keeps_every_figure_its_column_holds():
    probe = Probe(T0, True, 12.5, 200, 2**31 - 1, 2**63 - 1, None)

    assert storable(probe) == probe


def test_figures_out_of_their_columns_range_are_dropped_and_said_in_the_error():
    probe = Probe(T0, True, 12.5, 200, 2**31, 10**5000, "status endpoint slow\x00")

    stored = storable(probe)

    assert (stored.active_jobs, stored.total_requests, stored.http_status) == (None, None, 200)
    assert stored.error == (
        "status endpoint slow\\x00; active_jobs 2147483648 is out of range (0 to 2147483647), "
        "not stored; load judged from latency; total_requests of 16610 bits is out of range "
        "(0 to 9223372036854775807), not stored"
    )


def test_an_error_of_any_length_is_stored_bounded():
    stored = storable(Probe(T0, False, 3.0, 500, error="\x00" * 100_000))

    assert len(stored.error) <= 600 and "\x00" not in stored.error
