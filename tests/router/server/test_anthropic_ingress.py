"""The Anthropic-compatible door: the official `anthropic` SDK → gateway `POST /v1/messages`.

Each test starts a fake world and a gateway and stops both. The routes are the same
ones OpenAI clients use; whichever vendor serves (OpenAI here, or the Anthropic fake
after a failover), the client sees Anthropic messages, events and errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import pytest

from router.core.policy import Tenant
from router.server.anthropic_ingress import to_chat_body
from router.server.stream import DEPLOYMENT_HEADER
from tests.router.server.gateway import Gateway, gateway, load_policy, wait_for

TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HELLO: list[Any] = [{"role": "user", "content": "ping"}]


@contextmanager
def anthropic_gateway(**options: Any) -> Iterator[tuple[Gateway, anthropic.Anthropic]]:
    """A gateway in front of the fakes, and an Anthropic client for it (closed after)."""
    with gateway(**options) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0)
        try:
            yield gw, client
        finally:
            client.close()


def test_request_translation_keeps_tool_results_before_the_rest_of_the_turn() -> None:
    body = to_chat_body(
        {
            "model": "default",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "stop_sequences": ["END"],
        }
    )
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert body["messages"][2]["tool_calls"][0]["function"] == {"name": "w", "arguments": "{}"}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["stop"] == ["END"] and body["tools"][0]["function"]["name"] == "get_weather"


def test_plain_message_through_the_same_route() -> None:
    with anthropic_gateway() as (gw, client):
        raw = client.messages.with_raw_response.create(
            model="default", max_tokens=50, system="be brief", messages=HELLO
        )
        message = raw.parse()
        assert raw.headers[DEPLOYMENT_HEADER] == "gpt@openai"
        assert message.type == "message" and message.role == "assistant"
        assert message.content[0].type == "text" and message.content[0].text
        assert message.stop_reason == "end_turn" and message.model == "gpt-4o"
        assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
        assert gw.tried() == [("gpt@openai", "ok")]


def test_streaming_with_messages_stream() -> None:
    with anthropic_gateway() as (_, client):
        with client.messages.stream(model="default", max_tokens=50, messages=HELLO) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text and final.content[0].type == "text" and final.content[0].text == text
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens == len(text.split())


@pytest.mark.parametrize("stream", [False, True])
def test_tools_come_back_as_tool_use_blocks(stream: bool) -> None:
    with anthropic_gateway() as (_, client):
        request: dict[str, Any] = {
            "model": "default",
            "max_tokens": 50,
            "messages": HELLO,
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": "get_weather"},
        }
        if stream:
            with client.messages.stream(**request) as events:
                message = events.get_final_message()
        else:
            message = client.messages.create(**request)
        assert message.stop_reason == "tool_use"
        block = message.content[-1]
        assert block.type == "tool_use" and block.name == "get_weather"
        assert block.input == {"city": "fake"} and block.id


def test_a_tool_result_round_trip() -> None:
    with anthropic_gateway() as (_, client):
        first = client.messages.create(
            model="default",
            max_tokens=50,
            messages=HELLO,
            tools=[TOOL],
            tool_choice={"type": "any"},
        )
        use = first.content[-1]
        assert use.type == "tool_use"
        second = client.messages.create(
            model="default",
            max_tokens=50,
            tools=[TOOL],
            messages=[
                *HELLO,
                {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
                },
            ],
        )
        assert second.stop_reason == "end_turn" and second.content[0].type == "text"


def test_failover_to_the_anthropic_fake_is_invisible_to_the_client() -> None:
    with anthropic_gateway(models={"gpt@openai": "gpt-4o~server"}) as (gw, client):
        with client.messages.stream(model="default", max_tokens=50, messages=HELLO) as stream:
            final = stream.get_final_message()
        assert final.model == "claude-sonnet-4-5" and final.content[0].type == "text"
        assert gw.tried()[-1] == ("claude@anthropic", "ok")


def test_errors_use_anthropics_envelope() -> None:
    with anthropic_gateway(models={"gpt@openai": "gpt-4o~rate_limited-0.05"}) as (gw, client):
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.create(model="nope", max_tokens=5, messages=HELLO)
        assert missing.value.body == {
            "type": "error",
            "error": {
                "type": "not_found_error",
                "message": "model: `nope` is not a route of this gateway",
            },
        }
        with pytest.raises(anthropic.BadRequestError) as bad:
            client.messages.create(model="default", max_tokens=0, messages=HELLO)
        assert isinstance(bad.value.body, dict)
        assert bad.value.body["error"]["type"] == "invalid_request_error"
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(model="solo", max_tokens=5, messages=HELLO)
        assert isinstance(limited.value.body, dict)
        assert limited.value.body["error"]["type"] == "rate_limit_error"
        assert len(gw.attempts()) == 3


def test_a_stream_cut_after_bytes_reached_the_client_is_an_in_band_error() -> None:
    with anthropic_gateway(models={"gpt@openai": "gpt-4o~stream_cut-3"}) as (gw, client):
        with (
            pytest.raises(anthropic.APIStatusError),
            client.messages.stream(model="solo", max_tokens=50, messages=HELLO) as stream,
        ):
            stream.get_final_message()
        wait_for(lambda: len(gw.attempts()) == 1)


def test_a_stream_cut_is_carried_on_in_one_text_block_where_the_policy_says_so() -> None:
    policy = load_policy(streaming={"after_first_byte": "continue"})
    models = {"gpt@openai": "gpt-4o~stream_cut-3"}
    with anthropic_gateway(models=models, policy=policy) as (gw, client):
        with client.messages.stream(model="default", max_tokens=50, messages=HELLO) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert len(final.content) == 1 and final.content[0].type == "text"
        assert final.content[0].text == text and len(text.split()) == 3 + 12
        assert final.stop_reason == "end_turn"
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("claude@anthropic", "ok")]


def test_with_tenants_the_x_api_key_is_the_tenant_key() -> None:
    digest = hashlib.sha256(b"tenant-secret").hexdigest()
    policy = load_policy().model_copy(update={"tenants": {"acme": Tenant(key_sha256=(digest,))}})
    with anthropic_gateway(policy=policy) as (gw, client):
        with pytest.raises(anthropic.AuthenticationError) as raised:
            client.messages.create(model="default", max_tokens=5, messages=HELLO)
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["error"]["type"] == "authentication_error"
        allowed = client.with_options(api_key="tenant-secret")
        assert allowed.messages.create(model="default", max_tokens=5, messages=HELLO).content
        assert gw.trace.requests[-1].tenant == "acme"
