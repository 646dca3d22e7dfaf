"""Benchmark: how many simple requests per second the router core handles on one core.

A simple request is the simulator's common case: route it, send one attempt,
and complete on a successful result. The baseline runs side by side: the same
loop building the same events but answering them with a do-nothing handler, so
the ratio shows what the engine itself costs on top of the driver's minimum.

Run: `python benchmarks/core_throughput.py [--requests N] [--repeat K]`.
The issue target is ≥ 100,000 requests/s for the core alone (trace off).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from router.core import (
    AttemptFinished,
    Engine,
    Outcome,
    RequestArrived,
    SendAttempt,
    TraceRecorder,
)
from router.core.decisions import Decision
from router.core.events import Event
from scenarios.policy_files import load_policy

POLICY = Path(__file__).resolve().parents[1] / "scenarios" / "policies" / "domain-aware.yaml"


def drive(
    handle: Callable[[Event], list[Decision]], requests: int, route: str, tenant: str = ""
) -> float:
    """Push `requests` simple requests through `handle`; return wall seconds."""
    ids = [f"r{i}" for i in range(requests)]
    started = time.perf_counter()
    now = 0.0
    for request_id in ids:
        now += 0.001
        sent = handle(
            RequestArrived(
                at=now,
                request_id=request_id,
                route=route,
                tenant=tenant,
                input_tokens=800,
                max_output_tokens=400,
            )
        )[0]
        if not isinstance(sent, SendAttempt):
            raise SystemExit(
                f"the policy refused a simple request ({sent}); "
                "benchmark a policy without tenant limits or caps"
            )
        attempt_id = sent.attempt_id
        handle(
            AttemptFinished(
                at=now,
                attempt_id=attempt_id,
                outcome=Outcome.OK,
                http_status=200,
                input_tokens=800,
                output_tokens=350,
            )
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policy", type=Path, default=POLICY)
    args = parser.parse_args()
    policy = load_policy(args.policy)
    route = policy.routes[0].name
    tenant = next(iter(policy.tenants), "")
    placeholder: list[Decision] = [
        SendAttempt(
            request_id="r",
            attempt_id=0,
            attempt=1,
            deployment="d",
            connect_by=0.0,
            first_token_by=0.0,
            idle_s=0.0,
            deadline=0.0,
        )
    ]

    def baseline(event: Event) -> list[Decision]:
        return placeholder

    runs = {
        "baseline (events only)": lambda: baseline,
        "engine, trace off": lambda: Engine(policy, rng=random.Random(1)).handle,
        "engine, trace on": lambda: (
            Engine(policy, rng=random.Random(1), trace=TraceRecorder()).handle
        ),
    }
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, make in runs.items():
            seconds = drive(make(), args.requests, route, tenant)
            best[name] = min(best.get(name, float("inf")), seconds)
    who = tenant or "(anonymous)"
    print(
        f"policy {policy.name}, route {route!r}, tenant {who}, {args.requests:,} requests,", end=""
    )
    print(f" best of {args.repeat}")
    base = best["baseline (events only)"]
    for name, seconds in best.items():
        rate = args.requests / seconds
        print(f"  {name:<24} {rate:>12,.0f} requests/s   {seconds / base:5.2f}× baseline time")
    core = args.requests / best["engine, trace off"]
    verdict = "met" if core >= 100_000 else "MISSED"
    print(f"target ≥ 100,000 requests/s (engine, trace off): {verdict}")


if __name__ == "__main__":
    main()
