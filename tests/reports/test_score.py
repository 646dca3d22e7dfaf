"""The resilience score: hard failures, worked example, monotonicity; the SLO table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reports.score
from reports.metrics import compute_metrics
from reports.score import evaluate_slos, hard_failures, nines, score, time_to_failover_term
from scenarios.schema import SLO, Scenario
from tests.reports.traces import attempt, attempts_frame, context, fault, request, requests_frame

README = Path(__file__).resolve().parents[2] / "reports" / "README.md"

GOOD: dict[str, Any] = {
    "availability": 1.0,
    "availability_during_faults": 1.0,
    "amplification_peak": 1.0,
    "ttf_s": None,
    "compliance_violations": 0,
    "truncated_successes": 0,
    "recovered": True,
}

WORKED_EXAMPLE: dict[str, Any] = {
    "availability_during_faults": 0.999,
    "availability": 0.9995,
    "amplification_peak": 2.0,
    "ttf_s": 30.0,
    "compliance_violations": 0,
    "truncated_successes": 0,
    "recovered": True,
}


def test_a_perfect_run_scores_100() -> None:
    assert score(GOOD) == 100.0


@pytest.mark.parametrize(
    ("key", "value"),
    [("compliance_violations", 1), ("truncated_successes", 2), ("recovered", False)],
)
def test_hard_failures_score_zero(key: str, value: Any) -> None:
    bad = {**GOOD, key: value}
    assert score(bad) == 0.0
    assert len(hard_failures(bad)) == 1
    assert hard_failures(GOOD) == []


def test_no_fault_closing_is_not_a_hard_failure() -> None:
    assert score({**GOOD, "recovered": None}) == 100.0


def test_the_worked_example() -> None:
    expected = 100 * (0.6 * 0.75 + 0.2 * (-math.log10(0.0005) / 4) + 0.1 * 0.5 + 0.1 / 1.5)
    assert score(WORKED_EXAMPLE) == pytest.approx(expected, abs=1e-6)
    assert score(WORKED_EXAMPLE) == 73.171817


def test_the_worked_example_is_documented() -> None:
    assert reports.score.__doc__ is not None and "73.171817" in reports.score.__doc__
    readme = README.read_text(encoding="utf-8")
    assert "73.171817" in readme
    assert "0.6·N(a_f)" in readme.replace(" ", "")


@pytest.mark.parametrize(
    ("x", "expected"),
    [(None, 0.0), (0.0, 0.0), (0.9, 0.25), (0.99, 0.5), (0.999, 0.75), (0.9999, 1.0), (1.0, 1.0)],
)
def test_nines(x: float | None, expected: float) -> None:
    assert nines(x) == pytest.approx(expected)


def test_time_to_failover_term() -> None:
    assert time_to_failover_term(None) == 1.0
    assert time_to_failover_term(0.0) == 1.0
    assert time_to_failover_term(60.0) == 0.5


def test_missing_fault_availability_falls_back_to_availability() -> None:
    with_faults = {**WORKED_EXAMPLE, "availability_during_faults": 0.9995}
    assert score({**WORKED_EXAMPLE, "availability_during_faults": None}) == score(with_faults)


def test_an_empty_run_scores_without_error() -> None:
    m = compute_metrics(attempts_frame([]), requests_frame([]), context())
    assert score(m) == pytest.approx(20.0)  # no availability evidence: only the other terms


# --------------------------------------------------------------------------- monotonicity

unit = st.floats(0.0, 1.0, allow_nan=False)
metric_sets = st.fixed_dictionaries(
    {
        "availability": unit | st.none(),
        "availability_during_faults": unit | st.none(),
        "amplification_peak": st.floats(0.0, 1e3, allow_nan=False) | st.none(),
        "ttf_s": st.floats(0.0, 1e5, allow_nan=False) | st.none(),
        "compliance_violations": st.integers(0, 3),
        "truncated_successes": st.integers(0, 3),
        "recovered": st.sampled_from([True, False, None]),
    }
)


@st.composite
def improvements(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A metrics set and a copy where exactly one metric is better (or equal)."""
    base = draw(metric_sets)
    key = draw(st.sampled_from(sorted(base)))
    old: Any = base[key]
    new: Any
    # None (nothing measured) is not on any scale: it stays as it is.
    if key in {"availability", "availability_during_faults"}:
        new = None if old is None else draw(st.floats(old, 1.0, allow_nan=False))
    elif key in {"amplification_peak", "ttf_s"}:
        new = None if old is None else draw(st.floats(0.0, old, allow_nan=False))
    elif key in {"compliance_violations", "truncated_successes"}:
        new = draw(st.integers(0, old))
    else:
        new = draw(st.sampled_from([old, True] if old is not None else [None]))
    return base, {**base, key: new}


@given(improvements())
def test_improving_any_one_metric_never_lowers_the_score(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    base, better = pair
    assert score(better) >= score(base)


@given(metric_sets)
def test_the_score_lies_between_0_and_100(m: dict[str, Any]) -> None:
    assert 0.0 <= score(m) <= 100.0


# --------------------------------------------------------------------------- SLOs


def _slos(*texts: str) -> tuple[SLO, ...]:
    scenario = Scenario.model_validate(
        {
            "id": "x",
            "title": "x",
            "description": "x",
            "sources": ["x"],
            "duration": 60,
            "policy": "p",
            "traffic": {"arrivals": {"kind": "poisson", "rate": 1}},
            "slos": list(texts),
        }
    )
    return scenario.slos


def test_evaluate_slos_table() -> None:
    slos = _slos(
        "availability >= 0.99",
        "availability_during_faults >= 0.999",
        "amplification_peak <= 3",
        "ttr_s <= 60",
        "recovered == true",
        "score >= 70",
    )
    metrics = {
        "availability": 0.995,
        "availability_during_faults": 0.99,
        "amplification_peak": 2.0,
        "ttr_s": None,
        **{k: v for k, v in WORKED_EXAMPLE.items() if k.startswith(("comp", "trunc", "rec"))},
        "ttf_s": 30.0,
    }
    table = evaluate_slos(slos, metrics)
    assert [row["name"] for row in table] == [slo.name for slo in slos]
    assert [row["ok"] for row in table] == [True, False, True, False, True, False]
    assert table[0] == {
        "name": "availability >= 0.99",
        "ok": True,
        "value": 0.995,
        "threshold": 0.99,
    }
    assert table[3]["value"] is None  # a missing value fails
    assert table[4]["threshold"] is True
    assert table[5]["value"] == score(metrics)


def test_evaluate_slos_on_real_metrics() -> None:
    attempts = [attempt(f"r{i}", "a", float(i)) for i in range(10)]
    requests = [request(f"r{i}", float(i)) for i in range(10)]
    m = compute_metrics(attempts_frame(attempts), requests_frame(requests), context(fault(5, 6)))
    table = evaluate_slos(_slos("availability >= 0.999", "ttd_s <= 30", "score >= 90"), m)
    assert [row["ok"] for row in table] == [True, False, True]
