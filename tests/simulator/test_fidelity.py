"""The simulator against theory, not against its own output (issue #4 "Fidelity").

- M/M/c: Poisson arrivals, exponential service, c slots → Erlang C's mean wait
  and the utilisation λ/(cμ).
- Independent per-attempt failures with probability p and r retries →
  attempts per request (1 − p^(r+1)) / (1 − p).
- Independent providers with availabilities A_i behind an optional shared edge
  → composite availability 1 − Π(1 − A_i), times A_edge with the edge.
"""

from __future__ import annotations

import math
import statistics
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from scenarios.scenario_files import LoadedScenario, load_scenario
from simulator.driver import simulate
from tests.simulator.fidelity import (
    ONE_PROVIDER_POLICY,
    THREE_PROVIDER_POLICY,
    exponential_quantiles,
    scenario,
)


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits, for offered load a = λ/μ (Erlang C)."""
    top = offered**servers / math.factorial(servers) * servers / (servers - offered)
    bottom = sum(offered**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom


def write(tmp_path: Path, policy_text: str, scenario_text_for: object) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")
    path = tmp_path / "scenario.yaml"
    assert callable(scenario_text_for)
    path.write_text(scenario_text_for(policy), encoding="utf-8")
    return path


def _provider_stats(loaded: LoadedScenario, seed: int) -> dict[str, float]:
    return simulate(loaded, seed=seed).providers["solo@p"]


def test_mmc_queue_matches_erlang_c(tmp_path: Path) -> None:
    """Ten replications of 40,000 s (1.2 M requests): a queue's mean wait is strongly
    autocorrelated, so one run of this length still wanders ±5 % around the theory."""
    servers, rate, mean_service = 4, 3.0, 1.0
    world = f"""\
  defaults:
    capacity: {servers}
    queue: 100000
    ttft: {{quantiles: {exponential_quantiles(mean_service)}}}
    per_token: {{median: 1ms, p99: 1ms}}
"""
    path = write(
        tmp_path,
        ONE_PROVIDER_POLICY.replace("ATTEMPTS", "1"),
        lambda policy: scenario(policy, duration=40000, rate=rate, world=world),
    )
    loaded = load_scenario(path)
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(partial(_provider_stats, loaded), range(1, 11)))
    stats = {key: sum(run[key] for run in runs) for key in ("busy_s", "wait_s", "served", "queued")}
    stats["utilisation"] = statistics.fmean(run["utilisation"] for run in runs)
    service = stats["busy_s"] / stats["served"]
    wait = stats["wait_s"] / stats["served"]
    waited = stats["queued"] / stats["served"]
    offered = rate * mean_service
    expected_wait = erlang_c(servers, offered) / (servers / mean_service - rate)
    assert math.isclose(service, mean_service, rel_tol=0.03)
    assert math.isclose(waited, erlang_c(servers, offered), rel_tol=0.03)
    assert math.isclose(wait, expected_wait, rel_tol=0.03), (wait, expected_wait)
    assert math.isclose(stats["utilisation"], offered / servers, rel_tol=0.03)


def test_retries_of_independent_failures_match_the_geometric_sum(tmp_path: Path) -> None:
    p, retries = 0.3, 2
    world = """\
  defaults:
    capacity: 100000
    ttft: {median: 100ms, p99: 200ms}
    error_rate: 0.3
"""
    path = write(
        tmp_path,
        ONE_PROVIDER_POLICY.replace("ATTEMPTS", str(retries + 1)),
        lambda policy: scenario(policy, duration=20000, rate=3.0, world=world),
    )
    result = simulate(load_scenario(path), seed=5)
    measured = len(result.attempts) / len(result.requests)
    expected = (1 - p ** (retries + 1)) / (1 - p)
    assert math.isclose(measured, expected, rel_tol=0.03), (measured, expected)
    failed = (result.requests["final"] != "ok").mean()
    assert math.isclose(failed, p ** (retries + 1), rel_tol=0.15)


def composite(availabilities: list[float], edge: float | None) -> float:
    """1 − Π(1 − A_i), times A_edge when a shared edge sits in front of all of them."""
    independent = 1 - math.prod(1 - a for a in availabilities)
    return independent * (1.0 if edge is None else edge)


def run_availability(tmp_path: Path, edge: float | None, seeds: range) -> list[float]:
    availabilities = [0.8, 0.7, 0.6]
    faults = "\n" + "".join(
        f"""\
  - kind: outage
    target: {{deployments: [p{i}@v{i}]}}
    shape: {{kind: random, availability: {a}, median_outage: 1h, p90_outage: 3h}}
"""
        for i, a in enumerate(availabilities)
    )
    world = "  defaults: {capacity: 1000}"
    if edge is not None:
        faults += f"""\
  - kind: outage
    target: {{domains: ["edge:shared"]}}
    shape: {{kind: random, availability: {edge}, median_outage: 1h, p90_outage: 3h, shared: true}}
"""
        world = """\
  defaults: {capacity: 1000, hidden_domains: ["edge:shared"]}"""
    results = []
    for seed in seeds:
        path = write(
            tmp_path,
            THREE_PROVIDER_POLICY,
            lambda policy, s=seed: scenario(
                policy, duration=6 * 86400, rate=0.02, world=world, faults=faults, seed=s
            ),
        )
        sim = simulate(load_scenario(path), seed=seed)
        results.append(float((sim.requests["final"] == "ok").mean()))
    return results


def within_interval(samples: list[float], expected: float) -> bool:
    """Theory inside the replications' 99 % interval (mean ± 2.58 s/√n)."""
    mean = statistics.fmean(samples)
    half = 2.576 * statistics.stdev(samples) / math.sqrt(len(samples))
    return mean - half <= expected <= mean + half


def test_independent_providers_compose_as_one_minus_the_product(tmp_path: Path) -> None:
    samples = run_availability(tmp_path, None, range(1, 13))
    expected = composite([0.8, 0.7, 0.6], None)
    assert within_interval(samples, expected), (statistics.fmean(samples), expected)


def test_a_shared_edge_caps_composite_availability(tmp_path: Path) -> None:
    samples = run_availability(tmp_path, 0.9, range(1, 13))
    expected = composite([0.8, 0.7, 0.6], 0.9)
    assert within_interval(samples, expected), (statistics.fmean(samples), expected)
    assert statistics.fmean(samples) < composite([0.8, 0.7, 0.6], None)
