"""A small policy and scenario for world tests: OpenAI and Anthropic behind one edge,
Bedrock in us-east-1 behind its regional DNS, Gemini on its own."""

from __future__ import annotations

from pathlib import Path

POLICY = """
deployments:
  - id: gpt-4o@openai
    protocol: openai
    base_url: https://api.openai.com/v1
    model: gpt-4o
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
    capabilities: [tools, streaming]
    region: us
    domains: [vendor:openai, edge:cloudflare]
  - id: claude@anthropic
    protocol: anthropic
    base_url: https://api.anthropic.com
    model: claude-sonnet-4-5
    price: {input_per_mtok: 3.00, output_per_mtok: 15.00}
    context_window: 200000
    capabilities: [tools, streaming]
    region: us
    domains: [vendor:anthropic, edge:cloudflare]
  - id: claude@bedrock-us-east-1
    protocol: bedrock
    base_url: https://bedrock-runtime.us-east-1.amazonaws.com
    model: anthropic.claude-sonnet-4-5-v1:0
    price: {input_per_mtok: 3.00, output_per_mtok: 15.00}
    context_window: 200000
    capabilities: [tools, streaming]
    region: us-east-1
    domains: [vendor:anthropic, cloud:aws, region:aws/us-east-1, dns:aws/us-east-1]
  - id: gemini@google
    protocol: gemini
    base_url: https://generativelanguage.googleapis.com
    model: gemini-2.5-flash
    price: {input_per_mtok: 0.30, output_per_mtok: 2.50}
    context_window: 1000000
    capabilities: [tools, streaming]
    region: us
    domains: [vendor:google]
routes:
  - name: default
    strategy: ordered
    targets: [gpt-4o@openai]
    fallbacks: [claude@anthropic, claude@bedrock-us-east-1, gemini@google]
"""

FAST_WORLD = """
world:
  defaults:
    capacity: {capacity}
    queue: {queue}
    ttft: {{median: 0.002, p99: 0.004}}
    per_token: {{median: 0.0005, p99: 0.001}}
"""


def write_policy(directory: Path) -> Path:
    path = directory / "world-policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def write_scenario(
    directory: Path, faults: str = "", *, capacity: int = 50, queue: int = 50
) -> Path:
    """A scenario over the test policy with a fast world and the given `faults:` YAML."""
    policy = write_policy(directory)
    path = directory / "world-scenario.yaml"
    path.write_text(
        f"""
id: world-test
title: World test
description: Fakes under test.
sources: ["tests"]
duration: 1h
policy: {policy}
traffic:
  arrivals: {{kind: poisson, rate: 1}}
{FAST_WORLD.format(capacity=capacity, queue=queue)}
{faults}
""",
        encoding="utf-8",
    )
    return path
