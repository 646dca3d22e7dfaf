"""The Anthropic wire through the official `anthropic` SDK: if the SDK parses it, so would a router.

Each test talks to a fake served by `direct_app`, so the fault named in the model
(`fake-model~rate_limited`) picks the response. Requests the SDK refuses to build
(no `max_tokens`, no key) are sent with urllib instead.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam, ToolChoiceParam, ToolParam

from fakes.server.anthropic_wire import AnthropicWire
from fakes.server.wire import ErrorKind, RateSnapshot
from router.core.tokens import count_prompt
from tests.fakes.server.harness import TOKEN, direct_app, reply, running

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
HELLO: list[MessageParam] = [{"role": "user", "content": "hello"}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
CLOCK: ToolParam = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running(direct_app(AnthropicWire(), models=("fake-model", "fake-haiku"))) as base:
        yield base


@pytest.fixture
def client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=url, max_retries=0, timeout=5.0)


def post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST raw JSON to `/v1/messages`; returns status and the decoded body."""
    sent = {"x-api-key": "k", "anthropic-version": "2023-06-01", **(headers or {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/v1/messages", data=data, headers={k: v for k, v in sent.items() if v}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as failed:
        return failed.code, json.loads(failed.read())


def raw_events(client: anthropic.Anthropic, model: str = "fake-model") -> list[tuple[str, Any]]:
    """The stream's SSE events as (name, data) pairs, pings included."""
    with client.messages.with_streaming_response.create(
        model=model, max_tokens=100, messages=HELLO, stream=True
    ) as response:
        text = response.read().decode()
    events = []
    for block in text.strip().split("\n\n"):
        name, data = block.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_plain_message_has_text_usage_and_ids(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="fake-model", max_tokens=100, system="Be brief.", messages=HELLO
    )
    assert message.id == f"msg_{TOKEN}"
    assert message._request_id == f"req_{TOKEN}"
    assert message.model == "fake-model"
    assert message.stop_reason == "end_turn"
    assert len(message.content) == 1 and message.content[0].type == "text"
    assert len(message.content[0].text.split()) == 5
    assert message.usage.input_tokens == count_prompt([["Be brief."], ["hello"]])
    assert message.usage.output_tokens == 5


def test_max_tokens_cuts_the_answer(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="fake-model", max_tokens=2, messages=HELLO)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_stream_helper_matches_plain_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="fake-model", max_tokens=100, messages=HELLO)
    with client.messages.stream(model="fake-model", max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert plain.content[0].type == "text"
    assert text == plain.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == 5


def test_stream_event_sequence_is_anthropics(client: anthropic.Anthropic) -> None:
    names = [name for name, _ in raw_events(client)]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_stream_message_start_and_delta_carry_usage(client: anthropic.Anthropic) -> None:
    events = dict(raw_events(client))
    assert events["message_start"]["message"]["usage"]["input_tokens"] == count_prompt([["hello"]])
    assert events["message_delta"]["usage"]["output_tokens"] == 5
    assert events["message_delta"]["delta"]["stop_reason"] == "end_turn"


def test_create_stream_true_yields_typed_events(client: anthropic.Anthropic) -> None:
    stream = client.messages.create(model="fake-model", max_tokens=100, messages=HELLO, stream=True)
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "ping" not in kinds


@pytest.mark.parametrize(
    ("fault", "has_usage", "has_stop"),
    [("no_usage", False, True), ("no_done", True, False)],
)
def test_stream_faults_drop_usage_or_terminator(
    client: anthropic.Anthropic, fault: str, has_usage: bool, has_stop: bool
) -> None:
    events = dict(raw_events(client, f"fake-model~{fault}"))
    assert ("usage" in events["message_delta"]) is has_usage
    assert ("message_stop" in events) is has_stop


def test_tool_use_input_is_an_object(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="fake-model", max_tokens=100, messages=HELLO, tools=[WEATHER]
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == {"city": "fake", "days": 1}
    assert re.fullmatch(r"toolu_[a-z0-9]{24}", block.id)


def test_streamed_tool_use_reassembles_from_json_deltas(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="fake-model", max_tokens=100, messages=HELLO, tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use"
    assert block.input == {"city": "fake", "days": 1}
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ({"type": "auto"}, "get_weather"),
        ({"type": "any"}, "get_weather"),
        ({"type": "tool", "name": "get_time"}, "get_time"),
        ({"type": "none"}, None),
    ],
)
def test_tool_choice_picks_the_tool(
    client: anthropic.Anthropic, tool_choice: ToolChoiceParam, expected: str | None
) -> None:
    message = client.messages.create(
        model="fake-model",
        max_tokens=100,
        messages=HELLO,
        tools=[WEATHER, CLOCK],
        tool_choice=tool_choice,
    )
    called = [block.name for block in message.content if block.type == "tool_use"]
    assert called == ([expected] if expected else [])


def test_tool_result_round_trip_ends_in_text(client: anthropic.Anthropic) -> None:
    first = client.messages.create(
        model="fake-model", max_tokens=100, messages=HELLO, tools=[WEATHER]
    )
    use = first.content[0]
    assert use.type == "tool_use"
    follow_up: list[Any] = [
        *HELLO,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]
    second = client.messages.create(
        model="fake-model", max_tokens=100, messages=follow_up, tools=[WEATHER]
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


@pytest.mark.parametrize(
    ("fault", "error_class", "status", "error_type"),
    [
        ("invalid_request", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("context_length", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("content_filter", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("auth", anthropic.AuthenticationError, 401, "authentication_error"),
        ("model_gone", anthropic.NotFoundError, 404, "not_found_error"),
        ("rate_limited", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("quota", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("server", anthropic.InternalServerError, 500, "api_error"),
        ("overloaded", anthropic.InternalServerError, 529, "overloaded_error"),
        ("not_ready", anthropic.InternalServerError, 529, "overloaded_error"),
    ],
)
def test_errors_raise_the_sdks_class(
    client: anthropic.Anthropic,
    fault: str,
    error_class: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    with pytest.raises(error_class) as caught:
        client.messages.create(model=f"fake-model~{fault}", max_tokens=100, messages=HELLO)
    error = caught.value
    assert error.status_code == status
    assert error.request_id == f"req_{TOKEN}"
    assert isinstance(error.body, dict)
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == error_type
    assert error.body["request_id"] == f"req_{TOKEN}"


def test_overload_is_the_sdks_529_class(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model="fake-model~overloaded", max_tokens=100, messages=HELLO)


def test_context_length_says_prompt_is_too_long(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        client.messages.create(model="fake-model~context_length", max_tokens=100, messages=HELLO)


def test_rate_limit_carries_retry_after_and_rfc3339_resets(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="fake-model~rate_limited", max_tokens=100, messages=HELLO)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    for family in ("requests", "tokens"):
        assert int(headers[f"anthropic-ratelimit-{family}-limit"]) > 0
        assert int(headers[f"anthropic-ratelimit-{family}-remaining"]) >= 0
        assert RFC3339.match(headers[f"anthropic-ratelimit-{family}-reset"])
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_quota_is_a_spend_limit_without_retry_after(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as caught:
        client.messages.create(model="fake-model~quota", max_tokens=100, messages=HELLO)
    assert "retry-after" not in caught.value.response.headers
    assert caught.value.error_code == "enforced_spend_limit_reached"


@pytest.mark.parametrize("helper", [False, True])
def test_mid_stream_error_raises_while_iterating(client: anthropic.Anthropic, helper: bool) -> None:
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        if helper:
            with client.messages.stream(
                model="fake-model~mid_stream_error", max_tokens=100, messages=HELLO
            ) as stream:
                received.extend(stream.text_stream)
        else:
            for event in client.messages.create(
                model="fake-model~mid_stream_error", max_tokens=100, messages=HELLO, stream=True
            ):
                received.append(event.type)
    assert received, "the error must come after the stream started"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_cut_stream_is_a_connection_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        for _ in client.messages.create(
            model="fake-model~stream_cut", max_tokens=100, messages=HELLO, stream=True
        ):
            pass


def test_rate_state_becomes_headers_with_rfc3339_resets() -> None:
    rate = RateSnapshot(
        limit_requests=1000,
        remaining_requests=0,
        reset_requests_s=3.2,
        limit_tokens=80_000,
        remaining_tokens=12_345,
        reset_tokens_s=61.0,
    )
    response = AnthropicWire().error(
        ErrorKind.RATE_LIMITED, reply(rate=rate, now_epoch=1_767_225_600.0), retry_after_s=3.2
    )
    assert response.status == 429
    assert response.headers["retry-after"] == "4"
    assert response.headers["anthropic-ratelimit-requests-limit"] == "1000"
    assert response.headers["anthropic-ratelimit-tokens-remaining"] == "12345"
    assert response.headers["anthropic-ratelimit-requests-reset"] == "2026-01-01T00:00:04Z"
    assert response.headers["anthropic-ratelimit-tokens-reset"] == "2026-01-01T00:01:01Z"


def test_malformed_event_breaks_the_stream(client: anthropic.Anthropic) -> None:
    with pytest.raises(ValueError):
        for _ in client.messages.create(
            model="fake-model~malformed", max_tokens=100, messages=HELLO, stream=True
        ):
            pass


def test_blocked_prompt_is_a_200_refusal(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="fake-model~blocked", max_tokens=100, messages=HELLO)
    assert message.stop_reason == "refusal"
    assert message.content == []
    assert message.stop_details is not None and message.stop_details.type == "refusal"
    assert message.usage.output_tokens == 0


def test_streamed_blocked_prompt_is_a_refusal(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="fake-model~blocked", max_tokens=100, messages=HELLO
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.content == []


def test_completion_filter_stops_with_refusal(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="fake-model~completion_filter", max_tokens=100, messages=HELLO
    )
    assert message.stop_reason == "refusal"


def test_model_listing(client: anthropic.Anthropic) -> None:
    assert [model.id for model in client.models.list()] == ["fake-model", "fake-haiku"]


@pytest.mark.parametrize(
    ("headers", "status", "error_type", "message"),
    [
        ({"x-api-key": ""}, 401, "authentication_error", "x-api-key header is required"),
        ({"anthropic-version": ""}, 400, "invalid_request_error", "anthropic-version:"),
    ],
)
def test_headers_are_checked_first(
    url: str, headers: dict[str, str], status: int, error_type: str, message: str
) -> None:
    code, body = post(url, {"model": "fake-model", "max_tokens": 9, "messages": HELLO}, headers)
    assert code == status
    assert body["error"]["type"] == error_type
    assert body["error"]["message"].startswith(message)


def test_bearer_token_is_accepted(url: str) -> None:
    body = {"model": "fake-model", "max_tokens": 9, "messages": HELLO}
    code, _ = post(url, body, {"x-api-key": "", "Authorization": "Bearer token"})
    assert code == 200


def _tool_turns(result_id: str, *, answered: bool = True) -> list[Any]:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    reply = [{"type": "tool_result", "tool_use_id": result_id, "content": "ok"}]
    follow_up = {"role": "user", "content": reply if answered else "and?"}
    return [*HELLO, {"role": "assistant", "content": [use]}, follow_up]


def said(content: object) -> list[dict[str, object]]:
    """One user turn with `content`."""
    return [{"role": "user", "content": content}]


TEXT_ENDING_IN_SPACE = {"type": "text", "text": "Hel\n"}
STRAY_RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]}
VALID: dict[str, Any] = {"model": "fake-model", "max_tokens": 9, "messages": HELLO}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": None}, "model:"),
        ({"max_tokens": None}, "max_tokens:"),
        ({"max_tokens": 0}, "max_tokens:"),
        ({"max_tokens": "9"}, "max_tokens:"),
        ({"messages": None}, "messages:"),
        ({"messages": []}, "messages:"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role:"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role:"),
        ({"messages": said("")}, "messages.0:"),
        ({"messages": said([{"type": "odd"}])}, "messages.0.content.0:"),
        ({"messages": said([{"type": "text"}])}, "messages.0.content.0.text"),
        ({"messages": [STRAY_RESULT]}, "messages.0.content:"),
        ({"messages": _tool_turns("toolu_1", answered=False)}, "messages.1:"),
        ({"messages": _tool_turns("toolu_2")}, "messages.1:"),
        ({"system": 5}, "system:"),
        ({"system": [{"type": "image"}]}, "system.0.type:"),
        ({"tools": [{"name": "t"}]}, "tools.0.custom.input_schema:"),
        ({"tool_choice": {"type": "maybe"}}, "tool_choice.type:"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.tool.name:"),
        ({"stream": "yes"}, "stream:"),
        ({"messages": [*HELLO, {"role": "assistant", "content": "Hel "}]}, "messages: final"),
        ({"messages": [*HELLO, {"role": "assistant", "content": [TEXT_ENDING_IN_SPACE]}]},
         "messages: final"),
    ],
)  # fmt: skip
def test_invalid_requests_name_the_field(url: str, change: dict[str, Any], field: str) -> None:
    body = {key: value for key, value in {**VALID, **change}.items() if value is not None}
    code, answer = post(url, body)
    assert code == 400
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["message"].startswith(field)
    assert answer["request_id"].startswith("req_")


def test_body_that_is_not_json_is_a_400(url: str) -> None:
    code, answer = post(url, b"{not json")
    assert code == 400
    assert answer["error"]["type"] == "invalid_request_error"


def test_consecutive_user_turns_are_merged_not_refused(url: str) -> None:
    body = {**VALID, "messages": [*HELLO, {"role": "user", "content": "again"}]}
    code, answer = post(url, body)
    assert code == 200
    assert answer["usage"]["input_tokens"] == count_prompt([["hello"], ["again"]])


def test_final_assistant_prefill_is_carried_on_from(url: str) -> None:
    body = {**VALID, "messages": [*HELLO, {"role": "assistant", "content": "Hello"}]}
    code, answer = post(url, body)
    assert code == 200 and answer["content"][0]["type"] == "text"
    assert answer["content"][0]["text"].startswith(" ")  # its next word, after "Hello"


def test_final_assistant_prefill_may_be_empty(url: str) -> None:
    body = {**VALID, "messages": [*HELLO, {"role": "assistant", "content": ""}]}
    code, _ = post(url, body)
    assert code == 200
