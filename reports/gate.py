"""The CI gate's judgement: baseline files, regressions, the verdict, Markdown and JUnit XML.

`blastradius gate` (simulator/gate.py) runs scenarios and hands their results (the
results.json dicts of `simulator.runner.run_replications`) to these functions. They
are pure — no file, clock or environment — so a CI verdict can be tested without a
simulator, and the same baseline arithmetic serves any driver.

A run fails the gate when any scenario breaks an SLO or a hard check (DESIGN.md), or
when a gated metric is worse than the committed **baseline** by more than its
tolerance. The baseline is a golden file: SLOs say "good enough", the baseline says
"no worse than last time", so a policy change that quietly loses a nine still fails
while every SLO holds.

Baseline format (JSON, version 1)::

    {"version": 1, "policy": "domain-aware",
     "scenarios": {"cloudflare-2025-12-05": {"score": 95.4,
                                             "metrics": {"availability": 1.0, ...}}}}

`metrics` holds exactly `GATED_METRICS`; a metric that was undefined (no fault, no
ok request) is `null`, and a comparison with `null` on either side is skipped.

Tolerances (`DEFAULT_TOLERANCES`; worse means lower for score and availabilities,
higher for the rest). A metric regresses when it is worse than the baseline by more
than `absolute + relative × |baseline|`:

    =============================  ==========  ====================
    metric                         better      allowed slack
    =============================  ==========  ====================
    score                          higher      2 points
    availability                   higher      0.001 (0.1 points)
    availability_during_faults     higher      0.001 (0.1 points)
    amplification_peak             lower       10 %
    ttf_s                          lower       10 % + 5 s
    cost_per_1k_requests_usd       lower       5 %
    latency_p99_s                  lower       10 %
    =============================  ==========  ====================

A scenario absent from the baseline is *new*: shown, never a failure (the next
`--update-baseline` records it).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scenarios.durations import format_duration

__all__ = [
    "BASELINE_VERSION",
    "DEFAULT_TOLERANCES",
    "GATED_METRICS",
    "BaselineError",
    "Regression",
    "Tolerance",
    "check_baseline",
    "compare",
    "junit_xml",
    "make_baseline",
    "markdown_summary",
    "merge_baselines",
    "new_scenarios",
    "unrunnable",
    "verdict",
]

BASELINE_VERSION = 1
GATED_METRICS: tuple[str, ...] = (
    "availability",
    "availability_during_faults",
    "amplification_peak",
    "ttf_s",
    "cost_per_1k_requests_usd",
    "latency_p99_s",
)
"""The metrics a baseline records and the gate compares (plus the score)."""

_DIGITS = 6
"""Baseline values are rounded so a committed baseline diffs readably in a PR."""


class BaselineError(ValueError):
    """A baseline file's content is not a version-1 baseline; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How much worse than the baseline a metric may get before the gate fails.

    Slack is `absolute + relative × |baseline|` in the metric's own unit, so a
    relative tolerance scales with the metric and an absolute one keeps tiny
    baselines (a 2 s failover) from failing on noise.
    """

    higher_is_better: bool
    absolute: float = 0.0
    relative: float = 0.0

    def limit(self, baseline: float) -> float:
        """The worst value still accepted against `baseline`."""
        slack = self.absolute + self.relative * abs(baseline)
        return baseline - slack if self.higher_is_better else baseline + slack

    def regressed(self, baseline: float, current: float) -> bool:
        """Whether `current` is worse than `baseline` by more than the slack.

        A hair of float noise (1e-9 relative) is forgiven so a value exactly at the
        limit, or a baseline compared with its own rounded copy, never fails.
        """
        limit = self.limit(baseline)
        noise = 1e-9 * max(1.0, abs(limit))
        if self.higher_is_better:
            return current < limit - noise
        return current > limit + noise


DEFAULT_TOLERANCES: Mapping[str, Tolerance] = {
    "score": Tolerance(higher_is_better=True, absolute=2.0),
    "availability": Tolerance(higher_is_better=True, absolute=0.001),
    "availability_during_faults": Tolerance(higher_is_better=True, absolute=0.001),
    "amplification_peak": Tolerance(higher_is_better=False, relative=0.10),
    "ttf_s": Tolerance(higher_is_better=False, relative=0.10, absolute=5.0),
    "cost_per_1k_requests_usd": Tolerance(higher_is_better=False, relative=0.05),
    "latency_p99_s": Tolerance(higher_is_better=False, relative=0.10),
}


@dataclass(frozen=True, slots=True)
class Regression:
    """One way a scenario got worse than its baseline, beyond tolerance.

    `metric` is a gated metric or `score`; for a scenario that is in the baseline
    but could not run at all (`unrunnable`), `metric` is `scenario` and the numbers
    are None.
    """

    scenario: str
    metric: str
    baseline: float | None
    current: float | None
    limit: float | None
    message: str


# --------------------------------------------------------------------------- values


def _number(value: Any) -> float | None:
    """A metric as a float; None, NaN, booleans and non-numbers are "no value"."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _current(result: Mapping[str, Any], metric: str) -> float | None:
    if metric == "score":
        return _number(result.get("score"))
    return _number(result.get("metrics", {}).get(metric))


