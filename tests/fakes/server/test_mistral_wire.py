"""The Mistral wire through the `openai` SDK pointed at it, as OpenAI-compatible routers do.

Most tests pin where Mistral differs from OpenAI, since those differences are what a
router's cross-vendor fallback trips on: the 9-character tool-call ids (answered and
demanded), the flat error envelope, usage on the finishing chunk, `model_length`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from fakes.server.mistral_wire import MistralWire, valid_tool_call_id
from fakes.server.wire import Answer, Call, Finish
from tests.fakes.server.harness import direct_app, reply, running

MODELS = ("mistral-small-latest", "mistral-large-latest")
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Which region failed?"}]
PING: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "ping_region",
        "parameters": {
            "type": "object",
            "properties": {"region": {"type": "string"}},
            "required": ["region"],
        },
    },
}


def history(call_id: str, result_id: str) -> list[ChatCompletionMessageParam]:
    """A tool round trip whose ids came from some vendor."""
    return [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "ping_region", "arguments": '{"region": "eu"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": result_id, "content": "timeout"},
    ]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(direct_app(MistralWire(), MODELS)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="mistral-key", base_url=f"{base_url}/v1", max_retries=0, timeout=5.0
    )


def test_completion_shape(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="mistral-small-latest", messages=USER)
    assert re.fullmatch(r"[0-9a-f]{32}", completion.id)
    assert completion.model == "mistral-small-latest"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert completion.usage.prompt_tokens_details is None


def test_stream_puts_usage_on_the_finishing_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="mistral-small-latest", messages=USER, stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens == 5
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_stream_options_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="mistral-small-latest",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    assert isinstance(caught.value.body, dict) and caught.value.body["object"] == "error"


def test_answered_tool_call_ids_are_nine_alphanumerics(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="mistral-small-latest",
        messages=USER,
        tools=[PING],
        extra_body={"tool_choice": "any"},  # Mistral's word for "required"; not in the SDK's types
    )
    (tool_call,) = completion.choices[0].message.tool_calls or []
    assert isinstance(tool_call, ChatCompletionMessageFunctionToolCall)
    assert valid_tool_call_id(tool_call.id)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert json.loads(tool_call.function.arguments) == {"region": "fake"}


def test_streamed_tool_call_arrives_whole(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mistral-small-latest", messages=USER, tools=[PING], stream=True
    )
    fragments = [
        fragment
        for chunk in stream
        if chunk.choices
        for fragment in (chunk.choices[0].delta.tool_calls or [])
    ]
    (whole,) = fragments
    assert whole.id and valid_tool_call_id(whole.id)
    assert whole.function and whole.function.name == "ping_region"
    assert json.loads(whole.function.arguments or "") == {"region": "fake"}


@pytest.mark.parametrize(
    ("call_id", "result_id", "bad"),
    [
        ("call_abc123", "call_abc123", "call_abc123"),
        (
            "toolu_01A09q90qw90lq917835lq9",
            "toolu_01A09q90qw90lq917835lq9",
            "toolu_01A09q90qw90lq917835lq9",
        ),
        ("D681PevKs", "abc-12345", "abc-12345"),
        ("abcdefgh", "abcdefgh", "abcdefgh"),
    ],
)
def test_foreign_tool_call_ids_are_refused(
    client: openai.OpenAI, call_id: str, result_id: str, bad: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="mistral-small-latest", messages=history(call_id, result_id), tools=[PING]
        )
    assert caught.value.body == {
        "object": "error",
        "message": f"Tool call id was {bad} but must be a-z, A-Z, 0-9, with a length of 9.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_mistral_shaped_ids_get_a_text_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="mistral-small-latest", messages=history("D681PevKs", "D681PevKs"), tools=[PING]
    )
    assert completion.choices[0].finish_reason == "stop"


def test_unanswered_tool_calls_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="mistral-small-latest",
            messages=history("D681PevKs", "D681PevKs")[:2],
            tools=[PING],
        )
    assert "Not the same number of function calls and responses" in caught.value.message


def test_a_final_assistant_message_is_a_prefix_only_when_flagged(client: openai.OpenAI) -> None:
    partial = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="mistral-small-latest", messages=partial)
    assert "Expected last role User or Tool (or Assistant with prefix True)" in caught.value.message
    partial[-1]["prefix"] = True
    answer = client.chat.completions.create(model="mistral-small-latest", messages=partial)
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.choices[0].message.content or "").startswith(" ")  # carried on from "Hel"


@pytest.mark.parametrize(
    ("fault", "exception", "type_", "code"),
    [
        ("auth", openai.AuthenticationError, "unauthorized", None),
        ("model_gone", openai.NotFoundError, "invalid_model", "1500"),
        ("rate_limited", openai.RateLimitError, "rate_limited", "1300"),
        ("quota", openai.RateLimitError, "service_tier_capacity_exceeded", "3505"),
        ("context_length", openai.BadRequestError, "invalid_request_error", None),
        ("server", openai.InternalServerError, "internal_server_error", None),
        ("overloaded", openai.InternalServerError, "service_unavailable", None),
    ],
)
def test_errors_in_the_flat_envelope(
    client: openai.OpenAI,
    fault: str,
    exception: type[openai.APIStatusError],
    type_: str,
    code: str | None,
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=f"mistral-small-latest~{fault}", messages=USER)
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"object", "message", "type", "param", "code"}
    assert (body["object"], body["type"], body["code"]) == ("error", type_, code)


def test_rate_limit_sends_retry_after_only(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="mistral-small-latest~rate_limited", messages=USER)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert "retry-after-ms" not in headers and "x-request-id" not in headers


def test_blocked_prompt_is_an_ordinary_refusing_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="mistral-small-latest~blocked", messages=USER)
    chunks = list(
        client.chat.completions.create(
            model="mistral-small-latest~blocked", messages=USER, stream=True
        )
    )
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.choices[0].message.content or "").startswith("I'm sorry")
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == completion.choices[0].message.content


def test_mid_stream_error_raises_api_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mistral-small-latest~mid_stream_error", messages=USER, stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert caught.value.message == "Overloaded"


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        (Finish.CONTEXT, "model_length"),
        (Finish.LENGTH, "length"),
        (Finish.CONTENT_FILTER, "error"),
    ],
)
def test_finish_reasons(finish: Finish, reason: str) -> None:
    call = Call(
        protocol="mistral", model="mistral-small-latest", stream=False, input_tokens=9, prompt="hi"
    )
    response = MistralWire().complete(call, Answer(("cut", " short"), (), finish, 9, 2), reply())
    assert json.loads(response.text or "")["choices"][0]["finish_reason"] == reason


def test_models_list(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [model.id for model in models] == list(MODELS)
    assert models[0].owned_by == "mistralai"
    assert (models[0].model_extra or {})["capabilities"]["function_calling"] is True
