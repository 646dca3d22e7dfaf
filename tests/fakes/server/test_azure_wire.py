"""The Azure OpenAI wire through `openai.AzureOpenAI`: deployment paths, filters, Azure errors.

The client is configured exactly as against a real resource (`azure_endpoint`,
`api_version`, `api_key`), so the paths, query and key header are the SDK's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from fakes.server.azure_wire import AzureWire
from fakes.server.wire import Call, ChatHandler, Wire
from tests.fakes.server.harness import TOKEN, running, serve_direct

API_VERSION = "2024-10-21"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Summarise the outage."}]
LOOKUP: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "lookup_incident",
        "parameters": {
            "type": "object",
            "properties": {"incident_id": {"type": "string"}},
            "required": ["incident_id"],
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
    app.add_routes(AzureWire().routes(capturing(calls), ("prod-gpt4o",)))
    with running(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=base_url,
        api_version=API_VERSION,
        api_key="azure-key",
        max_retries=0,
        timeout=5.0,
    )


def test_deployment_in_the_path_is_the_model(client: openai.AzureOpenAI, calls: list[Call]) -> None:
    completion = client.chat.completions.create(model="prod-gpt4o~no_usage", messages=USER)
    call = calls[-1]
    assert (call.protocol, call.model, call.deployment, call.fault) == (
        "azure-openai",
        "prod-gpt4o",
        "prod-gpt4o",
        "no_usage",
    )
    assert completion.model == "prod-gpt4o"
    assert completion.choices[0].finish_reason == "stop"


def test_answer_carries_filter_annotations(client: openai.AzureOpenAI) -> None:
    completion = client.chat.completions.create(model="prod-gpt4o", messages=USER)
    extra = completion.model_extra or {}
    (prompt_filter,) = extra["prompt_filter_results"]
    assert prompt_filter["content_filter_results"]["hate"] == {
        "filtered": False,
        "severity": "safe",
    }
    choice_extra = completion.choices[0].model_extra or {}
    assert not any(
        verdict.get("filtered") for verdict in choice_extra["content_filter_results"].values()
    )


def test_stream_opens_with_a_filter_only_chunk(client: openai.AzureOpenAI) -> None:
    stream = client.chat.completions.create(
        model="prod-gpt4o",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    opening, role, *middle, usage = list(stream)
    assert (opening.id, opening.model, opening.object, opening.created) == ("", "", "", 0)
    assert opening.choices == []
    assert "prompt_filter_results" in (opening.model_extra or {})
    assert role.id == f"chatcmpl-{TOKEN}" and role.choices[0].delta.role == "assistant"
    assert middle[-1].choices[0].finish_reason == "stop"
    assert usage.choices == [] and usage.usage is not None


def test_streamed_tool_call_reassembles(client: openai.AzureOpenAI) -> None:
    stream = client.chat.completions.create(
        model="prod-gpt4o", messages=USER, tools=[LOOKUP], stream=True
    )
    fragments = [
        fragment
        for chunk in stream
        if chunk.choices
        for fragment in (chunk.choices[0].delta.tool_calls or [])
    ]
    assert fragments[0].id and fragments[0].id.startswith("call_")
    assert fragments[0].function and fragments[0].function.name == "lookup_incident"
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"incident_id": "fake"}


def test_blocked_prompt_is_400_content_filter_with_innererror(client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="prod-gpt4o~blocked", messages=USER)
    body = caught.value.body
    assert isinstance(body, dict)
    assert (body["code"], body["param"], body["status"]) == ("content_filter", "prompt", 400)
    assert body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert body["innererror"]["content_filter_result"]["violence"]["filtered"] is True


def test_blocked_completion_is_200_with_content_filter(client: openai.AzureOpenAI) -> None:
    completion = client.chat.completions.create(model="prod-gpt4o~completion_filter", messages=USER)
    chunks = list(
        client.chat.completions.create(
            model="prod-gpt4o~completion_filter", messages=USER, stream=True
        )
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert (choice.model_extra or {})["content_filter_results"]["violence"]["filtered"] is True
    last = chunks[-1].choices[0]
    assert last.finish_reason == "content_filter"
    assert (last.model_extra or {})["content_filter_results"]["violence"]["filtered"] is True


@pytest.mark.parametrize(
    ("fault", "exception", "body"),
    [
        ("auth", openai.AuthenticationError, {"code": "401"}),
        ("model_gone", openai.NotFoundError, {"code": "DeploymentNotFound"}),
        ("rate_limited", openai.RateLimitError, {"code": "429"}),
        ("quota", openai.RateLimitError, {"code": "insufficient_quota"}),
        ("context_length", openai.BadRequestError, {"code": "context_length_exceeded"}),
        ("server", openai.InternalServerError, {"type": "server_error"}),
        ("overloaded", openai.InternalServerError, {"type": "server_error"}),
    ],
)
def test_errors_in_azure_envelopes(
    client: openai.AzureOpenAI,
    fault: str,
    exception: type[openai.APIStatusError],
    body: dict[str, str],
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=f"prod-gpt4o~{fault}", messages=USER)
    assert isinstance(caught.value.body, dict)
    assert body.items() <= caught.value.body.items()
    assert caught.value.response.headers["apim-request-id"]


def test_rate_limit_body_has_a_string_code_and_no_type(client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="prod-gpt4o~rate_limited", messages=USER)
    assert isinstance(caught.value.body, dict) and set(caught.value.body) == {"code", "message"}
    assert "Please retry after 2 seconds" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "2000"


def test_missing_api_version_is_404_resource_not_found(base_url: str) -> None:
    client = openai.OpenAI(
        api_key="azure-key",
        base_url=f"{base_url}/openai/deployments/prod-gpt4o",
        max_retries=0,
        timeout=5.0,
    )
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="prod-gpt4o", messages=USER)
    assert caught.value.body == {"code": "404", "message": "Resource not found"}


def test_bearer_token_is_accepted_and_a_missing_key_is_401(base_url: str) -> None:
    entra = openai.AzureOpenAI(
        azure_endpoint=base_url,
        api_version=API_VERSION,
        azure_ad_token="entra-token",
        max_retries=0,
        timeout=5.0,
    )
    assert entra.chat.completions.create(model="prod-gpt4o", messages=USER).choices
    keyless = openai.AzureOpenAI(
        azure_endpoint=base_url,
        api_version=API_VERSION,
        api_key="azure-key",
        max_retries=0,
        timeout=5.0,
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        keyless.chat.completions.create(
            model="prod-gpt4o", messages=USER, extra_headers={"api-key": ""}
        )
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "401"
