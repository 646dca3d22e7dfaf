"""Gemini egress: the OpenAI SDK → gateway → fake Gemini (`streamGenerateContent?alt=sse`).

Each gateway test starts a fake world and a gateway and stops both. Faults come from the
model-name directive (`gemini-2.5-flash~rate_limited-0.3`) or the control API.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import openai
import pytest

from router.core.outcomes import Outcome
from router.server.adapters.gemini import GeminiAdapter, GeminiDecoder
from router.server.adapters.sse import SseEvent
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

MODEL = "gemini-2.5-flash"
POLICY = vendor_policy("gemini", "https://generativelanguage.googleapis.com/v1beta", MODEL, "g-1")


def _on(fault: str) -> dict[str, str]:
    return {VENDOR: f"{MODEL}~{fault}"}


# -- translation, without a server ------------------------------------------------------


def test_request_shape_system_tools_and_a_tool_result_named_by_its_call() -> None:
    deployment = POLICY.deployments[1]
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
            {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "max_tokens": 20,
    }
    request = GeminiAdapter().request(body, deployment)
    assert request.url.endswith(f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
    assert request.headers["x-goog-api-key"] == "g-1"
    sent = request.body
    assert sent["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][1]["parts"][0]["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "Oslo"},
    }
    assert sent["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"sky": "clear"},
    }
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["generationConfig"] == {"maxOutputTokens": 20}


def test_prompt_block_and_error_bodies_map_to_outcomes() -> None:
    decoder = GeminiDecoder()
    decoder.feed(SseEvent("", json.dumps({"promptFeedback": {"blockReason": "SAFETY"}})))
    assert decoder.error is not None and decoder.error.outcome is Outcome.CONTENT_FILTER
    adapter = GeminiAdapter()
    limited = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "quota",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}
            ],
        }
    }
    error = adapter.error(429, {}, json.dumps(limited).encode())
    assert (error.outcome, error.retry_after_s) == (Outcome.RATE_LIMITED, 34.4)
    bad_key = {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "message": "API key not valid.",
            "details": [{"reason": "API_KEY_INVALID"}],
        }
    }
    assert adapter.error(400, {}, json.dumps(bad_key).encode()).outcome is Outcome.AUTH


# -- through the gateway ------------------------------------------------------------------


def test_plain_answer_names_gemini_and_its_usage() -> None:
    answer, tried = assert_plain_answer(POLICY)
    assert answer.model == MODEL
    assert tried == [(VENDOR, "ok")]


def test_streamed_answer_with_usage() -> None:
    assert_streamed_answer(POLICY)


@pytest.mark.parametrize("stream", [False, True])
def test_function_calls_come_back_as_openai_tool_calls(stream: bool) -> None:
    call = assert_tool_calls(POLICY, stream=stream)
    if call is not None:
        assert call["id"].startswith("call_") and call["name"] == "get_weather"


def test_429_retry_info_is_waited_out_and_the_error_surfaces() -> None:
    with gateway(policy=POLICY, models=_on("rate_limited-0.3")) as gw:
        with pytest.raises(openai.RateLimitError) as raised:
            gw.client.chat.completions.create(model="vendor", messages=PING)
        assert raised.value.status_code == 429
        rows = gw.attempts()
        assert [row.outcome for row in rows] == ["rate_limited"] * 3
        gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(rows)]
        assert all(gap >= 0.3 for gap in gaps), gaps


def test_5xx_is_retried_then_failed_over_to_openai() -> None:
    with gateway(policy=POLICY, models=_on("server")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        assert gw.tried() == [(VENDOR, "server")] * 3 + [("gpt@openai", "ok")]


@pytest.mark.parametrize("fault", ["content_filter", "completion_filter"])
def test_blocked_prompt_or_safety_stop_is_a_content_filter_never_retried(fault: str) -> None:
    with gateway(policy=POLICY, models=_on(fault)) as gw:
        with pytest.raises(openai.BadRequestError) as raised:
            gw.client.chat.completions.create(model="back", messages=PING)
        assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "content_filter"
        assert raised.value.response.headers["x-blastradius-reason"] == "content_filtered"
        assert gw.tried() == [(VENDOR, "content_filter")]


def test_mid_stream_error_event_is_classified_and_retried() -> None:
    with gateway(policy=POLICY, models=_on("mid_stream_error")) as gw:
        answer = gw.client.chat.completions.create(model="back", messages=PING)
        assert answer.model == "gpt-4o"
        assert {outcome for _, outcome in gw.tried()[:-1]} == {"overloaded"}


@pytest.mark.parametrize("stream", [False, True])
def test_openai_down_gemini_fallback_returns_openai_shaped_tool_calls(stream: bool) -> None:
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
            answer = gw.client.chat.completions.create(**request)
            assert answer.model == MODEL
            assert_weather_call(answer.choices[0].message.tool_calls)
        assert gw.tried()[-1] == (VENDOR, "ok")


@pytest.mark.parametrize(
    ("base_url", "path"),
    [
        ("https://generativelanguage.googleapis.com", "/v1beta/models/m:"),
        ("https://generativelanguage.googleapis.com/v1", "/v1/models/m:"),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/l/publishers/google",
            "/v1/projects/p/locations/l/publishers/google/models/m:",
        ),
    ],
)
def test_ai_studio_and_vertex_base_urls_both_reach_the_model(base_url: str, path: str) -> None:
    deployment = POLICY.deployments[1].model_copy(update={"base_url": base_url, "model": "m"})
    request = GeminiAdapter().request({"messages": [{"role": "user", "content": "hi"}]}, deployment)
    assert path + "streamGenerateContent?alt=sse" in request.url


def test_text_and_images_become_inline_and_file_parts() -> None:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
    ]
    body = {"messages": [{"role": "user", "content": content}]}
    sent = GeminiAdapter().request(body, POLICY.deployments[1]).body
    assert sent["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
    ]
