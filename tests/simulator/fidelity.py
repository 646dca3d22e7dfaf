"""Small scenario and policy files for fidelity tests, written to a temp dir."""

from __future__ import annotations

import math
from pathlib import Path

ONE_PROVIDER_POLICY = """\
deployments:
  - id: solo@p
    protocol: openai
    base_url: http://solo
    model: solo
    price: {input_per_mtok: 1.0, output_per_mtok: 1.0}
    context_window: 1000000
    region: test
    residency: us
    domains: [vendor:p]
routes:
  - {name: default, targets: [solo@p]}
resilience:
  timeouts: {connect_s: 100000, first_token_s: 100000, stream_idle_s: 100000, total_s: 100000}
  retries:
    max_attempts_per_deployment: ATTEMPTS
    max_failovers: 0
    backoff: {kind: none, base_s: 0.001, cap_s: 0.001}
  budget: {enabled: false}
  breaker: {enabled: false}
  domains: {enabled: false}
"""

THREE_PROVIDER_POLICY = (
    """\
deployments:
"""
    + "".join(
        f"""\
  - id: p{i}@v{i}
    protocol: openai
    base_url: http://p{i}
    model: p{i}
    price: {{input_per_mtok: 1.0, output_per_mtok: 1.0}}
    context_window: 1000000
    region: test
    residency: us
    domains: [vendor:v{i}]
"""
        for i in range(3)
    )
    + """\
routes:
  - {name: default, targets: [p0@v0], fallbacks: [p1@v1, p2@v2]}
resilience:
  retries: {max_attempts_per_deployment: 1, max_failovers: 2}
  breaker: {enabled: false}
  domains: {enabled: false}
"""
)


def exponential_quantiles(mean_s: float, points: int = 240, top: float = 14.0) -> str:
    """A quantile table whose linear interpolation is an exponential law to within 0.1 %."""
    rows = []
    for k in range(points + 1):
        x = top * k / points
        rows.append(f"[{1 - math.exp(-x):.12f}, {x * mean_s:.9f}]")
    return "[" + ", ".join(rows) + "]"


def scenario(
    policy: Path,
    *,
    duration: float,
    rate: float,
    world: str,
    faults: str = "[]",
    seed: int = 1,
) -> str:
    """A minimal scenario: Poisson arrivals, one-token answers, no client retries."""
    return f"""\
id: fidelity
title: fidelity check
description: compares the simulator with queueing and reliability theory
sources: [theory]
duration: {duration}
policy: {policy}
seed: {seed}
world:
{world}
traffic:
  arrivals: {{kind: poisson, rate: {rate}}}
  tasks:
    - name: t
      input_tokens: {{median: 10, p99: 10}}
      output_tokens: {{median: 1, p99: 1}}
      stream: false
  client: {{timeout: 100000, retries: 0}}
faults: {faults}
"""
