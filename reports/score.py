"""The resilience score (0–100) and the SLO table, from a metrics mapping (`compute_metrics`).

Score formula
-------------

Hard failures score 0: a compliance violation (`compliance_violations` > 0), a
truncated success (`truncated_successes` > 0), or no recovery (`recovered` is
False — the run is metastable). `recovered` None (no fault closed) is not a
failure. Otherwise::

    score = 100 × ( 0.6 · N(a_f) + 0.2 · N(a) + 0.1 · 1 / max(1, peak) + 0.1 · T(ttf) )

    a_f   = availability_during_faults (availability when it is None)
    a     = availability (a missing availability counts as 0)
    peak  = amplification_peak (1 when None or 0)
    N(x)  = min(1, −log10(max(1 − x, 1e-4)) / 4)      nines of x, four nines = full marks
    T(t)  = 1 if ttf_s is None else 1 / (1 + t / 60)  a minute to fail over halves the term

Each term is non-decreasing as its metric improves (availability up, peak
amplification down, time to failover down), so improving any one metric never
lowers the score. The result is rounded to 6 decimals (rounding keeps that).

Worked example: a_f = 0.999, a = 0.9995, peak = 2.0, ttf = 30 s, no hard failure.
N(0.999) = 3/4 = 0.75; N(0.9995) = 3.30103/4 = 0.8252575; 1/max(1, 2) = 0.5;
T(30) = 1/1.5 = 0.6666667. Score = 100 × (0.6·0.75 + 0.2·0.8252575 + 0.1·0.5 + 0.1·0.6666667)
= 100 × (0.45 + 0.1650515 + 0.05 + 0.0666667) = **73.171817**.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.schema import SLO

__all__ = ["evaluate_slos", "hard_failures", "nines", "score", "time_to_failover_term"]

WEIGHT_AVAILABILITY_DURING_FAULTS = 0.6
WEIGHT_AVAILABILITY = 0.2
WEIGHT_AMPLIFICATION = 0.1
WEIGHT_FAILOVER = 0.1
FULL_MARKS_NINES = 4
"""Availability with this many nines (99.99 %) earns a term's full marks."""


def _number(value: Any) -> float | None:
    """A metric as a float; None, NaN and non-numbers are missing."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def nines(x: float | None) -> float:
    """N(x) = min(1, −log10(max(1 − x, 1e-4)) / 4): availability's nines, scaled to [0, 1].

    0.9 → 0.25, 0.99 → 0.5, 0.999 → 0.75, ≥ 0.9999 → 1; 0 (or missing) → 0.
    """
    if x is None:
        return 0.0
    x = min(1.0, max(0.0, x))
    floor = 10.0**-FULL_MARKS_NINES
    return min(1.0, -math.log10(max(1.0 - x, floor)) / FULL_MARKS_NINES)


def time_to_failover_term(ttf_s: float | None) -> float:
    """T(ttf) = 1 if no failover was needed (None), else 1 / (1 + ttf / 60)."""
    if ttf_s is None:
        return 1.0
    return 1.0 / (1.0 + max(0.0, ttf_s) / 60.0)


def hard_failures(metrics: Mapping[str, Any]) -> list[str]:
    """Why the run fails hard (score 0, gate fails), in words; empty when it does not."""
    found: list[str] = []
    violations = _number(metrics.get("compliance_violations")) or 0.0
    if violations > 0:
        found.append(f"{violations:g} compliance violation(s)")
    truncated = _number(metrics.get("truncated_successes")) or 0.0
    if truncated > 0:
        found.append(f"{truncated:g} truncated success(es)")
    if metrics.get("recovered") is False:
        found.append("no recovery after the last fault (metastable)")
    return found


def score(metrics: Mapping[str, Any]) -> float:
    """The resilience score, 0–100 (formula and worked example in the module docstring).

    0 on a hard failure (compliance violation, truncated success, `recovered` False);
    otherwise 100 × (0.6·N(a_f) + 0.2·N(a) + 0.1/max(1, peak) + 0.1·T(ttf)).
    """
    if hard_failures(metrics):
        return 0.0
    a = _number(metrics.get("availability"))
    a_f = _number(metrics.get("availability_during_faults"))
    if a_f is None:
        a_f = a
    peak = _number(metrics.get("amplification_peak")) or 1.0
    ttf = _number(metrics.get("ttf_s"))
    total = (
        WEIGHT_AVAILABILITY_DURING_FAULTS * nines(a_f)
        + WEIGHT_AVAILABILITY * nines(a)
        + WEIGHT_AMPLIFICATION / max(1.0, peak)
        + WEIGHT_FAILOVER * time_to_failover_term(ttf)
    )
    return round(100.0 * total, 6)


def evaluate_slos(slos: Sequence[SLO], metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each SLO against the metrics: `[{"name", "ok", "value", "threshold"}]`, in order.

    `value` is the metric's value (`score` is computed when the mapping lacks it);
    a missing value (None or NaN) fails its SLO.
    """
    table: list[dict[str, Any]] = []
    for slo in slos:
        if slo.metric == "score" and "score" not in metrics:
            value: Any = score(metrics)
        else:
            value = metrics.get(slo.metric)
        if isinstance(value, float) and math.isnan(value):
            value = None
        table.append(
            {"name": slo.name, "ok": slo.holds(value), "value": value, "threshold": slo.value}
        )
    return table
