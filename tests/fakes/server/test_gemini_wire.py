"""The Gemini wire through Google's official `google-genai` client.

Each test talks to a fake served by `direct_app`, so the fault named in the model
(`fake-model~rate_limited`) picks the response. The client gets one attempt and no
automatic function calling, so what it raises and returns is exactly what the wire sent;
requests the client will not build (no key, bad fields) go through urllib.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from fakes.server.gemini_wire import GeminiWire
from fakes.server.wire import ErrorKind
from router.core.tokens import count_prompt
from tests.fakes.server.harness import TOKEN, direct_app, reply, running

NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "days": types.Schema(type=types.Type.INTEGER),
        },
        required=["city", "days"],
    ),
)
CLOCK = types.FunctionDeclaration(name="get_time", description="The time.")
TOOLS = [types.Tool(function_declarations=[WEATHER, CLOCK])]
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running(direct_app(GeminiWire(), models=("fake-model", "fake-flash"))) as base:
        yield base


@pytest.fixture
def client(url: str) -> genai.Client:
    options = types.HttpOptions(
        base_url=url, timeout=5_000, retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key="k", http_options=options)


def config(**fields: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(automatic_function_calling=NO_AFC, **fields)


def post(url: str, path: str, body: object, headers: dict[str, str] | None = None) -> Any:
    """POST raw JSON; returns (status, body text)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"x-goog-api-key": "k", **(headers or {})}
    request = urllib.request.Request(
        f"{url}{path}", data=data, headers={k: v for k, v in sent.items() if v}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as failed:
        return failed.code, failed.read().decode()


HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
GENERATE = "/v1beta/models/fake-model:generateContent"


def test_generate_content_has_text_usage_and_ids(client: genai.Client) -> None:
    response = client.models.generate_content(
        model="fake-model", contents="hello", config=config(system_instruction="Be brief.")
    )
    assert response.text is not None and len(response.text.split()) == 5
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == count_prompt([["Be brief."], ["hello"]])
    assert usage.candidates_token_count == 5
    assert usage.total_token_count == usage.prompt_token_count + 5
    assert response.model_version == "fake-model"
    assert response.response_id == TOKEN


def test_max_output_tokens_stops_at_max_tokens(client: genai.Client) -> None:
    response = client.models.generate_content(
        model="fake-model", contents="hello", config=config(max_output_tokens=2)
    )
    assert response.candidates
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata and response.usage_metadata.candidates_token_count == 2


def test_stream_matches_plain_answer_and_ends_with_usage(client: genai.Client) -> None:
    plain = client.models.generate_content(model="fake-model", contents="hello")
    chunks = list(client.models.generate_content_stream(model="fake-model", contents="hello"))
    assert "".join(chunk.text or "" for chunk in chunks) == plain.text
    *body, last = chunks
    assert all(chunk.usage_metadata is None for chunk in body)
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata == plain.usage_metadata


def test_stream_framing_is_crlf_sse_without_terminator(url: str) -> None:
    status, text = post(url, "/v1beta/models/fake-model:streamGenerateContent?alt=sse", HELLO)
    assert status == 200
    events = text.split("\r\n\r\n")
    assert events[-1] == ""
    assert all(event.startswith("data: {") for event in events[:-1])
    assert "[DONE]" not in text
    assert "finishReason" in events[-2]


def test_no_usage_fault_drops_usage_metadata(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model="fake-model~no_usage", contents="hi"))
    assert all(chunk.usage_metadata is None for chunk in chunks)


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_has_object_args_from_uppercase_schema(
    client: genai.Client, stream: bool
) -> None:
    settings = config(tools=TOOLS)
    if stream:
        chunks = client.models.generate_content_stream(
            model="fake-model", contents="hi", config=settings
        )
        calls = [call for chunk in chunks for call in chunk.function_calls or []]
    else:
        response = client.models.generate_content(
            model="fake-model", contents="hi", config=settings
        )
        calls = response.function_calls or []
        assert response.candidates and response.candidates[0].content
        assert len(response.candidates[0].content.parts or []) == 1, "no empty text beside a call"
    assert [(call.name, call.args) for call in calls] == [
        ("get_weather", {"city": "fake", "days": 1})
    ]


