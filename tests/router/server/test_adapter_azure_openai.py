"""Azure OpenAI egress: the OpenAI SDK → gateway → fake Azure (deployment path, api-version).

Each gateway test starts a fake world and a gateway and stops both. Faults come from the
model-name directive on the Azure deployment name (`gpt4o-prod~server`).
"""

from __future__ import annotations

import itertools
import json

import openai
import pytest

from router.core.outcomes import Outcome
from router.server.adapters.azure_openai import AzureOpenAIAdapter
from tests.router.server.gateway import WEATHER_TOOL, gateway
from tests.router.server.vendor_gateway import (
    PING,
    VENDOR,
    assert_plain_answer,
    assert_streamed_answer,
    assert_tool_calls,
    assert_weather_call,
    refuse,
    vendor_policy,
)

MODEL = "gpt4o-prod"
POLICY = vendor_policy(
    "azure-openai", "https://res.openai.azure.com", MODEL, "az-1", api_version="2024-10-21"
)


def _on(fault: str) -> dict[str, str]:
    return {VENDOR: f"{MODEL}~{fault}"}


def test_request_goes_to_the_deployment_path_with_api_version_and_api_key() -> None:
    request = AzureOpenAIAdapter().request(
        {"model": "vendor", "messages": PING}, POLICY.deployments[1]
    )
    assert request.url == (
        "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
        "?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == "az-1" and "Authorization" not in request.headers
    assert request.body["stream"] is True


def test_azure_error_bodies_map_to_outcomes_and_waits() -> None:
    adapter = AzureOpenAIAdapter()
    throttled = {"error": {"code": "429", "message": "Please retry after 7 seconds."}}
    error = adapter.error(429, {}, json.dumps(throttled).encode())
    assert (error.outcome, error.retry_after_s) == (Outcome.RATE_LIMITED, 7.0)
    missing = {"error": {"code": "404", "message": "Resource not found"}}
    assert adapter.error(404, {}, json.dumps(missing).encode()).outcome is Outcome.AUTH
    gone = {"error": {"code": "DeploymentNotFound", "message": "no such deployment"}}
    assert adapter.error(404, {}, json.dumps(gone).encode()).outcome is Outcome.MODEL_GONE


def test_plain_answer_names_azure_and_its_usage() -> None:
    _, tried = assert_plain_answer(POLICY)
    assert tried == [(VENDOR, "ok")]


def test_streamed_answer_despite_the_filter_only_opening_chunk() -> None:
    assert_streamed_answer(POLICY)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_plain_and_streamed(stream: bool) -> None:
    call = assert_tool_calls(POLICY, stream=stream)
    if call is not None:
        assert call["name"] == "get_weather"


def test_429_retry_after_is_waited_out_and_the_error_surfaces() -> None:
    with gateway(policy=POLICY, models=_on("rate_limited-0.3")) as gw:
        with pytest.raises(openai.RateLimitError):
            gw.client.chat.completions.create(model="vendor", messages=PING)
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
def test_400_content_filter_and_filtered_finish_are_never_retried(fault: str) -> None:
    with gateway(policy=POLICY, models=_on(fault)) as gw:
        with pytest.raises(openai.BadRequestError) as raised:
            gw.client.chat.completions.create(model="back", messages=PING)
        assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "content_filter"
        assert raised.value.response.headers["x-blastradius-reason"] == "content_filtered"
        assert gw.tried() == [(VENDOR, "content_filter")]


def test_openai_down_azure_fallback_answers_with_tool_calls() -> None:
    with gateway(policy=POLICY) as gw:
        refuse(gw.control, "gpt@openai")
        answer = gw.client.chat.completions.create(
            model="default", messages=PING, tools=[WEATHER_TOOL], tool_choice="required"
        )
        assert_weather_call(answer.choices[0].message.tool_calls)
        assert gw.tried()[-1] == (VENDOR, "ok")
