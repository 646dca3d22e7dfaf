"""Test harness: a fake world (OpenAI + Anthropic fakes) and the gateway in front of it.

Both run on 127.0.0.1, port 0, in background threads; the context managers stop both.
The gateway's policy is the world's with each deployment's `base_url` pointed at its fake
and, optionally, a fault directive in its model name (`gpt-4o~server`).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from random import Random
from typing import Any

import openai
import yaml

from fakes.server.world import FakeWorld
from router.core.policy import Policy, policy_from_data
from router.core.trace import AttemptRow, TraceRecorder
from router.server import create_app
from tests.fakes.server.harness import SERVED_LOOP, running, running_world

POLICY = """
name: gateway-test
deployments:
  - id: gpt@openai
    protocol: openai
    base_url: https://api.openai.com/v1
    model: gpt-4o
    api_key: sk-test
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
    capabilities: [tools, streaming, json]
    region: us
    domains: [vendor:openai]
  - id: claude@anthropic
    protocol: anthropic
    base_url: https://api.anthropic.com
    model: claude-sonnet-4-5
    api_key: sk-ant-test
    price: {input_per_mtok: 3.00, output_per_mtok: 15.00}
    context_window: 200000
    capabilities: [tools, streaming, json]
    region: us
    domains: [vendor:anthropic]
routes:
  - name: default
    targets: [gpt@openai]
    fallbacks: [claude@anthropic]
  - name: solo
    targets: [gpt@openai]
resilience:
  timeouts: {connect_s: 1, first_token_s: 1, stream_idle_s: 1, total_s: 10}
  retries:
    max_attempts_per_deployment: 3
    backoff: {kind: equal, base_s: 0.05, cap_s: 0.2}
"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def load_policy(text: str = POLICY, **resilience: Any) -> Policy:
    """The test policy, with `resilience` keys merged over the defaults above."""
    data = yaml.safe_load(text)
    for key, value in resilience.items():
        data["resilience"][key] = {**data["resilience"].get(key, {}), **value}
    return policy_from_data(data, source="gateway-test", env={})


@dataclass
class Gateway:
    """A running gateway: its URL, an OpenAI client for it, its trace, the fakes' control."""

    url: str
    client: openai.OpenAI
    trace: TraceRecorder
    control: str

    def attempts(self) -> list[AttemptRow]:
        """The engine's attempt rows so far."""
        return list(self.trace.attempts)

    def tried(self) -> list[tuple[str, str]]:
        """(deployment, outcome) of every attempt, in order."""
        return [(row.deployment, row.outcome) for row in self.attempts()]


def call_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    """One HTTP call; (status, parsed JSON body, headers)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def journal(control: str) -> list[dict[str, Any]]:
    """Attempts the fakes saw."""
    return list(call_json("GET", control + "/journal")[1]["attempts"])


def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    """Poll `predicate` every 5 ms until it holds (AssertionError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@contextmanager
def gateway(
    *,
    models: Mapping[str, str] | None = None,
    policy: Policy | None = None,
    loop: Callable[[], asyncio.AbstractEventLoop] = SERVED_LOOP,
    **app_options: Any,
) -> Iterator[Gateway]:
    """A fake world and a gateway in front of it (on a loop from `loop`); `models` sets
    deployment model names."""
    policy = policy or load_policy()
    with running_world(FakeWorld(policy, seed=5)) as ready:
        deployments = tuple(
            d.model_copy(
                update={
                    "base_url": ready["deployments"][d.id]["base_url"],
                    "model": (models or {}).get(d.id, d.model),
                }
            )
            for d in policy.deployments
        )
        served = policy.model_copy(update={"deployments": deployments})
        trace = TraceRecorder()
        app = create_app(served, trace=trace, rng=Random(7), **app_options)
        with running(app, loop) as url:
            client = openai.OpenAI(
                base_url=url + "/v1", api_key="client-key", max_retries=0, timeout=15.0
            )
            try:
                yield Gateway(url, client, trace, ready["control"])
            finally:
                client.close()
