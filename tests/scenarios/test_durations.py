"""Durations in scenario files: the forms incident reports use in, seconds out, and back.

Every offset and length in a scenario goes through `parse_duration`, so a form it
misreads shifts a whole timeline; a form it rejects must say which forms it takes,
because the user is looking at a YAML file, not at this module.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.durations import format_duration, parse_duration

ACCEPTED_FORMS = "'90s', '25m', '2h28m'"
"""A fragment every rejection message shows, so the user sees what to write instead."""


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(90, 90.0, id="bare-int-is-seconds"),
        pytest.param(1.5, 1.5, id="bare-float-is-seconds"),
        pytest.param(0, 0.0, id="zero"),
        pytest.param("90s", 90.0, id="seconds"),
        pytest.param("25m", 1500.0, id="minutes"),
        pytest.param("2h28m", 8880.0, id="hours-and-minutes"),
        pytest.param("1.5h", 5400.0, id="fractional-hours"),
        pytest.param("600ms", 0.6, id="milliseconds"),
        pytest.param("1d", 86400.0, id="days"),
        pytest.param(" 2h 28m ", 8880.0, id="spaces-around-and-between"),
        pytest.param("1h0m30s", 3630.0, id="zero-part"),
        pytest.param("1d2h3m4s5ms", 93784.005, id="every-unit"),
        pytest.param("0s", 0.0, id="zero-text"),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(-1, id="negative"),
        pytest.param(-0.5, id="negative-float"),
        pytest.param("abc", id="word"),
        pytest.param("5 minutes", id="spelled-out-unit"),
        pytest.param("90", id="number-as-text"),
        pytest.param("-5s", id="negative-text"),
        pytest.param("2h28", id="trailing-number-without-unit"),
        pytest.param("1w", id="unknown-unit"),
        pytest.param(True, id="bool"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(-math.inf, id="minus-inf"),
    ],
)
def test_parse_duration_rejects_with_the_accepted_forms(value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert ACCEPTED_FORMS in str(caught.value), caught.value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(0.25, "250ms", id="sub-second"),
        pytest.param(0.6, "600ms", id="sub-second-inexact-float"),
        pytest.param(1, "1s", id="one-second"),
        pytest.param(1.5, "1.5s", id="fractional-seconds"),
        pytest.param(59, "59s", id="under-a-minute"),
        pytest.param(60, "1m", id="one-minute"),
        pytest.param(90, "1m30s", id="minute-and-seconds"),
        pytest.param(3600, "1h", id="one-hour"),
        pytest.param(3630, "1h30s", id="skips-empty-minutes"),
        pytest.param(8880, "2h28m", id="incident-length"),
        pytest.param(86400, "1d", id="one-day"),
        pytest.param(90061, "1d1h1m1s", id="every-unit"),
        pytest.param(3600.1, "1h0.1s", id="float-remainder"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9), "format → parse round trip"


@given(st.integers(min_value=0, max_value=30 * 86400 * 1000))
def test_millisecond_durations_round_trip(milliseconds: int) -> None:
    """Whatever a scenario can say to the millisecond, the formatted text says back."""
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)
