"""The gate's judgement without a simulator: tolerances, baselines, verdict, Markdown, JUnit.

CI trusts these functions to fail a worse policy and pass an equal one, so each
tolerance is checked on both sides of its limit, in the metric's own direction.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.gate import (
    DEFAULT_TOLERANCES,
    GATED_METRICS,
    BaselineError,
    Regression,
    Tolerance,
    check_baseline,
    compare,
    junit_xml,
    make_baseline,
    markdown_summary,
    merge_baselines,
    new_scenarios,
    unrunnable,
    verdict,
)

METRICS: dict[str, Any] = {
    "availability": 0.999,
    "availability_during_faults": 0.99,
    "amplification_peak": 2.0,
    "ttf_s": 100.0,
    "cost_per_1k_requests_usd": 10.0,
    "latency_p99_s": 30.0,
}


def result(
    scenario: str = "edge",
    *,
    score: float = 95.0,
    slos: list[dict[str, Any]] | None = None,
    hard: list[str] | None = None,
    wall_s: float = 1.25,
    **metrics: Any,
) -> dict[str, Any]:
    """A results.json dict as `run_replications` returns it."""
    slos = slos if slos is not None else [{"name": "a >= 0.9", "ok": True, "value": 1.0}]
    hard = hard or []
    return {
        "scenario": scenario,
        "policy": "domain-aware",
        "metrics": {**METRICS, **metrics},
        "score": score,
        "slos": slos,
        "hard_failures": hard,
        "passed": all(s["ok"] for s in slos) and not hard,
        "wall_s": wall_s,
    }


BASELINE = make_baseline([result()])


# --------------------------------------------------------------------------- compare


@pytest.mark.parametrize(
    ("metric", "current", "regressed"),
    [
        # score: higher is better, 2 points of slack
        ("score", 97.0, False),
        ("score", 93.0, False),
        ("score", 92.9, True),
        # availability: higher is better, 0.001 absolute
        ("availability", 1.0, False),
        ("availability", 0.998, False),
        ("availability", 0.9979, True),
        ("availability_during_faults", 0.989, False),
        ("availability_during_faults", 0.9889, True),
        # amplification peak: lower is better, +10 %
        ("amplification_peak", 1.0, False),
        ("amplification_peak", 2.2, False),
        ("amplification_peak", 2.21, True),
        # TTF: lower is better, +10 % and +5 s
        ("ttf_s", 5.0, False),
        ("ttf_s", 115.0, False),
        ("ttf_s", 115.1, True),
        # cost: lower is better, +5 %
        ("cost_per_1k_requests_usd", 9.0, False),
        ("cost_per_1k_requests_usd", 10.5, False),
        ("cost_per_1k_requests_usd", 10.51, True),
        # latency: lower is better, +10 %
        ("latency_p99_s", 20.0, False),
        ("latency_p99_s", 33.0, False),
        ("latency_p99_s", 33.1, True),
    ],
)
def test_compare_applies_each_tolerance_in_its_direction(
    metric: str, current: float, regressed: bool
) -> None:
    changed: dict[str, Any] = {metric: current}
    now = result(**changed)
    found = compare([now], BASELINE)
    assert [r.metric for r in found] == ([metric] if regressed else [])
    if regressed:
        (regression,) = found
        assert regression.scenario == "edge" and regression.current == pytest.approx(current)
        assert metric in regression.message and "allowed" in regression.message


def test_ttf_absolute_slack_saves_a_small_baseline_from_noise() -> None:
    baseline = make_baseline([result(ttf_s=2.0)])
    assert compare([result(ttf_s=7.2)], baseline) == []  # 2 + 0.2 + 5
    assert [r.metric for r in compare([result(ttf_s=7.3)], baseline)] == ["ttf_s"]


def test_a_result_equal_to_its_baseline_never_regresses() -> None:
    now = result(availability=0.123456789, ttf_s=61.0000004)
    assert compare([now], make_baseline([now])) == []


@pytest.mark.parametrize("side", ["baseline", "current"])
def test_a_metric_missing_on_either_side_is_skipped(side: str) -> None:
    worse = result(ttf_s=1000.0)
    missing = result(ttf_s=None)
    baseline = make_baseline([missing if side == "baseline" else result()])
    now = worse if side == "baseline" else missing
    assert compare([now], baseline) == []


def test_a_scenario_missing_from_the_baseline_is_new_not_a_failure() -> None:
    fresh = result("brand-new", score=1.0, availability=0.1)
    assert compare([fresh], BASELINE) == []
    assert new_scenarios([result(), fresh], BASELINE) == ["brand-new"]
    assert new_scenarios([fresh], None) == ["brand-new"]
    assert verdict([fresh], compare([fresh], BASELINE))


def test_only_metrics_with_a_tolerance_are_compared() -> None:
    now = result(score=10.0, latency_p99_s=999.0)
    found = compare([now], BASELINE, {"latency_p99_s": Tolerance(higher_is_better=False)})
    assert [r.metric for r in found] == ["latency_p99_s"]


def test_default_tolerances_cover_the_score_and_every_gated_metric() -> None:
    assert set(DEFAULT_TOLERANCES) == {"score", *GATED_METRICS}


@given(
    baseline=st.floats(0, 1e6),
    better=st.floats(0, 1e6),
    higher=st.booleans(),
    absolute=st.floats(0, 10),
    relative=st.floats(0, 1),
)
def test_an_improvement_is_never_a_regression(
    baseline: float, better: float, higher: bool, absolute: float, relative: float
) -> None:
    tolerance = Tolerance(higher_is_better=higher, absolute=absolute, relative=relative)
    current = baseline + better if higher else baseline - better
    assert not tolerance.regressed(baseline, current)


def test_unrunnable_flags_baseline_scenarios_that_could_not_run() -> None:
    skipped = {"edge": "no route 'x'", "other": "no route 'y'"}
    (found,) = unrunnable(skipped, BASELINE)
    assert found.scenario == "edge" and "could not run" in found.message
    assert "no route 'x'" in found.message


# --------------------------------------------------------------------------- verdict


SLO_BROKEN = {"name": "availability >= 0.999", "ok": False, "value": 0.5, "threshold": 0.999}
REGRESSION = Regression("edge", "score", 95.0, 90.0, 93.0, "score fell")


@pytest.mark.parametrize(
    ("results", "regressions", "passes"),
    [
        ([result()], [], True),
        ([], [], True),
        ([result(), result("b", slos=[SLO_BROKEN])], [], False),
        ([result(hard=["no recovery after the last fault (metastable)"])], [], False),
        ([result()], [REGRESSION], False),
    ],
    ids=["clean", "nothing-ran", "slo", "hard", "regression"],
)
def test_verdict(
    results: list[dict[str, Any]], regressions: list[Regression], passes: bool
) -> None:
    assert verdict(results, regressions) is passes


# --------------------------------------------------------------------------- baseline


def test_make_baseline_records_score_and_exactly_the_gated_metrics() -> None:
    now = result(availability=0.123456789, latency_p99_s=float("nan"), goodput_rps=3.0)
    baseline = make_baseline([now])
    assert baseline["version"] == 1 and baseline["policy"] == "domain-aware"
    entry = baseline["scenarios"]["edge"]
    assert entry["score"] == 95.0
    assert set(entry["metrics"]) == set(GATED_METRICS)
    assert entry["metrics"]["availability"] == 0.123457
    assert entry["metrics"]["latency_p99_s"] is None
    assert check_baseline(json.loads(json.dumps(baseline))) == baseline


def test_merge_keeps_scenarios_the_new_baseline_did_not_run() -> None:
    old = make_baseline([result("a", score=1.0), result("b", score=2.0)])
    new = make_baseline([result("b", score=3.0)])
    merged = merge_baselines(old, new)
    assert merged["scenarios"]["a"]["score"] == 1.0 and merged["scenarios"]["b"]["score"] == 3.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"version": 2, "scenarios": {}}, "version"),
        ({"version": 1}, "scenarios"),
        ({"version": 1, "policy": 3, "scenarios": {}}, "policy"),
        ({"version": 1, "scenarios": {"a": 1}}, "scenarios.a"),
        ({"version": 1, "scenarios": {"a": {"score": "high"}}}, "scenarios.a.score"),
        ({"version": 1, "scenarios": {"a": {"metrics": []}}}, "scenarios.a.metrics"),
        (
            {"version": 1, "scenarios": {"a": {"metrics": {"ttf_s": "slow"}}}},
            "scenarios.a.metrics.ttf_s",
        ),
    ],
)
def test_check_baseline_says_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(BaselineError, match=message.replace(".", r"\.")):
        check_baseline(data)


# --------------------------------------------------------------------------- Markdown


def test_markdown_has_the_table_with_deltas_and_lists_what_failed() -> None:
    worse = result(
        score=90.0,
        availability=0.998,
        amplification_peak=3.0,
        slos=[SLO_BROKEN, {"name": "recovered == true", "ok": True, "value": True}],
        hard=["1 truncated success(es)"],
    )
    fresh = result("new|one")
    regressions = compare([worse, fresh], BASELINE)
    text = markdown_summary(
        [worse, fresh], BASELINE, regressions, skipped={"budget": "no route 'frontier'"}
    )
    assert text.startswith("## ❌ blastradius gate: failed")
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("|  | scenario"))
    for title in ("score", "availability", "during faults", "amp peak", "TTF", "$/1k req"):
        assert f"| {title} |" in header
    row = next(line for line in lines if "`edge`" in line)
    assert row.startswith("| ❌ |")
    assert "**90.0 (−5.0)**" in row  # score regressed: bold, typographic minus
    assert "99.800 % (−0.100)" in row  # availability 0.999 → 0.998: a delta, within tolerance
    assert "**3.00 (+1.00)**" in row  # amplification peak regressed
    assert "$10.00 (±0)" in row
    assert "| 1m40s (±0) |" in row  # TTF as a duration, like the `run` summary
    assert row.endswith("| 1/2 |")
    new_row = next(line for line in lines if "new\\|one" in line)
    assert new_row.startswith("| ✅ |") and "(new)" in new_row and "(±0)" not in new_row
    assert len(lines[lines.index(header) + 1].split("|")) == len(header.split("|"))
    assert "### Broken SLOs" in text and "availability >= 0.999 — observed 0.5" in text
    assert "### Hard failures" in text and "1 truncated success(es)" in text
    assert "### Regressions" in text and "score fell from 95.0 to 90.0" in text
    assert "### Skipped" in text and "`budget`: no route 'frontier'" in text


def test_markdown_of_a_clean_run_without_baseline() -> None:
    text = markdown_summary([result()], None, [], notes=["A note."])
    assert text.startswith("## ✅ blastradius gate: passed")
    assert "no baseline" in text and "A note." in text
    assert "(±0)" not in text and "###" not in text


# --------------------------------------------------------------------------- JUnit


def test_junit_has_a_testcase_per_scenario_and_a_failure_per_problem() -> None:
    broken = result(
        'slo<&>"bad',
        slos=[SLO_BROKEN, {**SLO_BROKEN, "name": "amplification_peak <= 2", "value": None}],
        hard=["no recovery after the last fault (metastable)"],
        wall_s=2.5,
    )
    worse = result("edge", score=80.0)
    regressions = [*compare([worse], BASELINE), replace(REGRESSION, scenario="gone")]
    xml = junit_xml([worse, broken, result("ok")], regressions, skipped={"skip": "why"}, policy="p")
    suite = ET.fromstring(xml)
    assert suite.tag == "testsuite" and suite.get("name") == "blastradius gate"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["edge", 'slo<&>"bad', "ok", "gone", "skip"]
    assert suite.get("tests") == "5" and suite.get("failures") == "3"
    assert suite.get("skipped") == "1" and suite.get("errors") == "0"
    by_name = {c.get("name"): c for c in cases}
    assert by_name['slo<&>"bad'].get("time") == "2.500"
    assert by_name['slo<&>"bad'].get("classname") == "domain-aware"
    types = [f.get("type") for f in by_name['slo<&>"bad'].findall("failure")]
    assert types == ["slo", "slo", "hard"]
    assert [f.get("type") for f in by_name["edge"].findall("failure")] == ["regression"]
    assert "score fell" in by_name["edge"].findall("failure")[0].get("message", "")
    assert by_name["ok"].find("failure") is None
    assert by_name["skip"].find("skipped") is not None and by_name["skip"].get("classname") == "p"
    failures = suite.findall("testcase/failure")
    assert len(failures) == 2 + 1 + 1 + 1


def test_junit_of_nothing_is_still_well_formed() -> None:
    suite = ET.fromstring(junit_xml([], []))
    assert suite.get("tests") == "0" and suite.get("failures") == "0"
