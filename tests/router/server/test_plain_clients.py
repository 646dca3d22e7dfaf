"""`resilience.streaming.plain_clients: whole`: non-streaming clients read whole upstream.

For each of the six wire protocols, through the gateway against the fakes: the answer,
its usage and its tool calls are those of the streamed path; a 429, a 500, late headers
and a cut body lead to the same decisions as a streamed attempt would; and the fakes'
attempt journal proves the upstream call really was not streamed. With the default
(`stream`) the rest of this directory's tests are the proof nothing changed.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import openai
import pytest

from router.core.errors import ConfigError
from router.core.policy import Policy, policy_from_data
from router.server.stream import DEPLOYMENT_HEADER
from tests.router.core.harness import BASE_POLICY
from tests.router.server.gateway import WEATHER_TOOL, Gateway, gateway, journal
from tests.router.server.vendor_gateway import PING, VENDOR, assert_weather_call, vendor_policy

VENDORS: dict[str, tuple[str, str, str, str | None]] = {
    "openai": ("https://api.openai.com/v1", "gpt-4o-mini", "sk-v", None),
    "azure-openai": ("https://res.openai.azure.com", "gpt4o-prod", "az-1", "2024-10-21"),
    "mistral": ("https://api.mistral.ai/v1", "mistral-large-latest", "m-1", None),
    "anthropic": ("https://api.anthropic.com", "claude-sonnet-4-5", "sk-ant-1", None),
    "gemini": ("https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash", "g-1", None),
    "bedrock": (
        "https://bedrock-runtime.eu-west-1.amazonaws.com",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "AKIDEXAMPLE:s3cret",
        None,
    ),
}
"""Protocol → (base URL, model, API key, API version) of the `VENDOR` deployment."""

PROTOCOLS = list(VENDORS)


def _policy(protocol: str, plain_clients: str = "whole") -> Policy:
    """`vendor_policy` for `protocol`, with `plain_clients` set."""
    base_url, model, key, version = VENDORS[protocol]
    policy = vendor_policy(protocol, base_url, model, key, api_version=version)
    resilience = policy.resilience
    streaming = resilience.streaming.model_copy(update={"plain_clients": plain_clients})
    update = {"resilience": resilience.model_copy(update={"streaming": streaming})}
    return policy.model_copy(update=update)


def _on(protocol: str, fault: str) -> dict[str, str]:
    return {VENDOR: f"{VENDORS[protocol][1]}~{fault}"}


def _vendor_attempts(gw: Gateway) -> list[dict[str, Any]]:
    """The journal's attempts at the vendor deployment."""
    return [entry for entry in journal(gw.control) if entry["deployment"] == VENDOR]