@pytest.mark.parametrize(
    ("mode", "allowed", "expected"),
    [
        (types.FunctionCallingConfigMode.AUTO, None, "get_weather"),
        (types.FunctionCallingConfigMode.ANY, None, "get_weather"),
        (types.FunctionCallingConfigMode.ANY, ["get_time"], "get_time"),
        (types.FunctionCallingConfigMode.NONE, None, None),
    ],
)
def test_function_calling_mode_picks_the_tool(
    client: genai.Client,
    mode: types.FunctionCallingConfigMode,
    allowed: list[str] | None,
    expected: str | None,
) -> None:
    calling = types.FunctionCallingConfig(mode=mode, allowed_function_names=allowed)
    settings = config(tools=TOOLS, tool_config=types.ToolConfig(function_calling_config=calling))
    response = client.models.generate_content(model="fake-model", contents="hi", config=settings)
    assert [call.name for call in response.function_calls or []] == ([expected] if expected else [])


def test_function_response_round_trip_ends_in_text(client: genai.Client) -> None:
    first = client.models.generate_content(
        model="fake-model", contents="hi", config=config(tools=TOOLS)
    )
    assert first.candidates and first.candidates[0].content
    result = types.Part.from_function_response(name="get_weather", response={"sky": "clear"})
    history = [
        types.Content(role="user", parts=[types.Part.from_text(text="hi")]),
        first.candidates[0].content,
        types.Content(role="user", parts=[result]),
    ]
    second = client.models.generate_content(
        model="fake-model", contents=history, config=config(tools=TOOLS)
    )
    assert second.function_calls is None
    assert second.text


