"""Mistral egress: the OpenAI SDK → gateway → fake Mistral, 9-character tool-call ids included.

Each gateway test starts a fake world and a gateway and stops both. The fake Mistral
answers 400 to any history whose tool-call ids are not exactly 9 alphanumerics, as the
real one does, so a history of OpenAI `call_…` ids that succeeds proves the translation.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import openai
import pytest

from router.core.outcomes import Outcome
from router.server.adapters.mistral import (
    MistralAdapter,
    MistralDecoder,
    mistral_id,
    valid_tool_call_id,
)
from router.server.adapters.sse import SseEvent
from tests.router.server.gateway import WEATHER_TOOL, call_json, gateway
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

MODEL = "mistral-large-latest"
POLICY = vendor_policy("mistral", "https://api.mistral.ai/v1", MODEL, "m-1")

OPENAI_HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "weather in Oslo and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{city}Xq81bT7w",
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
            }
            for city in ("Oslo", "Rome")
        ],
    },
    {"role": "tool", "tool_call_id": "call_OsloXq81bT7w", "content": "sunny"},
    {"role": "tool", "tool_call_id": "call_RomeXq81bT7w", "content": "rain"},
]


def _on(fault: str) -> dict[str, str]:
    return {VENDOR: f"{MODEL}~{fault}"}


def test_ids_become_deterministic_9_alphanumerics_and_pairs_still_match() -> None:
    request = MistralAdapter().request(
        {"model": "vendor", "messages": OPENAI_HISTORY, "max_completion_tokens": 9, "seed": 4},
        POLICY.deployments[1],
    )
    sent = request.body
    call_ids = [call["id"] for call in sent["messages"][1]["tool_calls"]]
    result_ids = [m["tool_call_id"] for m in sent["messages"][2:]]
    assert call_ids == result_ids and all(valid_tool_call_id(i) for i in call_ids)
    assert len(set(call_ids)) == 2 and call_ids[0] == mistral_id("call_OsloXq81bT7w")
    assert mistral_id("abcDEF123") == "abcDEF123"  # already valid: unchanged
    assert "stream_options" not in sent and "max_completion_tokens" not in sent
    assert sent["max_tokens"] == 9 and sent["random_seed"] == 4 and "seed" not in sent


def test_decoder_restores_client_ids_and_maps_mistral_finishes() -> None:
    short = mistral_id("call_abc")
    decoder = MistralDecoder({short: "call_abc"})
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "id": short, "function": {"name": "f"}}]},
                "finish_reason": "model_length",
            }
        ]
    }
    pieces = decoder.feed(SseEvent("", json.dumps(chunk)))
    assert pieces[0].delta["tool_calls"][0]["id"] == "call_abc"
    assert pieces[-1].finish_reason == "length"
    failed = MistralDecoder()
    failed.feed(SseEvent("", json.dumps({"choices": [{"delta": {}, "finish_reason": "error"}]})))
    assert failed.error is not None and failed.error.outcome is Outcome.SERVER


def test_flat_error_envelope_maps_to_outcomes() -> None:
    adapter = MistralAdapter()
    limited = {"object": "error", "message": "Rate limit exceeded", "type": "rate_limited"}
    error = adapter.error(429, {"retry-after": "2"}, json.dumps(limited).encode())
    assert (error.outcome, error.retry_after_s) == (Outcome.RATE_LIMITED, 2.0)
    assert error.body["error"]["code"] == "rate_limit_exceeded"
    bare = adapter.error(503, {}, b'{"message": "This model is currently overloaded."}')
    assert bare.outcome is Outcome.OVERLOADED


def test_plain_answer_names_mistral_and_its_usage() -> None:
    answer, _ = assert_plain_answer(POLICY)
    assert answer.model == MODEL


def test_streamed_answer_with_usage_though_mistral_refuses_stream_options() -> None:
    assert_streamed_answer(POLICY)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_plain_and_streamed(stream: bool) -> None:
    call = assert_tool_calls(POLICY, stream=stream)
    if call is not None:
        assert valid_tool_call_id(call["id"])


def test_a_history_of_openai_call_ids_succeeds_on_mistral() -> None:
    """The fake Mistral refuses these ids sent as they are; through the gateway they pass."""
    with gateway(policy=POLICY) as gw:
        world = call_json("GET", gw.control + "/world")[1]
        direct = openai.OpenAI(
            base_url=world["deployments"][VENDOR]["base_url"], api_key="m-1", max_retries=0
        )
        try:
            with pytest.raises(openai.BadRequestError, match="must be a-z, A-Z, 0-9"):
                direct.chat.completions.create(
                    model=MODEL, messages=OPENAI_HISTORY, tools=[WEATHER_TOOL]
                )
        finally:
            direct.close()
        answer = gw.client.chat.completions.create(
            model="vendor", messages=OPENAI_HISTORY, tools=[WEATHER_TOOL]
        )
        assert answer.choices[0].message.content and answer.choices[0].finish_reason == "stop"
        assert gw.tried() == [(VENDOR, "ok")]


def test_429_retry_after_is_waited_out_then_failed_over() -> None:
    with gateway(policy=POLICY, models=_on("rate_limited-0.3")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        rows = [row for row in gw.attempts() if row.deployment == VENDOR]
        assert [row.outcome for row in rows] == ["rate_limited"] * 3
        gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(rows)]
        assert all(gap >= 0.3 for gap in gaps), gaps  # Mistral rounds up to whole seconds


def test_5xx_with_nothing_left_surfaces_mistrals_error() -> None:
    with gateway(policy=POLICY, models=_on("server")) as gw:
        with pytest.raises(openai.InternalServerError) as raised:
            gw.client.chat.completions.create(model="vendor", messages=PING)
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["type"] == "internal_server_error"
        assert gw.tried() == [(VENDOR, "server")] * 3


def test_prompt_mistral_declines_is_an_ordinary_answer() -> None:
    """Mistral has no prompt filter: the fake's `content_filter` is a polite refusal (200)."""
    with gateway(policy=POLICY, models=_on("content_filter")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == MODEL and "can't help" in (answer.choices[0].message.content or "")
        assert gw.tried() == [(VENDOR, "ok")]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_down_mistral_fallback_takes_the_openai_history(stream: bool) -> None:
    """Primary refused; Mistral answers a conversation of `call_…` ids with a new tool call."""
    with gateway(policy=POLICY) as gw:
        refuse(gw.control, "gpt@openai")
        request: dict[str, Any] = {
            "model": "default",
            "messages": [*OPENAI_HISTORY, {"role": "user", "content": "and Paris?"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
        }
        if stream:
            _, finish, _, calls = streamed(
                gw.client.chat.completions.create(**request, stream=True)
            )
            assert finish == "tool_calls" and json.loads(calls[0]["args"]) == {"city": "fake"}
        else:
            answer = gw.client.chat.completions.create(**request)
            assert answer.model == MODEL
            assert_weather_call(answer.choices[0].message.tool_calls)
        assert gw.tried()[-1] == (VENDOR, "ok")
