"""The substitutability matrix: what happened to traffic when a dependency was removed.

For each deployment and failure domain of the policy, the fault(s) that removed it and
what happened to the traffic that depended on it — who served instead, success rate,
TTF, cost and quality delta — or "not tested": a gap is evidence too (DORA Art. 28(8)
exit strategies, RTS 2024/1773 Art. 10 exit-plan testing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.metrics import (
    RunContext,
    logical_requests,
    normalise_attempts,
    normalise_requests,
    time_to_failover,
)
from scenarios.scenario_files import LoadedScenario

VERIFIED_SIMULATED = "simulated"
"""`verified` of a matrix row whose removal was exercised by simulated traffic (live: later)."""
NOT_EXERCISED = "removed, no traffic on its routes"
"""A fault removed the subject, but no request of the run depended on it: not evidence."""
NOT_TESTED = "not tested"
"""No fault of any run removed the subject: a gap the matrix shows rather than hides."""

# --------------------------------------------------------------------------- substitutability


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    """One scenario of the pack: what was declared, what ran, and the trace it left.

    `result` is the run's results.json (aggregated over replications); `attempts` and
    `requests` are the trace of its first replication. `scenario_file` is where the
    scenario sits inside the pack and `slo_texts` its SLOs exactly as written there (the
    parsed form normalises numbers: `<= 2.0` becomes `<= 2`).
    """

    loaded: LoadedScenario
    context: RunContext
    result: Mapping[str, Any]
    attempts: pd.DataFrame
    requests: pd.DataFrame
    scenario_file: str = ""
    scenario_sha256: str | None = None
    slo_texts: tuple[str, ...] = ()
    run_dir: str = ""


def subjects_of(loaded: LoadedScenario) -> list[tuple[str, str, tuple[str, ...]]]:
    """`(subject, kind, deployment ids)`: every deployment, then every failure domain.

    A domain's deployments are those of the policy carrying the label; a fault
    *removes* a subject when it hits all of them.
    """
    policy = loaded.policy
    out: list[tuple[str, str, tuple[str, ...]]] = [
        (d.id, "deployment", (d.id,)) for d in policy.deployments
    ]
    domains = sorted({label for d in policy.deployments for label in d.domains})
    for label in domains:
        carriers = tuple(d.id for d in policy.deployments if label in d.domains)
        out.append((label, "domain", carriers))
    return out


def _chain_routes(loaded: LoadedScenario, deployments: Iterable[str]) -> list[str]:
    wanted = set(deployments)
    return [
        route.name
        for route in loaded.policy.routes
        if wanted & (set(route.targets) | set(route.fallbacks))
    ]


def _quality(loaded: LoadedScenario, deployment: str) -> float | None:
    try:
        score = loaded.policy.deployment(deployment).quality.get("default")
    except KeyError:
        return None
    return None if score is None else float(score)


def _mean_quality(loaded: LoadedScenario, weights: Mapping[str, int]) -> float | None:
    """Mean `quality.default`, weighted; None if any deployment has no score (or no weight)."""
    total = sum(weights.values())
    if total == 0:
        return None
    acc = 0.0
    for deployment, weight in weights.items():
        quality = _quality(loaded, deployment)
        if quality is None:
            return None
        acc += quality * weight
    return acc / total


def _per_request_cost(ids: pd.Index, cost_by_request: pd.Series) -> float | None:
    if len(ids) == 0:
        return None
    return float(cost_by_request.reindex(ids, fill_value=0.0).sum()) / len(ids)


def fault_id(run: ScenarioRun, index: int) -> str:
    fault = run.loaded.scenario.faults[index]
    return fault.id or f"faults[{index}]"


def removal_rows(run: ScenarioRun) -> list[dict[str, Any]]:
    """Matrix rows for every subject each fault of this run removed.

    For a fault window `[start, end)` that hits every deployment of a subject, over the
    traffic of the routes whose chain (targets and fallbacks) contains the subject:

    * `served_by` — `ok` attempts started inside the window, per deployment (the fault's
      own targets appear when the fault was partial); `alternates` — those outside the
      fault's targets.
    * `success_rate` — logical requests arriving in the window that ended `ok`.
    * `ttf_s` — onset → first `ok` attempt on a deployment the fault did not hit.
    * cost per request of the requests arriving in the window vs those arriving before
      the run's first fault (`cost_delta_usd`, `cost_delta_pct`).
    * `quality_delta` — mean `quality.default` of the alternates (weighted by the
      answers they gave) minus the removed deployments' mean; None when the policy has
      no quality score for one of them.
    """
    att = normalise_attempts(run.attempts)
    req = normalise_requests(run.requests)
    logical = logical_requests(req)
    first_rows = req.sort_values(["request_id", "client_attempt"], kind="stable")
    route_of = first_rows.drop_duplicates("request_id").set_index("request_id")["route"]
    logical = logical.assign(route=route_of.reindex(logical.index).fillna(""))
    cost_by_request = att.groupby("request_id")["cost_usd"].sum()
    windows = run.context.faults
    first_onset = min((w.start for w in windows), default=None)
    rows: list[dict[str, Any]] = []
    for index, window in enumerate(windows):
        fault = run.loaded.scenario.faults[index]
        for subject, kind, deployments in subjects_of(run.loaded):
            if not deployments or not set(deployments) <= window.targets:
                continue
            routes = _chain_routes(run.loaded, deployments)
            on_routes = logical["route"].isin(routes)
            arriving = logical[
                on_routes
                & (logical["arrival_s"] >= window.start)
                & (logical["arrival_s"] < window.end)
            ]
            route_att = att[att["route"].isin(routes)]
            ok = route_att[
                (route_att["outcome"] == "ok")
                & (route_att["start_s"] >= window.start)
                & (route_att["start_s"] < window.end)
            ]
            counts = ok["deployment"].value_counts()
            served = {
                str(name): int(n)
                for name, n in sorted(counts.items(), key=lambda item: (-int(item[1]), item[0]))
            }
            alternates = {name: n for name, n in served.items() if name not in window.targets}
            before = logical[on_routes & (logical["arrival_s"] < (first_onset or 0.0))]
            during_cost = _per_request_cost(arriving.index, cost_by_request)
            pre_cost = _per_request_cost(before.index, cost_by_request)
            delta = None if during_cost is None or pre_cost is None else during_cost - pre_cost
            removed_quality = _mean_quality(run.loaded, dict.fromkeys(deployments, 1))
            serving_quality = _mean_quality(run.loaded, alternates)
            quality_delta = (
                None
                if removed_quality is None or serving_quality is None
                else serving_quality - removed_quality
            )
            n = len(arriving)
            rows.append(
                {
                    "subject": subject,
                    "kind": kind,
                    "deployments": list(deployments),
                    "scenario": run.loaded.scenario.id,
                    "fault": fault_id(run, index),
                    "fault_kind": fault.kind,
                    "window_s": [float(window.start), float(window.end)],
                    "routes": routes,
                    "requests": n,
                    "success_rate": None if n == 0 else float((arriving["final"] == "ok").mean()),
                    "served_by": served,
                    "alternates": sorted(alternates, key=lambda name: -alternates[name]),
                    "ttf_s": time_to_failover(route_att, window) if routes else None,
                    "cost_per_request_usd": during_cost,
                    "pre_fault_cost_per_request_usd": pre_cost,
                    "cost_delta_usd": delta,
                    "cost_delta_pct": (
                        None if delta is None or not pre_cost else 100.0 * delta / pre_cost
                    ),
                    "quality_removed": removed_quality,
                    "quality_serving": serving_quality,
                    "quality_delta": quality_delta,
                    "verified": VERIFIED_SIMULATED if n else NOT_EXERCISED,
                }
            )
    return rows


def complete_matrix(
    subjects: Sequence[tuple[str, str, tuple[str, ...]]], rows: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The matrix in subject order; a subject no fault removed gets one `not tested` row.

    Untested rows stay in the matrix on purpose: for DORA Art. 28(8) an alternative that
    was never exercised is a finding, not something to leave out.
    """
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_subject.setdefault(str(row["subject"]), []).append(dict(row))
    out: list[dict[str, Any]] = []
    for subject, kind, deployments in subjects:
        found = by_subject.get(subject)
        if found:
            out.extend(found)
            continue
        out.append(
            {
                "subject": subject,
                "kind": kind,
                "deployments": list(deployments),
                "scenario": None,
                "fault": None,
                "fault_kind": None,
                "window_s": None,
                "routes": [],
                "requests": 0,
                "success_rate": None,
                "served_by": {},
                "alternates": [],
                "ttf_s": None,
                "cost_per_request_usd": None,
                "pre_fault_cost_per_request_usd": None,
                "cost_delta_usd": None,
                "cost_delta_pct": None,
                "quality_removed": None,
                "quality_serving": None,
                "quality_delta": None,
                "verified": NOT_TESTED,
            }
        )
    return out


def substitutability(runs: Sequence[ScenarioRun]) -> list[dict[str, Any]]:
    """The whole matrix over several runs (the subjects are the first run's policy's)."""
    if not runs:
        return []
    rows = [row for run in runs for row in removal_rows(run)]
    return complete_matrix(subjects_of(runs[0].loaded), rows)
