"""Bedrock egress: the OpenAI SDK → gateway → fake Bedrock ConverseStream (binary event stream).

Each gateway test starts a fake world and a gateway and stops both. Faults come from the
model-name directive on the model id (`anthropic.claude-…-v1:0~server`).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import openai
import pytest

from fakes.server import eventstream
from router.core.outcomes import Outcome
from router.server.adapters.bedrock import BedrockAdapter, BedrockDecoder
from tests.router.server.gateway import WEATHER_TOOL, gateway
from tests.router.server.vendor_gateway import (
    PING,
    VENDOR,
    assert_plain_answer,
    assert_streamed_answer,
    assert_tool_calls,
    assert_weather_call,
    refuse,
    streamed,
    vendor_policy,
)

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
POLICY = vendor_policy(
    "bedrock", "https://bedrock-runtime.eu-west-1.amazonaws.com", MODEL, "AKIDEXAMPLE:s3cret"
)


def _on(fault: str) -> dict[str, str]:
    return {VENDOR: f"{MODEL}~{fault}"}


def test_request_is_sigv4_signed_for_bedrock_in_the_hosts_region() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [WEATHER_TOOL],
        "max_tokens": 30,
    }
    request = BedrockAdapter().request(body, POLICY.deployments[1])
    assert request.url.endswith(f"/model/{MODEL}/converse-stream")
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/bedrock/aws4_request" in authorization and "Signature=" in authorization
    assert "X-Amz-Date" in request.headers
    sent = request.body
    assert sent["system"] == [{"text": "be brief"}]
    assert sent["messages"][1]["content"][0]["toolUse"] == {
        "toolUseId": "call_1",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert sent["messages"][2]["content"][0]["toolResult"]["toolUseId"] == "call_1"
    assert sent["inferenceConfig"] == {"maxTokens": 30}
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"] == "object"


def test_frames_split_anywhere_decode_and_exceptions_classify() -> None:
    frames = (
        eventstream.event("messageStart", {"role": "assistant"})
        + eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
        + eventstream.event("messageStop", {"stopReason": "end_turn"})
        + eventstream.event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 1}})
    )
    decoder = BedrockDecoder()
    pieces = [
        piece for i in range(0, len(frames), 7) for piece in decoder.feed_bytes(frames[i : i + 7])
    ]
    assert [p.delta for p in pieces] == [{"content": "Hi"}, {}]
    assert pieces[-1].finish_reason == "stop" and decoder.done and decoder.complete
    assert decoder.usage is not None and decoder.usage.input_tokens == 3
    failing = BedrockDecoder()
    failing.feed_bytes(eventstream.exception("throttlingException", {"message": "slow down"}))
    assert failing.error is not None and failing.error.outcome is Outcome.RATE_LIMITED


def test_errors_are_named_by_x_amzn_errortype() -> None:
    adapter = BedrockAdapter()
    raw = json.dumps({"message": "Too many requests"}).encode()
    header = {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/"}
    assert adapter.error(429, header, raw).outcome is Outcome.RATE_LIMITED
    long = json.dumps({"message": "Input is too long for requested model."}).encode()
    validation = {"x-amzn-ErrorType": "ValidationException"}
    assert adapter.error(400, validation, long).outcome is Outcome.CONTEXT_LENGTH
    not_ready = {"x-amzn-ErrorType": "ModelNotReadyException"}
    assert adapter.error(429, not_ready, raw).outcome is Outcome.OVERLOADED


def test_plain_answer_names_bedrock_and_its_usage() -> None:
    _, tried = assert_plain_answer(POLICY)
    assert tried == [(VENDOR, "ok")]


def test_streamed_answer_with_usage() -> None:
    assert_streamed_answer(POLICY)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_comes_back_as_openai_tool_calls(stream: bool) -> None:
    call = assert_tool_calls(POLICY, stream=stream)
    if call is not None:
        assert call["id"].startswith("tooluse_")


def test_throttling_is_retried_with_backoff_then_the_429_surfaces() -> None:
    """Bedrock sends no retry hint: the engine's own backoff paces the three attempts."""
    with gateway(policy=POLICY, models=_on("rate_limited")) as gw:
        with pytest.raises(openai.RateLimitError) as raised:
            gw.client.chat.completions.create(model="vendor", messages=PING)
        assert raised.value.status_code == 429
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["type"] == "ThrottlingException"
        rows = gw.attempts()
        assert [row.outcome for row in rows] == ["rate_limited"] * 3
        assert all(b.start_s > a.end_s for a, b in itertools.pairwise(rows))


def test_5xx_is_retried_then_failed_over_to_openai() -> None:
    with gateway(policy=POLICY, models=_on("server")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        assert gw.tried() == [(VENDOR, "server")] * 3 + [("gpt@openai", "ok")]


def test_guardrail_intervened_is_a_content_filter_never_retried() -> None:
    with gateway(policy=POLICY, models=_on("content_filter")) as gw:
        with pytest.raises(openai.BadRequestError) as raised:
            gw.client.chat.completions.create(model="back", messages=PING)
        assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "content_filter"
        assert raised.value.response.headers["x-blastradius-reason"] == "content_filtered"
        assert gw.tried() == [(VENDOR, "content_filter")]


def test_guardrail_after_streamed_text_ends_with_an_in_band_error_not_success() -> None:
    """The canned text reached the client before `guardrail_intervened`: an in-band error."""
    with gateway(policy=POLICY, models=_on("content_filter")) as gw:
        with pytest.raises(openai.APIError, match="guardrail_intervened"):
            streamed(gw.client.chat.completions.create(model="back", messages=PING, stream=True))
        assert gw.tried() == [(VENDOR, "content_filter")]


def test_mid_stream_exception_frame_is_retried_then_failed_over() -> None:
    with gateway(policy=POLICY, models=_on("mid_stream_error")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        assert {outcome for _, outcome in gw.tried()[:-1]} == {"overloaded"}


@pytest.mark.parametrize("stream", [False, True])
def test_openai_down_bedrock_fallback_returns_openai_shaped_tool_calls(stream: bool) -> None:
    with gateway(policy=POLICY) as gw:
        refuse(gw.control, "gpt@openai")
        request: dict[str, Any] = {
            "model": "default",
            "messages": PING,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
        if stream:
            _, finish, _, calls = streamed(
                gw.client.chat.completions.create(**request, stream=True)
            )
            assert finish == "tool_calls" and json.loads(calls[0]["args"]) == {"city": "fake"}
        else:
            assert_weather_call(
                gw.client.chat.completions.create(**request).choices[0].message.tool_calls
            )
        assert gw.tried()[-1] == (VENDOR, "ok")


def test_text_and_inline_images_become_blocks_and_remote_images_are_dropped() -> None:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
    ]
    body = {"messages": [{"role": "user", "content": content}]}
    sent = BedrockAdapter().request(body, POLICY.deployments[1]).body
    assert sent["messages"][0]["content"] == [
        {"text": "what is this?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
    ]