def _recorded(entry: Mapping[str, Any], metric: str) -> float | None:
    if metric == "score":
        return _number(entry.get("score"))
    return _number(entry.get("metrics", {}).get(metric))


def _minus(text: str) -> str:
    """Typographic minus, so deltas line up and read as numbers in a rendered table."""
    return text.replace("-", "−")


@dataclass(frozen=True, slots=True)
class _Column:
    metric: str
    title: str
    value: Callable[[float], str]
    delta: Callable[[float], str]


def _pct(v: float) -> str:
    return f"{100 * v:.3f} %"


def _pct_delta(d: float) -> str:
    return f"{100 * d:+.3f}"


def _duration(v: float) -> str:
    """Like the `run` summary table: `6.2s`, `33m39.7s`, `450ms`."""
    return format_duration(round(v, 1)) if v >= 1 else format_duration(round(v, 3))


def _one_decimal(d: float) -> str:
    return f"{d:+.1f}"


def _secs_delta(d: float) -> str:
    return f"{d:+.1f}s"


def _two(v: float) -> str:
    return f"{v:.2f}"


def _two_delta(d: float) -> str:
    return f"{d:+.2f}"


def _usd(v: float) -> str:
    return f"${v:.2f}"


def _p99(v: float) -> str:
    return f"{v:.2f} s"


COLUMNS: tuple[_Column, ...] = (
    _Column("score", "score", lambda v: f"{v:.1f}", _one_decimal),
    _Column("availability", "availability", _pct, _pct_delta),
    _Column("availability_during_faults", "during faults", _pct, _pct_delta),
    _Column("amplification_peak", "amp peak", _two, _two_delta),
    _Column("ttf_s", "TTF", _duration, _secs_delta),
    _Column("cost_per_1k_requests_usd", "$/1k req", _usd, _two_delta),
    _Column("latency_p99_s", "p99 latency", _p99, _two_delta),
)
_BY_METRIC = {column.metric: column for column in COLUMNS}


