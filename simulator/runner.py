"""From a scenario file to results.json and a run directory (the `run` and `sweep` jobs).

A run simulates one scenario with one policy for each replication seed, computes
DESIGN.md's metrics from the trace with `reports.metrics`, evaluates the
scenario's SLOs and the score, and writes the run directory. Replications and
sweep cells go through any `concurrent.futures.Executor` (a local process pool by
default; a dask or Ray executor runs the same work on a cluster).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from reports.html import report_html
from reports.metrics import FaultWindow, RunContext, compute_metrics
from reports.plots import timeline_png
from reports.score import evaluate_slos, hard_failures, score
from scenarios.overrides import Override
from scenarios.scenario_files import LoadedScenario, hidden_domains, load_scenario, targets_of
from simulator.driver import SimulationResult, simulate

__all__ = [
    "RunRequest",
    "Trace",
    "aggregate",
    "json_default",
    "result_of",
    "run_context",
    "run_replications",
    "run_title",
    "write_run_dir",
]

_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run: picklable, so replications and sweep cells can go to other processes."""

    scenario: Path
    policy: str | None = None
    overrides: tuple[Override, ...] = ()
    seed: int | None = None
    replications: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> LoadedScenario:
        """The scenario and policy with overrides applied (ConfigError on any mistake)."""
        return load_scenario(self.scenario, policy=self.policy, overrides=self.overrides)


def run_context(loaded: LoadedScenario) -> RunContext:
    """What the metrics need to know beyond the trace: fault windows, targets, primaries."""
    scenario, policy = loaded.scenario, loaded.policy
    hidden = hidden_domains(scenario, policy)
    windows = tuple(
        FaultWindow(
            start=fault.start,
            end=scenario.duration if fault.end is None else min(fault.end, scenario.duration),
            targets=frozenset(targets_of(fault, policy, hidden)),
            open_ended=fault.end is None,
        )
        for fault in scenario.faults
    )
    routes = {route.name: route for route in policy.routes}
    used = {task.route_in(set(routes)) for task in scenario.traffic.tasks}
    primaries = frozenset(routes[name].targets[0] for name in used if name is not None)
    return RunContext(
        duration=scenario.duration,
        faults=windows,
        recovery_window=scenario.recovery_window,
        primaries=primaries,
    )


class Trace(Protocol):
    """What a run directory is written from: the two trace tables (sim or live)."""

    @property
    def attempts(self) -> pd.DataFrame: ...

    @property
    def requests(self) -> pd.DataFrame: ...


def result_of(
    loaded: LoadedScenario,
    trace: Trace,
    seed: int,
    *,
    context: RunContext,
    engine: str,
) -> dict[str, Any]:
    """results.json's core for one run: metrics from the trace, SLOs, score, verdict."""
    metrics = compute_metrics(trace.attempts, trace.requests, context)
    slos = evaluate_slos(loaded.scenario.slos, metrics)
    hard = hard_failures(metrics)
    return {
        "scenario": loaded.scenario.id,
        "policy": loaded.policy.name,
        "engine": engine,
        "seed": seed,
        "metrics": metrics,
        "score": score(metrics),
        "slos": slos,
        "hard_failures": hard,
        "passed": all(slo["ok"] for slo in slos) and not hard,
    }


def _result(loaded: LoadedScenario, sim: SimulationResult, seed: int) -> dict[str, Any]:
    return {
        **result_of(loaded, sim, seed, context=run_context(loaded), engine="sim"),
        "engine_reasons": sim.reasons,
        "providers": sim.providers,
        "wall_s": round(sim.wall_s, 3),
    }


def _replicate(request: RunRequest, seed: int) -> tuple[dict[str, Any], SimulationResult]:
    loaded = request.load()
    sim = simulate(loaded, seed=seed)
    return _result(loaded, sim, seed), sim


def _numeric(values: list[Any]) -> list[float] | None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return None
    return [float(v) for v in values]


