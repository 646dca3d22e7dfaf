"""OpenAI passthrough: the upstream request, chunk decoding and error classification."""

from __future__ import annotations

from router.core.outcomes import Outcome
from router.core.policy import Deployment, Price
from router.server.adapters.openai import OpenAIAdapter, OpenAIDecoder
from router.server.adapters.sse import SseEvent, SseParser

DEPLOYMENT = Deployment(
    id="gpt@openai",
    protocol="openai",
    base_url="https://api.openai.com/v1/",
    model="gpt-4o",
    api_key="sk-1",
    price=Price(input_per_mtok=2.5, output_per_mtok=10),
    context_window=128_000,
    region="us",
)


def test_the_route_becomes_the_deployment_model_and_the_call_streams_with_usage() -> None:
    request = OpenAIAdapter().request(
        {"model": "default", "messages": [], "stream": False, "seed": 3}, DEPLOYMENT
    )
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-1"
    assert request.body == {
        "model": "gpt-4o",
        "messages": [],
        "seed": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_chunks_malformed_data_and_done() -> None:
    parser, decoder = SseParser(), OpenAIDecoder()
    raw = (
        b'data: {"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"choices": [{"delta": {"content": "\n\n'
        b": keep-alive comment\n\n"
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\n'
        b"data: [DONE]\n\n"
    )
    pieces = []
    for line in raw.splitlines(keepends=True):
        event = parser.line(line)
        if event is not None:
            pieces.extend(decoder.feed(event))
    assert [p.delta for p in pieces] == [{"content": "Hi"}, {}]
    assert pieces[-1].finish_reason == "stop"
    assert decoder.malformed == 1 and decoder.done and decoder.complete
    assert decoder.usage is not None and decoder.usage.input_tokens == 5


def test_errors_keep_the_vendor_code_and_retry_after() -> None:
    adapter = OpenAIAdapter()
    limited = adapter.error(
        429,
        {"retry-after-ms": "250"},
        b'{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}',
    )
    assert limited.outcome is Outcome.RATE_LIMITED and limited.retry_after_s == 0.25
    quota = adapter.error(429, {}, b'{"error":{"message":"q","type":"insufficient_quota"}}')
    assert quota.outcome is Outcome.AUTH
    flagged = adapter.error(400, {}, b'{"error":{"message":"m","code":"invalid_prompt"}}')
    assert flagged.outcome is Outcome.CONTENT_FILTER
    decoder = OpenAIDecoder()
    decoder.feed(SseEvent("", '{"error":{"message":"Overloaded","type":"server_error"}}'))
    assert decoder.error is not None and decoder.error.outcome is Outcome.SERVER
