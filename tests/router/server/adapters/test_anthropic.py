"""OpenAI → Anthropic request translation and Anthropic stream → OpenAI pieces."""

from __future__ import annotations

import json
from typing import Any

from router.core.outcomes import Outcome
from router.core.policy import Deployment, Price
from router.server.adapters.anthropic import AnthropicAdapter, AnthropicDecoder
from router.server.adapters.sse import SseEvent

DEPLOYMENT = Deployment(
    id="claude@anthropic",
    protocol="anthropic",
    base_url="https://api.anthropic.com",
    model="claude-sonnet-4-5",
    price=Price(input_per_mtok=3, output_per_mtok=15),
    context_window=200_000,
    region="us",
)


def test_messages_system_tools_and_tool_results_are_translated() -> None:
    body: dict[str, Any] = {
        "model": "default",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "stop": "END",
    }
    request = AnthropicAdapter().request(body, DEPLOYMENT)
    assert request.url == "https://api.anthropic.com/v1/messages"
    out = request.body
    assert out["system"] == "be brief" and out["stream"] is True and out["max_tokens"] == 4096
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Oslo"}}
    ]
    assert out["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": "sunny",
    }
    assert out["tools"] == [{"name": "w", "description": "", "input_schema": {"type": "object"}}]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["stop_sequences"] == ["END"]


def events(*payloads: dict[str, Any]) -> list[SseEvent]:
    return [SseEvent(p["type"], json.dumps(p)) for p in payloads]


def test_a_tool_use_stream_becomes_openai_tool_call_pieces() -> None:
    decoder = AnthropicDecoder()
    pieces = []
    for event in events(
        {"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 9}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 4},
        },
        {"type": "message_stop"},
    ):
        pieces.extend(decoder.feed(event))
    assert [p.delta for p in pieces if p.delta] == [
        {"content": "Hi"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "w", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]},
    ]
    assert pieces[-1].finish_reason == "tool_calls"
    assert decoder.complete and decoder.model == "claude-x"
    assert decoder.usage is not None and (
        decoder.usage.input_tokens,
        decoder.usage.output_tokens,
    ) == (9, 4)


def test_errors_are_classified_and_put_in_openai_shape() -> None:
    adapter = AnthropicAdapter()
    overloaded = adapter.error(
        529,
        {"retry-after": "2"},
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    )
    assert overloaded.outcome is Outcome.OVERLOADED and overloaded.retry_after_s == 2.0
    assert overloaded.body["error"]["code"] == "overloaded"
    filtered = adapter.error(
        400,
        {},
        b'{"type":"error","error":{"type":"invalid_request_error",'
        b'"message":"Output blocked by content filtering policy"}}',
    )
    assert filtered.outcome is Outcome.CONTENT_FILTER
    html = adapter.error(502, {}, b"<html>bad gateway</html>")
    assert html.outcome is Outcome.SERVER and html.body["error"]["message"]
    decoder = AnthropicDecoder()
    decoder.feed(
        SseEvent("error", '{"type":"error","error":{"type":"overloaded_error","message":"x"}}')
    )
    assert decoder.error is not None and decoder.error.outcome is Outcome.OVERLOADED
    assert not decoder.complete


def test_text_and_images_become_text_and_image_blocks() -> None:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
    ]
    body = {"model": "default", "messages": [{"role": "user", "content": content}]}
    sent = AnthropicAdapter().request(body, DEPLOYMENT).body
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}},
    ]
