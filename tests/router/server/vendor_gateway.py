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
from router.server.stream import DEPLOYMENT_HEADER
from tests.router.server.gateway import POLICY, WEATHER_TOOL, call_json, gateway

VENDOR = "vendor@x"
PING = [{"role": "user", "content": "ping"}]


def vendor_policy(
    protocol: str,
    base_url: str,
    model: str,
    api_key: str,
    *,
    api_version: str | None = None,
    streaming: dict[str, Any] | None = None,
) -> Policy:
    """The test policy of `gateway.POLICY` with `VENDOR` in place of the Anthropic one
    (and `streaming` as its `resilience.streaming`, if given)."""
    data = yaml.safe_load(POLICY)
    if streaming is not None:
        data["resilience"]["streaming"] = streaming
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


# -- the checks every vendor's adapter must pass through the gateway ----------------------


def assert_plain_answer(policy: Policy) -> tuple[Any, list[tuple[str, str]]]:
    """A plain answer from the `vendor` route names the vendor, finishes `stop` and bills
    output; returns it and the attempts tried, for the vendor's own checks."""
    with gateway(policy=policy) as gw:
        raw = gw.client.chat.completions.with_raw_response.create(model="vendor", messages=PING)
        answer = raw.parse()
        assert raw.headers[DEPLOYMENT_HEADER] == VENDOR
        assert answer.choices[0].message.content and answer.choices[0].finish_reason == "stop"
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        return answer, gw.tried()


def assert_streamed_answer(policy: Policy) -> None:
    """A streamed answer from the `vendor` route ends `stop` with usage counting its words."""
    with gateway(policy=policy) as gw:
        stream = gw.client.chat.completions.create(
            model="vendor", messages=PING, stream=True, stream_options={"include_usage": True}
        )
        text, finish, usage, _ = streamed(stream)
        assert text and finish == "stop"
        assert usage is not None and usage.completion_tokens == len(text.split())


def assert_tool_calls(policy: Policy, *, stream: bool) -> dict[str, str] | None:
    """A forced tool call comes back in OpenAI's shape, plain or streamed.

    Streamed, returns the reassembled first call (`id`, `name`, `args`) for the vendor's
    id checks; plain, the whole check is done here and None is returned.
    """
    with gateway(policy=policy) as gw:
        request: dict[str, Any] = {
            "model": "vendor",
            "messages": PING,
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
        }
        if not stream:
            answer = gw.client.chat.completions.create(**request)
            assert answer.choices[0].finish_reason == "tool_calls"
            assert_weather_call(answer.choices[0].message.tool_calls)
            return None
        _, finish, _, calls = streamed(gw.client.chat.completions.create(**request, stream=True))
        assert finish == "tool_calls"
        assert json.loads(calls[0]["args"]) == {"city": "fake"}
        return calls[0]