@pytest.mark.parametrize(
    ("fault", "error_class", "code", "status"),
    [
        ("invalid_request", errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("context_length", errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("auth", errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("model_gone", errors.ClientError, 404, "NOT_FOUND"),
        ("rate_limited", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("quota", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("server", errors.ServerError, 500, "INTERNAL"),
        ("overloaded", errors.ServerError, 503, "UNAVAILABLE"),
        ("not_ready", errors.ServerError, 503, "UNAVAILABLE"),
    ],
)
def test_errors_raise_the_clients_class(
    client: genai.Client,
    fault: str,
    error_class: type[errors.APIError],
    code: int,
    status: str,
) -> None:
    with pytest.raises(error_class) as caught:
        client.models.generate_content(model=f"fake-model~{fault}", contents="hi")
    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.message


def _details(error: errors.APIError) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = error.details["error"].get("details", [])
    return details


def test_rate_limit_retry_delay_is_in_the_body(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="fake-model~rate_limited", contents="hi")
    kinds = {detail["@type"]: detail for detail in _details(caught.value)}
    assert kinds[RETRY_INFO]["retryDelay"] == "2s"
    assert "type.googleapis.com/google.rpc.QuotaFailure" in kinds
    assert "retry-after" not in caught.value.response.headers


@pytest.mark.parametrize(
    ("kind", "wait_s", "delay"),
    [
        (ErrorKind.RATE_LIMITED, 34.4, "34.400s"),
        (ErrorKind.RATE_LIMITED, 3.0, "3s"),
        (ErrorKind.OVERLOADED, 0.25, "0.250s"),
        (ErrorKind.QUOTA, 60.0, None),
        (ErrorKind.RATE_LIMITED, None, None),
    ],
)
def test_retry_delay_is_a_protobuf_duration(
    kind: ErrorKind, wait_s: float | None, delay: str | None
) -> None:
    response = GeminiWire().error(kind, reply(), retry_after_s=wait_s)
    assert response.text is not None
    details = json.loads(response.text)["error"].get("details", [])
    delays = [d["retryDelay"] for d in details if d["@type"] == RETRY_INFO]
    assert delays == ([delay] if delay else [])


def test_cut_stream_surfaces_as_the_transports_error(client: genai.Client) -> None:
    with pytest.raises(httpx2.RemoteProtocolError):
        list(client.models.generate_content_stream(model="fake-model~stream_cut", contents="hi"))


def test_quota_has_no_retry_info(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="fake-model~quota", contents="hi")
    kinds = [detail["@type"] for detail in _details(caught.value)]
    assert RETRY_INFO not in kinds
    assert "type.googleapis.com/google.rpc.QuotaFailure" in kinds


def test_wrong_key_is_api_key_invalid(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="fake-model~auth", contents="hi")
    reasons = [detail.get("reason") for detail in _details(caught.value)]
    assert "API_KEY_INVALID" in reasons


def test_mid_stream_error_raises_while_iterating(client: genai.Client) -> None:
    received: list[str] = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(
            model="fake-model~mid_stream_error", contents="hi"
        ):
            received.append(chunk.text or "")
    assert len(received) == 2
    assert caught.value.code == 503


def test_blocked_prompt_is_a_200_with_block_reason(client: genai.Client) -> None:
    response = client.models.generate_content(model="fake-model~blocked", contents="hi")
    assert response.candidates is None
    assert response.text is None
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert response.usage_metadata and response.usage_metadata.candidates_token_count is None


def test_streamed_blocked_prompt_is_one_chunk(client: genai.Client) -> None:
    (chunk,) = client.models.generate_content_stream(model="fake-model~blocked", contents="hi")
    assert chunk.prompt_feedback is not None
    assert chunk.prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_content_filter_error_kind_is_also_a_blocked_200(client: genai.Client) -> None:
    response = client.models.generate_content(model="fake-model~content_filter", contents="hi")
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_completion_filter_finishes_with_safety(client: genai.Client) -> None:
    response = client.models.generate_content(model="fake-model~completion_filter", contents="hi")
    assert response.candidates
    assert response.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert response.candidates[0].safety_ratings


def test_models_list_and_get(client: genai.Client) -> None:
    assert [model.name for model in client.models.list()] == [
        "models/fake-model",
        "models/fake-flash",
    ]
    assert client.models.get(model="fake-flash").display_name == "fake-flash"
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="missing")
    assert caught.value.code == 404


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (GENERATE, {"x-goog-api-key": ""}, 403),
        (f"{GENERATE}?key=k", {"x-goog-api-key": ""}, 200),
        ("/v1/models/fake-model:generateContent", {}, 200),
        ("/v1beta/models/fake-model:embedContent", {}, 404),
    ],
)
def test_key_and_path_checks(url: str, path: str, headers: dict[str, str], status: int) -> None:
    code, text = post(url, path, HELLO, headers)
    assert code == status
    if status == 403:
        assert json.loads(text)["error"]["status"] == "PERMISSION_DENIED"


def _contents(*parts: object, role: str = "user") -> dict[str, Any]:
    return {"contents": [{"role": role, "parts": list(parts)}]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (GENERATE, {}, "contents"),
        (GENERATE, {"contents": []}, "contents"),
        (GENERATE, _contents({"text": "x"}, role="assistant"), "contents[0].role"),
        (GENERATE, {"contents": [{"parts": []}]}, "contents[0].parts"),
        (GENERATE, _contents({}), "contents[0].parts[0].data"),
        (GENERATE, _contents({"functionCall": {"args": {}}}), "functionCall.name"),
        (GENERATE, {**HELLO, "generationConfig": {"maxOutputTokens": "x"}}, "max_output_tokens"),
        (
            GENERATE,
            {**HELLO, "tools": [{"functionDeclarations": [{}]}]},
            "function_declarations[0]",
        ),
        (GENERATE, {**HELLO, "toolConfig": {"functionCallingConfig": {"mode": "SOME"}}}, "mode"),
        ("/v1beta/models/fake-model:streamGenerateContent", HELLO, "alt"),
        (GENERATE, b"{not json", "Invalid JSON payload"),
    ],
)
def test_invalid_requests_name_the_field(url: str, path: str, body: object, field: str) -> None:
    code, text = post(url, path, body)
    error = json.loads(text)["error"]
    assert code == 400
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert field in error["message"]


def test_snake_case_fields_are_accepted(url: str) -> None:
    body = {**HELLO, "system_instruction": {"parts": [{"text": "sys"}]}}
    code, text = post(url, GENERATE, body)
    assert code == 200
    assert json.loads(text)["usageMetadata"]["promptTokenCount"] == count_prompt(
        [["sys"], ["hello"]]
    )


def test_vertex_ai_paths_are_served_too() -> None:
    with running(direct_app(GeminiWire(), ("gemini-2.5-flash",))) as url:
        path = "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
        call = urllib.request.Request(
            url + path + ":generateContent",
            data=json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode(),
            headers={"Content-Type": "application/json", "x-goog-api-key": "k"},
        )
        with urllib.request.urlopen(call, timeout=5) as answer:
            body = json.loads(answer.read())
    assert body["candidates"][0]["finishReason"] == "STOP"
