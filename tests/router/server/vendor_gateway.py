"""A gateway policy with an OpenAI deployment and one other vendor, for the adapter tests.

Routes: `vendor` (the vendor alone), `default` (OpenAI first, the vendor as fallback —
the "primary down, other schema answers" case) and `back` (the vendor first, OpenAI as
fallback — where a vendor error is retried and then failed over).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from router.core.policy import Policy, policy_from_data
from tests.router.server.gateway import POLICY, call_json

VENDOR = "vendor@x"
PING = [{"role": "user", "content": "ping"}]


def vendor_policy(
    protocol: str, base_url: str, model: str, api_key: str, *, api_version: str | None = None
) -> Policy:
    """The test policy of `gateway.POLICY` with `VENDOR` in place of the Anthropic one."""
    data = yaml.safe_load(POLICY)
    openai_deployment = data["deployments"][0]
    vendor: dict[str, Any] = {
        "id": VENDOR,
        "protocol": protocol,
        "base_url": base_url,
        "model": model,
        "api_key": api_key,
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "context_window": 128000,
        "capabilities": ["tools", "streaming", "json"],
        "region": "us",
        "domains": [f"vendor:{protocol}"],
    }
    if api_version is not None:
        vendor["api_version"] = api_version
    data["deployments"] = [openai_deployment, vendor]
    data["routes"] = [
        {"name": "vendor", "targets": [VENDOR]},
        {"name": "default", "targets": [openai_deployment["id"]], "fallbacks": [VENDOR]},
        {"name": "back", "targets": [VENDOR], "fallbacks": [openai_deployment["id"]]},
    ]
    return policy_from_data(data, source="vendor-test", env={})


def streamed(stream: Iterator[Any]) -> tuple[str, str | None, Any, dict[int, dict[str, str]]]:
    """(text, finish reason, usage, tool calls by index) of an OpenAI SDK stream."""
    text, finish, usage = "", None, None
    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for fragment in choice.delta.tool_calls or ():
                call = calls.setdefault(fragment.index, {"id": "", "name": "", "args": ""})
                call["id"] = fragment.id or call["id"]
                if fragment.function is not None:
                    call["name"] = fragment.function.name or call["name"]
                    call["args"] += fragment.function.arguments or ""
    return text, finish, usage, calls


def assert_weather_call(calls: Any) -> None:
    """OpenAI-shaped tool calls: one `get_weather` with JSON-string arguments and an id."""
    assert calls and calls[0].type == "function"
    assert calls[0].id and calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments, str)
    assert json.loads(calls[0].function.arguments) == {"city": "fake"}


def refuse(control: str, deployment: str) -> None:
    """Make `deployment` refuse connections through the fakes' control API."""
    status, _, _ = call_json(
        "POST", control + "/faults", {"kind": "refuse", "target": {"deployments": [deployment]}}
    )
    assert status == 201
