"""Benchmark: simulated requests per wall second, with the real router core in the loop.

Run: `python -m simulator.bench [--rate 50] [--hours 1] [--policy domain-aware]`.
It replays the Cloudflare library scenario's world and traffic with no faults and
ample capacity (so every request is the simple, common case: no queueing, one
attempt) at `--rate` requests/s for `--hours`
of virtual time, and prints the simulator's throughput next to the router core
driven alone by a bare loop over the same number of requests — the ratio is what
SimPy, the provider model, traffic and the client layer cost on top of the core.
Targets (issue #4): ≥ 50,000 simulated requests/s; 24 h at 50 req/s in < 2 min.
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from router.core import AttemptFinished, Engine, Outcome, RequestArrived, SendAttempt, TraceRecorder
from scenarios.overrides import parse_override
from scenarios.scenario_files import LIBRARY_DIR
from simulator.driver import simulate
from simulator.runner import RunRequest


def core_alone(request: RunRequest, count: int) -> float:
    """Seconds for the core (trace on) to route `count` requests with one ok attempt each.

    The cyclic GC is off while it runs, as `simulate` has it: otherwise collections
    traversing the growing trace would be timed here and not in the simulator.
    """
    loaded = request.load()
    engine = Engine(loaded.policy, rng=random.Random(1), trace=TraceRecorder())
    route = loaded.policy.routes[0].name
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _route(engine, route, count)
    finally:
        if collecting:
            gc.enable()


def _route(engine: Engine, route: str, count: int) -> float:
    """Wall seconds to send `count` requests down `route`, each answered ok at once."""
    started = time.perf_counter()
    for i in range(count):
        at = i * 0.001
        (send,) = engine.handle(
            RequestArrived(
                at=at, request_id=f"r{i}", route=route, input_tokens=900, max_output_tokens=400
            )
        )
        assert isinstance(send, SendAttempt)
        engine.handle(
            AttemptFinished(
                at=at,
                attempt_id=send.attempt_id,
                outcome=Outcome.OK,
                input_tokens=900,
                output_tokens=300,
            )
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--hours", type=float, default=1.0, help="virtual hours")
    parser.add_argument("--policy", default="domain-aware")
    args = parser.parse_args()
    request = RunRequest(
        scenario=LIBRARY_DIR / "cloudflare-2025-11-18.yaml",
        policy=args.policy,
        overrides=tuple(
            parse_override(text)
            for text in (
                "faults=[]",
                "slos=[]",
                f"duration={args.hours * 3600:g}",
                f"traffic.arrivals.rate={args.rate:g}",
                "traffic.client.retries=0",
                "world.defaults.capacity=5000",
            )
        ),
    )
    loaded = request.load()
    sim = simulate(loaded, seed=1)
    count = len(sim.requests)
    baseline = core_alone(request, count)
    print(
        f"policy {loaded.policy.name}, {args.rate:g} req/s for {args.hours:g} h virtual: "
        f"{count:,} requests, {len(sim.attempts):,} attempts"
    )
    print(
        f"  simulator (core + SimPy + model + traffic)  {count / sim.wall_s:>10,.0f} requests/s"
        f"   {sim.wall_s:7.2f} s wall"
    )
    print(
        f"  core alone, trace on (baseline)             {count / baseline:>10,.0f} requests/s"
        f"   {baseline:7.2f} s wall"
    )
    print(f"  simulator time ÷ core time: {sim.wall_s / baseline:.2f}×")
    print(f"  virtual/wall speed-up: {args.hours * 3600 / sim.wall_s:,.0f}×")


if __name__ == "__main__":
    main()
