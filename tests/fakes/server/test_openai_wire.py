"""The OpenAI wire through the official `openai` SDK: answers, streams, tool calls, every error.

Each test talks to a real aiohttp server over HTTP with the synchronous SDK, so a pass
means the SDK cannot tell the fake from api.openai.com for that behaviour. The stream
fault tests also document what the SDK itself does with each broken stream, which is
what a router built on it will see.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from aiohttp import web
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from fakes.server.answers import answer_for
from fakes.server.openai_family import go_duration
from fakes.server.openai_wire import OpenAIWire
from fakes.server.wire import TOOL_RESULT_MARK, Call, ChatHandler, RateSnapshot, Wire
from router.core.tokens import count_prompt
from tests.fakes.server.harness import TOKEN, reply, running, serve_direct

MODELS = ("gpt-4o", "gpt-4o-mini")
QUESTION = "What is the weather in Paris?"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


def capturing(calls: list[Call]) -> ChatHandler:
    """`serve_direct` that also records each `Call` the wire parsed."""

    async def serve(request: web.Request, call: Call, wire: Wire) -> web.StreamResponse:
        calls.append(call)
        return await serve_direct(request, call, wire)

    return serve


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    return []


@pytest.fixture(scope="module")
def base_url(calls: list[Call]) -> Iterator[str]:
    app = web.Application()
    app.add_routes(OpenAIWire().routes(capturing(calls), MODELS))
    with running(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=f"{base_url}/v1", max_retries=0, timeout=5.0)


def test_completion_has_text_usage_and_ids(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER)
    choice = completion.choices[0]
    assert completion.id == f"chatcmpl-{TOKEN}"
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content and len(choice.message.content.split()) == 5
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 5


def test_call_counts_every_message_and_strips_the_directive(
    client: openai.OpenAI, calls: list[Call]
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Be brief."}, *USER]
    completion = client.chat.completions.create(
        model="gpt-4o~no_usage",
        messages=messages,
        max_completion_tokens=3,
    )
    call = calls[-1]
    assert (call.protocol, call.model, call.fault, call.max_tokens) == (
        "openai",
        "gpt-4o",
        "no_usage",
        3,
    )
    assert call.input_tokens == count_prompt([["Be brief."], [QUESTION]])
    assert call.prompt == f"Be brief.\n{QUESTION}"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.prompt_tokens == call.input_tokens


def test_stream_has_role_first_finish_last_then_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {chunk.id for chunk in chunks} == {f"chatcmpl-{TOKEN}"}
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * 6 + ["stop"]
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert len(text.split()) == 5


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


def test_stream_is_sse_ending_with_done(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"] == f"req_{TOKEN}"
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_tool_call_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[WEATHER],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (tool_call,) = choice.message.tool_calls or []
    assert isinstance(tool_call, ChatCompletionMessageFunctionToolCall)
    assert tool_call.id.startswith("call_") and len(tool_call.id) == 29
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "fake", "days": 1}


def test_streamed_tool_call_reassembles(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    fragments = [
        fragment
        for chunk in stream
        for fragment in (chunk.choices[0].delta.tool_calls or [])
        if chunk.choices
    ]
    first, *rest = fragments
    assert first.id and first.id.startswith("call_")
    assert first.function is not None and first.function.name == "get_weather"
    assert first.function.arguments == ""
    assert rest and all(f.id is None and f.function and f.function.name is None for f in rest)
    arguments = "".join(f.function.arguments or "" for f in rest if f.function)
    assert json.loads(arguments) == {"city": "fake", "days": 1}


def test_tool_result_gets_a_text_answer(client: openai.OpenAI, calls: list[Call]) -> None:
    history: list[ChatCompletionMessageParam] = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=history,
        tools=[WEATHER],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert calls[-1].prompt.endswith(TOOL_RESULT_MARK)
    pieces = [[QUESTION], ["get_weather", '{"city": "Paris"}'], ["sunny"]]
    assert calls[-1].input_tokens == count_prompt(pieces)


@pytest.mark.parametrize(
    ("fault", "exception", "status", "code"),
    [
        ("invalid_request", openai.BadRequestError, 400, None),
        ("context_length", openai.BadRequestError, 400, "context_length_exceeded"),
        ("blocked", openai.BadRequestError, 400, "invalid_prompt"),
        ("auth", openai.AuthenticationError, 401, "invalid_api_key"),
        ("model_gone", openai.NotFoundError, 404, "model_not_found"),
        ("rate_limited", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("server", openai.InternalServerError, 500, None),
        ("overloaded", openai.InternalServerError, 503, None),
        ("not_ready", openai.InternalServerError, 503, None),
    ],
)
def test_errors_surface_as_the_sdk_exception(
    client: openai.OpenAI,
    fault: str,
    exception: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=f"gpt-4o~{fault}", messages=USER)
    error = caught.value
    assert error.status_code == status
    assert error.code == code
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}
    assert error.response.headers["x-request-id"] == f"req_{TOKEN}"


def test_rate_limit_and_quota_differ_in_type_and_retry_hints(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o~rate_limited", messages=USER)
    with pytest.raises(openai.RateLimitError) as quota:
        client.chat.completions.create(model="gpt-4o~quota", messages=USER)
    assert limited.value.type == "requests"
    assert "Please try again in 2s" in limited.value.message
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.response.headers["retry-after-ms"] == "2000"
    assert quota.value.type == "insufficient_quota"
    assert "retry-after" not in quota.value.response.headers


def test_missing_key_is_401(client: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            extra_headers={"Authorization": ""},
        )
    assert "didn't provide an API key" in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "param", "code"),
    [
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content", "invalid_type"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"max_completion_tokens": "9"}, "max_completion_tokens", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"stream_options": {"include_usage": True}}, "stream_options", None),
        ({"tools": []}, "tools", "empty_array"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter"),
        (
            {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
            "tools[0].function.name",
            "invalid_value",
        ),
        ({"tool_choice": "auto"}, "tool_choice", None),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
        (
            {"messages": [*USER, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
            "messages.[1].role",
            None,
        ),
        (
            {
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_9",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "user", "content": "and?"},
                ]
            },
            "messages.[2].role",
            None,
        ),
    ],
)
def test_invalid_requests_name_the_field(
    client: openai.OpenAI, overrides: dict[str, Any], param: str, code: str | None
) -> None:
    body = {"model": "gpt-4o", "messages": USER, **overrides}
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)
    assert caught.value.param == param
    assert caught.value.code == code
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        ({"messages": USER}, "you must provide a model parameter", None, None),
        (
            {"model": "gpt-4o"},
            "Missing required parameter: 'messages'.",
            "messages",
            "missing_required_parameter",
        ),
    ],
)
def test_missing_required_fields(
    client: openai.OpenAI, body: dict[str, Any], message: str, param: str | None, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)
    assert caught.value.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


def test_unparseable_json_is_400(base_url: str) -> None:
    request = urllib.request.Request(
        f"{base_url}/v1/chat/completions",
        data=b"{not json",
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    body = json.loads(caught.value.read())
    assert caught.value.code == 400
    assert body["error"]["message"].startswith("We could not parse the JSON body")


def test_completion_stopped_by_the_filter(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o~completion_filter", messages=USER)
    stream = client.chat.completions.create(
        model="gpt-4o~completion_filter",
        messages=USER,
        stream=True,
    )
    assert completion.choices[0].finish_reason == "content_filter"
    assert list(stream)[-1].choices[0].finish_reason == "content_filter"


def test_mid_stream_error_raises_api_error_while_iterating(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o~mid_stream_error", messages=USER, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.message == "Overloaded"
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "server_error"
    assert len(received) == 3  # the role chunk and two tokens arrived before the error


def test_stream_cut_raises_connection_error(client: openai.OpenAI) -> None:
    """A TCP close mid-stream reaches SDK users as `APIConnectionError`, after partial text."""
    stream = client.chat.completions.create(model="gpt-4o~stream_cut", messages=USER, stream=True)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIConnectionError):
        received.extend(stream)
    assert received and all(chunk.choices[0].finish_reason is None for chunk in received)


def test_missing_done_is_invisible_to_the_sdk(client: openai.OpenAI) -> None:
    """Without `[DONE]` the SDK ends the stream quietly: only the finish_reason tells a router
    the answer is whole; a cut after the finish chunk looks like success."""
    chunks = list(
        client.chat.completions.create(model="gpt-4o~no_done", messages=USER, stream=True)
    )
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_missing_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o~no_usage",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


def test_malformed_chunk_raises_a_json_error_not_an_openai_error(client: openai.OpenAI) -> None:
    """The SDK does not wrap a chunk that fails to parse: callers get `json.JSONDecodeError`."""
    stream = client.chat.completions.create(model="gpt-4o~malformed", messages=USER, stream=True)
    with pytest.raises(json.JSONDecodeError):
        list(stream)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == list(MODELS)
    assert client.models.retrieve("gpt-4o-mini").owned_by == "system"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-2")
    assert caught.value.code == "model_not_found"


def test_rate_headers_and_retry_override() -> None:
    wire = OpenAIWire()
    rate = RateSnapshot(500, 499, 0.12, 30000, 29000, 360.0)
    call = Call(protocol="openai", model="gpt-4o", stream=False, input_tokens=9, prompt="hi")
    response = wire.complete(call, answer_for(call), reply(rate=rate, should_retry=False))
    assert response.headers["x-ratelimit-limit-requests"] == "500"
    assert response.headers["x-ratelimit-remaining-tokens"] == "29000"
    assert response.headers["x-ratelimit-reset-requests"] == "120ms"
    assert response.headers["x-ratelimit-reset-tokens"] == "6m0s"
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.02, "20ms"), (1, "1s"), (17.28, "17.28s"), (360, "6m0s"), (3725.5, "1h2m5.5s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