def aggregate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Replications → one result: means of numeric metrics with 95 % intervals.

    A boolean metric (recovered) holds only if it held in every replication; the
    run passes only if every replication passed. Intervals use the normal
    approximation, mean ± 1.96 · s / √n.
    """
    first = dict(results[0])
    if len(results) == 1:
        return first
    metrics: dict[str, Any] = {}
    intervals: dict[str, list[float]] = {}
    for key, value in first["metrics"].items():
        values = [result["metrics"].get(key) for result in results]
        numbers = _numeric(values)
        if numbers is not None:
            mean = statistics.fmean(numbers)
            half = _Z95 * statistics.stdev(numbers) / math.sqrt(len(numbers))
            metrics[key] = mean
            intervals[key] = [mean - half, mean + half]
        elif all(isinstance(v, bool) for v in values):
            metrics[key] = all(values)
        else:
            metrics[key] = value
    first["metrics"] = metrics
    first["intervals"] = intervals
    first["replications"] = len(results)
    first["seeds"] = [result["seed"] for result in results]
    first["score"] = statistics.fmean(result["score"] for result in results)
    first["slos"] = [_worst(i, results) for i in range(len(first["slos"]))]
    first["hard_failures"] = sorted({f for result in results for f in result["hard_failures"]})
    first["passed"] = all(result["passed"] for result in results)
    return first


def _worst(index: int, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An SLO over replications holds only if it held in each; show the value that broke it."""
    verdicts = [result["slos"][index] for result in results]
    broken = [slo for slo in verdicts if not slo["ok"]]
    if broken:
        return {**broken[0], "replications_failed": len(broken)}
    return {**verdicts[0], "replications_failed": 0}


def run_replications(
    request: RunRequest,
    *,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, Any], SimulationResult, LoadedScenario]:
    """Run every replication; the first one's trace is kept for the run directory."""
    loaded = request.load()
    scenario = loaded.scenario
    seed = scenario.seed if request.seed is None else request.seed
    count = request.replications or scenario.replications
    first_sim = simulate(loaded, seed=seed, progress=progress)
    results = [_result(loaded, first_sim, seed)]
    seeds = [seed + i for i in range(1, count)]
    if seeds:
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1))
        try:
            futures = [pool.submit(_replicate, request, s) for s in seeds]
            results.extend(future.result()[0] for future in futures)
        finally:
            if own:
                pool.shutdown()
    merged = aggregate(results)
    merged.update(request.meta)
    return merged, first_sim, loaded


def run_title(loaded: LoadedScenario, seed: int) -> str:
    """The caption of a run's plots and page: which scenario, policy and seed, and what it is."""
    scenario = loaded.scenario
    return f"{scenario.id} / {loaded.policy.name}, seed {seed}: {scenario.title}"


def write_run_dir(
    out: Path,
    result: dict[str, Any],
    sim: Trace,
    *,
    context: RunContext,
    title: str,
) -> Path:
    """The run directory `out`; returns `out`.

    results.json, the trace (attempts.csv, requests.csv), `timeline.png` and
    `report.html` (the page a person opens first; it embeds the timeline). The
    plots need `context` (the fault windows to shade, the run's length), which the
    trace alone does not carry; `reports` renders, this function writes.
    """
    out.mkdir(parents=True, exist_ok=True)
    sim.attempts.to_csv(out / "attempts.csv", index=False)
    sim.requests.to_csv(out / "requests.csv", index=False)
    (out / "results.json").write_text(
        json.dumps(result, indent=2, sort_keys=False, default=json_default) + "\n",
        encoding="utf-8",
    )
    timeline = timeline_png(sim.attempts, sim.requests, context, title=title)
    (out / "timeline.png").write_bytes(timeline)
    page = report_html(result, {"timeline": timeline}, title=title)
    (out / "report.html").write_text(page, encoding="utf-8")
    return out


def json_default(value: object) -> object:
    """`json.dumps` default for results: numpy scalars, sets and tuples as plain JSON."""
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