# -- the answer ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plain_answer_is_read_whole_with_usage_and_the_deployment_named(protocol: str) -> None:
    with gateway(policy=_policy(protocol)) as gw:
        raw = gw.client.chat.completions.with_raw_response.create(model="vendor", messages=PING)
        answer = raw.parse()
        assert raw.headers[DEPLOYMENT_HEADER] == VENDOR
        assert answer.choices[0].message.content and answer.choices[0].finish_reason == "stop"
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        assert answer.usage.prompt_tokens > 0
        assert gw.tried() == [(VENDOR, "ok")]
        [seen] = _vendor_attempts(gw)
        assert seen["stream"] is False, "the upstream call was streamed"
        [row] = gw.attempts()
        assert (row.input_tokens, row.output_tokens) == (
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
        )
        assert row.output_tokens == seen["output_tokens"]  # billed as the vendor counted


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_streaming_client_is_still_streamed_upstream(protocol: str) -> None:
    with gateway(policy=_policy(protocol)) as gw:
        stream = gw.client.chat.completions.create(model="vendor", messages=PING, stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert [entry["stream"] for entry in _vendor_attempts(gw)] == [True]


def _answer(protocol: str, plain_clients: str, **request: Any) -> tuple[Any, ...]:
    """What a plain client gets, in the fields both modes must agree on, and the bill."""
    with gateway(policy=_policy(protocol, plain_clients)) as gw:
        answer = gw.client.chat.completions.create(model="vendor", messages=PING, **request)
        [row] = gw.attempts()
    message = answer.choices[0].message
    calls = [
        (call.type, call.function.name, json.loads(call.function.arguments))
        for call in message.tool_calls or ()
    ]
    usage = answer.usage
    assert usage is not None
    return (
        answer.model,
        message.content,
        calls,
        answer.choices[0].finish_reason,
        (usage.prompt_tokens, usage.completion_tokens),
        (row.outcome, row.input_tokens, row.output_tokens, row.cost_usd),
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("tools", [False, True])
def test_whole_and_streamed_give_the_client_the_same_answer_and_bill(
    protocol: str, tools: bool
) -> None:
    request: dict[str, Any] = {"tools": [WEATHER_TOOL], "tool_choice": "required"} if tools else {}
    assert _answer(protocol, "whole", **request) == _answer(protocol, "stream", **request)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tool_calls_come_back_in_openai_shape(protocol: str) -> None:
    with gateway(policy=_policy(protocol)) as gw:
        answer = gw.client.chat.completions.create(
            model="vendor",
            messages=PING,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        assert answer.choices[0].finish_reason == "tool_calls"
        assert_weather_call(answer.choices[0].message.tool_calls)
        assert [entry["stream"] for entry in _vendor_attempts(gw)] == [False]


# -- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_429_retry_after_is_honoured(protocol: str) -> None:
    with gateway(policy=_policy(protocol), models=_on(protocol, "rate_limited-0.3")) as gw:
        with pytest.raises(openai.RateLimitError) as raised:
            gw.client.chat.completions.create(model="vendor", messages=PING)
        assert raised.value.status_code == 429
        rows = gw.attempts()
        assert [row.outcome for row in rows] == ["rate_limited"] * 3
        gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(rows)]
        if protocol == "bedrock":  # Bedrock sends no retry hint: backoff, never a tight loop
            assert all(gap > 0 for gap in gaps), gaps
        else:
            assert all(gap >= 0.3 for gap in gaps), gaps
        assert {entry["stream"] for entry in _vendor_attempts(gw)} == {False}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_500_is_retried_then_failed_over(protocol: str) -> None:
    with gateway(policy=_policy(protocol), models=_on(protocol, "server")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        assert gw.tried() == [(VENDOR, "server")] * 3 + [("gpt@openai", "ok")]
        assert {entry["stream"] for entry in _vendor_attempts(gw)} == {False}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_late_headers_are_a_slow_first_token_one_timeout_then_failover(protocol: str) -> None:
    with gateway(policy=_policy(protocol), models=_on(protocol, "slow_first_token-2")) as gw:
        began = time.monotonic()
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        assert gw.tried() == [(VENDOR, "timeout"), ("gpt@openai", "ok")]
        assert time.monotonic() - began < 2.0  # the 1 s first-token limit struck, not the fake
        assert {entry["stream"] for entry in _vendor_attempts(gw)} == {False}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_body_cut_short_is_a_stream_cut_then_failover(protocol: str) -> None:
    with gateway(policy=_policy(protocol), models=_on(protocol, "stream_cut-3")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        tried = gw.tried()
        assert tried[0] == (VENDOR, "stream_cut") and tried[-1] == ("gpt@openai", "ok")
        assert {outcome for deployment, outcome in tried[:-1]} == {"stream_cut"}
        assert {entry["stream"] for entry in _vendor_attempts(gw)} == {False}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fault", ["content_filter", "completion_filter"])
def test_content_filters_end_as_they_do_when_streamed(protocol: str, fault: str) -> None:
    def outcome(plain_clients: str) -> tuple[Any, ...]:
        policy = _policy(protocol, plain_clients)
        with gateway(policy=policy, models=_on(protocol, fault)) as gw:
            try:
                answer = gw.client.chat.completions.create(model="back", messages=PING)
            except openai.APIStatusError as error:
                body = error.body if isinstance(error.body, dict) else {}
                said: tuple[Any, ...] = (error.status_code, body.get("code"))
            else:
                said = (answer.model, answer.choices[0].finish_reason)
            return said, gw.tried()

    assert outcome("whole") == outcome("stream")


def test_no_stall_check_while_the_body_is_read_only_the_deadline() -> None:
    """A body that stops half-way is waited for until the request deadline, then `timeout`:
    a whole answer has no tokens to time, so `stream_stall` cannot occur."""
    policy = _policy("openai")
    resilience = policy.resilience
    timeouts = resilience.timeouts.model_copy(update={"stream_idle_s": 0.2, "total_s": 1.5})
    update = {"resilience": resilience.model_copy(update={"timeouts": timeouts})}
    with gateway(
        policy=policy.model_copy(update=update), models=_on("openai", "stream_stall-2")
    ) as gw:
        began = time.monotonic()
        with pytest.raises(openai.APIStatusError):
            gw.client.chat.completions.create(model="vendor", messages=PING)
        assert time.monotonic() - began >= 1.4
        assert gw.tried() == [(VENDOR, "timeout")]


# -- the policy field ---------------------------------------------------------------------


def test_plain_clients_defaults_to_stream_and_refuses_other_values() -> None:
    policy = policy_from_data(BASE_POLICY, source="p.yaml", env={})
    assert policy.resilience.streaming.plain_clients == "stream"

    def with_plain_clients(value: str) -> Policy:
        resilience = {**BASE_POLICY["resilience"], "streaming": {"plain_clients": value}}
        return policy_from_data({**BASE_POLICY, "resilience": resilience}, source="p", env={})

    assert with_plain_clients("whole").resilience.streaming.plain_clients == "whole"
    with pytest.raises(ConfigError) as raised:
        with_plain_clients("buffered")
    [issue] = raised.value.issues
    assert issue.field == "resilience.streaming.plain_clients"
    assert "stream" in issue.message and "whole" in issue.message
