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
from collections.abc import Iterator
from contextlib import contextmanager
from random import Random
from typing import Any

import openai
import pytest
import yaml
from aiohttp import web
from aiohttp.typedefs import Handler
from openai import Stream
from openai.types.chat import ChatCompletionChunk

from fakes.server.world import FakeWorld
from router.core.policy import policy_from_data
from router.core.trace import TraceRecorder
from router.server import create_app
from tests.fakes.server.harness import SERVED_LOOP, running, running_world
from tests.router.server.gateway import POLICY, gateway, load_policy
from tests.router.server.test_app import PING, stream_text
from tests.router.server.vendor_gateway import VENDOR, vendor_policy

CONTINUE = {"after_first_byte": "continue"}


def test_a_stream_cut_after_bytes_reached_the_client_is_carried_on_by_the_fallback() -> None:
    with gateway(
        models={"gpt@openai": "gpt-4o~stream_cut-3"}, policy=load_policy(streaming=CONTINUE)
    ) as gw:
        stream = gw.client.chat.completions.create(
            model="default", messages=PING, stream=True, stream_options={"include_usage": True}
        )
        text, finish, usage = stream_text(stream)
        assert finish == "stop"
        # The primary's three words, then the fallback's twelve, carried on from them (a
        # fallback not given the prefill would start its answer without the space).
        assert len(text.split()) == 3 + 12 and "  " not in text
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("claude@anthropic", "ok")]
        rows = gw.attempts()
        assert [row.reason for row in rows] == ["", "continuation"]
        assert rows[0].output_tokens == 3
        # The client's usage is the answer's bill on both deployments.
        assert usage.completion_tokens == 3 + 12
        assert usage.prompt_tokens == rows[0].input_tokens + rows[1].input_tokens
        assert rows[1].input_tokens > rows[0].input_tokens  # the prefill is billed as input


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


FALLBACKS = [
    ("anthropic", "https://api.anthropic.com", "claude-sonnet-4-5", None),
    ("mistral", "https://api.mistral.ai/v1", "mistral-small-latest", None),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash", None),
    ("bedrock", "https://bedrock-runtime.eu-west-1.amazonaws.com",
     "anthropic.claude-3-5-sonnet-20240620-v1:0", None),
    ("azure-openai", "https://res.openai.azure.com", "gpt4o-prod", "2024-10-21"),
]  # fmt: skip


@pytest.mark.parametrize(("protocol", "base_url", "model", "api_version"), FALLBACKS)
def test_every_vendor_carries_on_in_its_own_dialect(
    protocol: str, base_url: str, model: str, api_version: str | None
) -> None:
    """The prefill reaches each vendor as its API wants it (Mistral's refuses a final
    assistant turn without `prefix`; Anthropic's a prefill ending in whitespace), and
    each carries the answer on: the client gets one answer, no word repeated or run
    together."""
    policy = vendor_policy(
        protocol, base_url, model, "key-1", api_version=api_version, streaming=CONTINUE
    )
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-2"}, policy=policy) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert finish == "stop" and len(text.split()) == 2 + 12 and "  " not in text
        assert gw.tried() == [("gpt@openai", "stream_cut"), (VENDOR, "ok")]


def _chunk(delta: dict[str, Any]) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    body = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0,
            "model": "gpt-4o", "choices": [choice]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _breaks_after(*deltas: dict[str, Any]) -> Handler:
    """An upstream that streams `deltas` as chunks, then drops the connection."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta in deltas:
            await response.write(_chunk(delta))
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
        return response

    return handle


@contextmanager
def _one_stream_behind(
    primary: Handler, fallback_url: str
) -> Iterator[tuple[Stream[ChatCompletionChunk], TraceRecorder]]:
    """A gateway that continues broken answers, its primary served by `primary` and its
    fallback at `fallback_url`: one streamed request's stream, and the gateway's trace."""
    data = yaml.safe_load(POLICY)
    data["resilience"]["streaming"] = CONTINUE
    upstream = web.Application()
    upstream.router.add_post("/v1/chat/completions", primary)
    with running(upstream) as broken:
        data["deployments"][0]["base_url"] = broken + "/v1"
        data["deployments"][1]["base_url"] = fallback_url
        trace = TraceRecorder()
        app = create_app(policy_from_data(data, source="test", env={}), trace=trace, rng=Random(3))
        with running(app, SERVED_LOOP) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=15)
            try:
                stream = client.chat.completions.create(
                    model="default",
                    messages=PING,  # type: ignore[arg-type]
                    stream=True,
                )
                yield stream, trace
            finally:
                client.close()


TOOL_CALL_START = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"ci'},
}


def test_a_tool_call_under_way_is_never_continued() -> None:
    """No provider can finish another's half-sent tool call: an in-band error, no fallback."""
    primary = _breaks_after(
        {"role": "assistant", "content": "Checking"}, {"tool_calls": [TOOL_CALL_START]}
    )
    never = "http://127.0.0.1:9/never-called"
    with (
        _one_stream_behind(primary, never) as (stream, trace),
        pytest.raises(openai.APIError) as raised,
    ):
        stream_text(stream)
    assert "stream_cut" in raised.value.message
    assert [(row.deployment, row.outcome) for row in trace.attempts] == [
        ("gpt@openai", "stream_cut")
    ]


def test_whitespace_the_client_has_is_neither_sent_as_prefill_nor_repeated() -> None:
    """Anthropic refuses a prefill ending in whitespace; the continuation's own leading
    space is dropped, since the client already has one."""
    data = yaml.safe_load(POLICY)
    primary = _breaks_after({"role": "assistant", "content": "Hello"}, {"content": " there "})
    world = FakeWorld(policy_from_data(data, source="test", env={}), seed=5)
    with running_world(world) as ready:
        fallback = ready["deployments"]["claude@anthropic"]["base_url"]
        with _one_stream_behind(primary, fallback) as (stream, trace):
            text, finish, _ = stream_text(stream)
    assert finish == "stop"
    assert text.startswith("Hello there ") and "  " not in text
    assert len(text.split()) == 2 + 12
    assert [(row.deployment, row.outcome) for row in trace.attempts] == [
        ("gpt@openai", "stream_cut"),
        ("claude@anthropic", "ok"),
    ]