def _show(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return _BY_METRIC[metric].value(value) if metric in _BY_METRIC else f"{value:.6g}"


def _delta(metric: str, current: float, baseline: float) -> str:
    """`(+0.02)` in the column's precision; `(±0)` when the change does not show."""
    text = _BY_METRIC[metric].delta(current - baseline)
    if float(text.rstrip("s").replace("+", "")) == 0.0:
        return "(±0)"
    return f"({_minus(text)})"


# --------------------------------------------------------------------------- baseline


def make_baseline(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The baseline recording `results`: score and gated metrics per scenario id.

    Values are rounded to 6 decimals and undefined ones kept as None (JSON null), so
    the file is stable across runs of the same policy and diffs readably.
    """

    def rounded(value: Any) -> float | None:
        number = _number(value)
        return None if number is None else round(number, _DIGITS)

    scenarios = {
        str(result["scenario"]): {
            "score": rounded(result.get("score")),
            "metrics": {m: rounded(result.get("metrics", {}).get(m)) for m in GATED_METRICS},
        }
        for result in results
    }
    policy = str(results[0].get("policy", "")) if results else ""
    return {"version": BASELINE_VERSION, "policy": policy, "scenarios": scenarios}


def merge_baselines(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new`, keeping `old`'s entries for scenarios `new` did not run.

    Updating the baseline for a few named scenarios must not drop the others.
    """
    scenarios = {**old.get("scenarios", {}), **new.get("scenarios", {})}
    return {**new, "scenarios": dict(sorted(scenarios.items()))}


def check_baseline(data: Any) -> dict[str, Any]:
    """`data` (parsed JSON) if it is a version-1 baseline; BaselineError saying why not.

    Checked before any scenario runs, so a hand-edited or truncated baseline stops
    the gate with a usage error instead of a misleading pass.
    """
    if not isinstance(data, dict):
        raise BaselineError("a baseline is a JSON object with version, policy and scenarios")
    if data.get("version") != BASELINE_VERSION:
        raise BaselineError(
            f"version is {data.get('version')!r}; this blastradius reads version "
            f"{BASELINE_VERSION} (re-create it with --update-baseline)"
        )
    if not isinstance(data.get("policy", ""), str):
        raise BaselineError("policy must be a string")
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, dict):
        raise BaselineError("scenarios must be an object keyed by scenario id")
    for scenario, entry in scenarios.items():
        where = f"scenarios.{scenario}"
        if not isinstance(entry, dict):
            raise BaselineError(f"{where} must be an object with score and metrics")
        score = entry.get("score")
        if score is not None and _number(score) is None:
            raise BaselineError(f"{where}.score must be a number or null, not {score!r}")
        metrics = entry.get("metrics", {})
        if not isinstance(metrics, dict):
            raise BaselineError(f"{where}.metrics must be an object")
        for metric, value in metrics.items():
            if value is not None and _number(value) is None:
                raise BaselineError(
                    f"{where}.metrics.{metric} must be a number or null, not {value!r}"
                )
    return data


# --------------------------------------------------------------------------- comparison


def compare(
    results: Sequence[Mapping[str, Any]],
    baseline: Mapping[str, Any],
    tolerances: Mapping[str, Tolerance] = DEFAULT_TOLERANCES,
) -> list[Regression]:
    """Every metric (and score) of `results` worse than `baseline` beyond its tolerance.

    Metrics without a tolerance, values None on either side and scenarios the
    baseline does not have (new ones) are skipped. Order: results, then
    `tolerances`' order.
    """
    recorded = baseline.get("scenarios", {})
    found: list[Regression] = []
    for result in results:
        scenario = str(result["scenario"])
        entry = recorded.get(scenario)
        if entry is None:
            continue
        for metric, tolerance in tolerances.items():
            before, now = _recorded(entry, metric), _current(result, metric)
            if before is None or now is None or not tolerance.regressed(before, now):
                continue
            limit = tolerance.limit(before)
            verb, bound = ("fell", "down to") if tolerance.higher_is_better else ("rose", "up to")
            found.append(
                Regression(
                    scenario=scenario,
                    metric=metric,
                    baseline=before,
                    current=now,
                    limit=limit,
                    message=(
                        f"{metric} {verb} from {_show(metric, before)} to {_show(metric, now)} "
                        f"(allowed {bound} {_show(metric, limit)})"
                    ),
                )
            )
    return found


def unrunnable(skipped: Mapping[str, str], baseline: Mapping[str, Any]) -> list[Regression]:
    """A regression for each baseline scenario that could not run (id → why).

    A policy change that drops a route a scenario needs makes that scenario
    inapplicable; were it merely skipped, the gate would pass on less evidence.
    """
    recorded = baseline.get("scenarios", {})
    return [
        Regression(
            scenario=scenario,
            metric="scenario",
            baseline=None,
            current=None,
            limit=None,
            message=f"in the baseline but could not run with this policy: {why}",
        )
        for scenario, why in skipped.items()
        if scenario in recorded
    ]


def new_scenarios(
    results: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None
) -> list[str]:
    """Ids of results the baseline has no entry for (all of them without a baseline)."""
    recorded = {} if baseline is None else baseline.get("scenarios", {})
    return [str(r["scenario"]) for r in results if str(r["scenario"]) not in recorded]


def _failed_run(result: Mapping[str, Any]) -> bool:
    return (
        not result.get("passed", False)
        or bool(result.get("hard_failures"))
        or any(not slo.get("ok", False) for slo in result.get("slos", []))
    )


def verdict(results: Sequence[Mapping[str, Any]], regressions: Sequence[Regression]) -> bool:
    """True when the gate passes: every run met its SLOs and hard checks, nothing regressed."""
    return not regressions and not any(_failed_run(result) for result in results)


# --------------------------------------------------------------------------- Markdown


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _observed(value: Any) -> str:
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _number(value)
    return str(value) if number is None else f"{number:.6g}"


def _broken_slos(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [slo for slo in result.get("slos", []) if not slo.get("ok", False)]


def markdown_summary(
    results: Sequence[Mapping[str, Any]],
    baseline: Mapping[str, Any] | None,
    regressions: Sequence[Regression],
    *,
    skipped: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The gate's report for people: a GitHub job summary or PR comment.

    A heading with the verdict; `notes` (one line each); a scenario × metric table
    with deltas against the baseline (regressed cells in bold, a ✅/❌ column,
    "new" for scenarios without a baseline entry); then the broken SLOs, hard
    failures, regressions and skipped scenarios, each as a list.
    """
    skipped = skipped or {}
    passed = verdict(results, regressions)
    policies = sorted({str(r.get("policy", "")) for r in results})
    lines = [f"## {'✅' if passed else '❌'} blastradius gate: {'passed' if passed else 'failed'}"]
    lines.append("")
    about = f"Policy {', '.join(f'`{p}`' for p in policies) or '—'}, {len(results)} scenario(s)"
    if baseline is None:
        about += "; no baseline, so only SLOs and hard checks are gated."
    else:
        count = len(baseline.get("scenarios", {}))
        about += (
            f"; deltas against the baseline of policy `{baseline.get('policy', '')}` "
            f"({count} scenario(s)); **bold** marks a regression beyond tolerance."
        )
    lines.append(about)
    lines.extend(f"\n{note}" for note in notes)
    lines.append("")
    recorded = {} if baseline is None else baseline.get("scenarios", {})
    regressed = {(r.scenario, r.metric) for r in regressions}
    header = ["", "scenario", *(c.title for c in COLUMNS), "SLOs"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
    for result in results:
        scenario = str(result["scenario"])
        entry = recorded.get(scenario)
        bad = _failed_run(result) or any(r.scenario == scenario for r in regressions)
        status = "❌" if bad else "✅"
        name = f"`{scenario}`" + (" (new)" if baseline is not None and entry is None else "")
        cells = [status, name]
        for column in COLUMNS:
            now = _current(result, column.metric)
            text = _show(column.metric, now)
            before = None if entry is None else _recorded(entry, column.metric)
            if now is not None and before is not None:
                text += " " + _delta(column.metric, now, before)
            if (scenario, column.metric) in regressed:
                text = f"**{text}**"
            cells.append(text)
        slos = result.get("slos", [])
        cells.append(f"{sum(bool(s.get('ok')) for s in slos)}/{len(slos)}")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    sections: list[tuple[str, list[str]]] = [
        (
            "Broken SLOs",
            [
                f"`{r['scenario']}`: {slo['name']} — observed {_observed(slo.get('value'))}"
                for r in results
                for slo in _broken_slos(r)
            ],
        ),
        (
            "Hard failures",
            [f"`{r['scenario']}`: {why}" for r in results for why in r.get("hard_failures", [])],
        ),
        ("Regressions", [f"`{r.scenario}`: {r.message}" for r in regressions]),
        ("Skipped", [f"`{scenario}`: {why}" for scenario, why in skipped.items()]),
    ]
    for title, items in sections:
        if items:
            lines.extend(["", f"### {title}", ""])
            lines.extend(f"- {item}" for item in items)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- JUnit XML


def _testcase(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", {"classname": classname, "name": name, "time": f"{seconds:.3f}"}
    )


def _fail(case: ET.Element, kind: str, message: str, text: str = "") -> None:
    failure = ET.SubElement(case, "failure", {"message": message, "type": kind})
    failure.text = text or message


def junit_xml(
    results: Sequence[Mapping[str, Any]],
    regressions: Sequence[Regression],
    *,
    skipped: Mapping[str, str] | None = None,
    policy: str = "",
) -> str:
    """The gate as JUnit XML, which CI systems display natively.

    One `<testsuite name="blastradius gate">`; per scenario a `<testcase
    classname=POLICY name=SCENARIO time=WALL_S>` with a `<failure>` per broken SLO
    (type `slo`), per hard failure (`hard`) and per regression (`regression`).
    A regression of a scenario that did not run, and each skipped scenario, get a
    testcase too (the latter with `<skipped>`); `policy` names their class. The
    suite's `failures` counts failing testcases (the JUnit convention), `tests`
    every testcase. Built with ElementTree, so any message is escaped correctly.
    """
    skipped = skipped or {}
    suite = ET.Element("testsuite", {"name": "blastradius gate"})
    failing = 0
    total_s = 0.0
    ran = set()
    for result in results:
        scenario = str(result["scenario"])
        ran.add(scenario)
        seconds = _number(result.get("wall_s")) or 0.0
        total_s += seconds
        case = _testcase(suite, str(result.get("policy", policy)), scenario, seconds)
        for slo in _broken_slos(result):
            observed = _observed(slo.get("value"))
            _fail(
                case,
                "slo",
                f"SLO {slo['name']} broken: observed {observed}",
                f"{slo['name']}: observed {observed}, threshold {_observed(slo.get('threshold'))}",
            )
        for why in result.get("hard_failures", []):
            _fail(case, "hard", f"hard failure: {why}")
        for regression in regressions:
            if regression.scenario == scenario:
                _fail(case, "regression", regression.message)
        if len(case):
            failing += 1
    for scenario in dict.fromkeys(r.scenario for r in regressions if r.scenario not in ran):
        case = _testcase(suite, policy, scenario, 0.0)
        for regression in regressions:
            if regression.scenario == scenario:
                _fail(case, "regression", regression.message)
        ran.add(scenario)
        failing += 1
    skipped_count = 0
    for scenario, why in skipped.items():
        if scenario in ran:
            continue
        case = _testcase(suite, policy, scenario, 0.0)
        ET.SubElement(case, "skipped", {"message": why})
        skipped_count += 1
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failing))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped_count))
    suite.set("time", f"{total_s:.3f}")
    ET.indent(suite)
    body = ET.tostring(suite, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
