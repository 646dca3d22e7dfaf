"""Behaviours 7 and 8 under `after_first_byte: continue`: a broken answer carried on.

Bytes already reached the client, so a restart is no longer invisible; the policy asks
for the answer to be continued on a fallback instead. The client must get one stream
with the part it has followed by the fallback's continuation (no repeat, no doubled
space), the fallback must be sent the part as a prefill in its own dialect (Anthropic
refuses trailing whitespace, Mistral a final assistant turn without `prefix`: the fakes
do as the vendors do), and where no continuation is possible (a tool call under way, a
fallback that refuses) the client gets an in-band error about the *original* break.
"""

from __future__ import annotations

import asyncio
import json
from random import Random
from typing import Any

import openai
import pytest
import yaml
from aiohttp import web

from fakes.server.world import FakeWorld
from router.core.policy import policy_from_data
from router.core.trace import TraceRecorder
from router.server import create_app
from tests.fakes.server.harness import running, running_world
from tests.router.server.gateway import POLICY, gateway, load_policy
from tests.router.server.test_app import PING, stream_text

CONTINUE = {"after_first_byte": "continue"}


def test_a_stream_cut_after_bytes_reached_the_client_is_carried_on_by_the_fallback() -> None:
    with gateway(
        models={"gpt@openai": "gpt-4o~stream_cut-3"}, policy=load_policy(streaming=CONTINUE)
    ) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert finish == "stop"
        # The primary's three words, then the fallback's twelve, carried on from them (a
        # fallback not given the prefill would start its answer without the space).
        assert len(text.split()) == 3 + 12 and "  " not in text
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("claude@anthropic", "ok")]
        assert [row.reason for row in gw.attempts()] == ["", "continuation"]
        assert gw.attempts()[0].output_tokens == 3


def test_a_stall_after_bytes_reached_the_client_is_carried_on_too() -> None:
    with gateway(
        models={"gpt@openai": "gpt-4o~stream_stall-4"}, policy=load_policy(streaming=CONTINUE)
    ) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert finish == "stop" and len(text.split()) == 4 + 12
        assert gw.tried() == [("gpt@openai", "stream_stall"), ("claude@anthropic", "ok")]


def test_a_fallback_that_cannot_carry_on_does_not_mask_the_original_break() -> None:
    with gateway(
        models={"gpt@openai": "gpt-4o~stream_cut-3", "claude@anthropic": "claude-sonnet-4-5~auth"},
        policy=load_policy(streaming=CONTINUE),
    ) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        with pytest.raises(openai.APIError) as raised:
            stream_text(stream)
        assert "stream_cut" in raised.value.message
        assert "credentials" not in raised.value.message
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("claude@anthropic", "auth")]


MISTRAL_FALLBACK = """
name: continue-on-mistral
deployments:
  - id: gpt@openai
    protocol: openai
    base_url: https://api.openai.com/v1
    model: gpt-4o
    api_key: sk-test
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
    capabilities: [tools, streaming, json]
    region: eu
    domains: [vendor:openai]
  - id: mistral@mistral
    protocol: mistral
    base_url: https://api.mistral.ai/v1
    model: mistral-small-latest
    api_key: sk-mistral-test
    price: {input_per_mtok: 0.10, output_per_mtok: 0.30}
    context_window: 128000
    capabilities: [tools, streaming, json]
    region: eu
    domains: [vendor:mistral]
routes:
  - name: default
    targets: [gpt@openai]
    fallbacks: [mistral@mistral]
resilience:
  timeouts: {connect_s: 1, first_token_s: 1, stream_idle_s: 1, total_s: 10}
  streaming: {after_first_byte: continue}
"""


def test_mistral_carries_on_from_a_prefix_message() -> None:
    """Mistral refuses a final assistant turn unless it says `prefix`; the adapter does."""
    policy = policy_from_data(yaml.safe_load(MISTRAL_FALLBACK), source="test", env={})
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-2"}, policy=policy) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert finish == "stop" and len(text.split()) == 2 + 12 and "  " not in text
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("mistral@mistral", "ok")]


def _chunk(delta: dict[str, Any]) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    body = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0,
            "model": "gpt-4o", "choices": [choice]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _breaks_inside_a_tool_call(request: web.Request) -> web.StreamResponse:
    """Text, the start of a tool call, then the connection drops."""
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk({"role": "assistant", "content": "Checking"}))
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"ci'}}  # fmt: skip
    await response.write(_chunk({"tool_calls": [call]}))
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()
    return response


def test_a_tool_call_under_way_is_never_continued() -> None:
    """No provider can finish another's half-sent tool call: an in-band error, no fallback."""
    upstream = web.Application()
    upstream.router.add_post("/v1/chat/completions", _breaks_inside_a_tool_call)
    data = yaml.safe_load(POLICY)
    data["resilience"]["streaming"] = CONTINUE
    with running(upstream) as broken:
        data["deployments"][0]["base_url"] = broken + "/v1"
        data["deployments"][1]["base_url"] = "http://127.0.0.1:9/never-called"
        trace = TraceRecorder()
        app = create_app(policy_from_data(data, source="test", env={}), trace=trace, rng=Random(3))
        with running(app) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=15)
            try:
                stream = client.chat.completions.create(
                    model="default",
                    messages=PING,
                    stream=True,  # type: ignore[arg-type]
                )
                with pytest.raises(openai.APIError) as raised:
                    stream_text(stream)
            finally:
                client.close()
        assert "stream_cut" in raised.value.message
        assert [(row.deployment, row.outcome) for row in trace.attempts] == [
            ("gpt@openai", "stream_cut")
        ]


async def _breaks_after_a_space(request: web.Request) -> web.StreamResponse:
    """Two words, the second with the space after it, then the connection drops."""
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk({"role": "assistant", "content": "Hello"}))
    await response.write(_chunk({"content": " there "}))
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()
    return response


def test_whitespace_the_client_has_is_neither_sent_as_prefill_nor_repeated() -> None:
    """Anthropic refuses a prefill ending in whitespace; the continuation's own leading
    space is dropped, since the client already has one."""
    data = yaml.safe_load(POLICY)
    data["resilience"]["streaming"] = CONTINUE
    world_policy = policy_from_data(data, source="test", env={})
    upstream = web.Application()
    upstream.router.add_post("/v1/chat/completions", _breaks_after_a_space)
    with running_world(FakeWorld(world_policy, seed=5)) as ready, running(upstream) as broken:
        data["deployments"][0]["base_url"] = broken + "/v1"
        data["deployments"][1]["base_url"] = ready["deployments"]["claude@anthropic"]["base_url"]
        trace = TraceRecorder()
        app = create_app(policy_from_data(data, source="test", env={}), trace=trace, rng=Random(3))
        with running(app) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=15)
            try:
                stream = client.chat.completions.create(
                    model="default",
                    messages=PING,
                    stream=True,  # type: ignore[arg-type]
                )
                text, finish, _ = stream_text(stream)
            finally:
                client.close()
    assert finish == "stop"
    assert text.startswith("Hello there ") and "  " not in text
    assert len(text.split()) == 2 + 12
    assert [(row.deployment, row.outcome) for row in trace.attempts] == [
        ("gpt@openai", "stream_cut"),
        ("claude@anthropic", "ok"),
    ]
