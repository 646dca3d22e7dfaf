"""The gateway end to end: the official OpenAI SDK → gateway → fake OpenAI/Anthropic servers.

Each test starts a fresh fake world and gateway (real HTTP on 127.0.0.1) and stops both.
Faults are injected per deployment through the model-name directive or the control API.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from router.core.policy import Policy, Tenant
from router.server.stream import DEPLOYMENT_HEADER
from tests.fakes.server.harness import SERVED_LOOP
from tests.router.server.gateway import (
    WEATHER_TOOL,
    call_json,
    gateway,
    journal,
    load_policy,
    wait_for,
)

PING = [{"role": "user", "content": "ping"}]


def stream_text(stream: Any) -> tuple[str, str | None, Any]:
    """(text, finish reason, usage) of a streamed answer."""
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, finish, usage


def holding(tokens: int) -> Policy:
    """The test policy with `resilience.streaming.hold_tokens` set."""
    return load_policy(streaming={"hold_tokens": tokens})


# -- the happy paths ------------------------------------------------------------------------


def test_plain_completion_names_the_deployment_and_its_usage() -> None:
    with gateway() as gw:
        raw = gw.client.chat.completions.with_raw_response.create(model="default", messages=PING)
        answer = raw.parse()
        assert raw.headers[DEPLOYMENT_HEADER] == "gpt@openai"
        assert answer.model == "gpt-4o"
        assert answer.choices[0].message.content
        assert answer.choices[0].finish_reason == "stop"
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        assert gw.tried() == [("gpt@openai", "ok")]
        assert gw.attempts()[0].output_tokens == answer.usage.completion_tokens


def test_streaming_answer_ends_with_usage_and_done() -> None:
    with gateway() as gw:
        stream = gw.client.chat.completions.create(
            model="default", messages=PING, stream=True, stream_options={"include_usage": True}
        )
        text, finish, usage = stream_text(stream)
        assert text and finish == "stop"
        assert usage is not None and usage.completion_tokens == len(text.split())


def test_tool_calls_plain_and_streamed_on_openai() -> None:
    with gateway() as gw:
        answer = gw.client.chat.completions.create(
            model="default", messages=PING, tools=[WEATHER_TOOL], tool_choice="required"
        )
        calls = answer.choices[0].message.tool_calls
        assert answer.choices[0].finish_reason == "tool_calls"
        assert calls and calls[0].function.name == "get_weather"
        assert json.loads(calls[0].function.arguments) == {"city": "fake"}


def test_a_tool_result_round_trip_goes_through_anthropic() -> None:
    """OpenAI-shaped history (assistant tool_calls + tool result) is translated for Anthropic."""
    with gateway(models={"gpt@openai": "gpt-4o~server"}) as gw:
        messages: list[Any] = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather in Oslo?"},
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
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ]
        answer = gw.client.chat.completions.create(
            model="default", messages=messages, tools=[WEATHER_TOOL]
        )
        assert answer.model == "claude-sonnet-4-5"
        assert answer.choices[0].message.content
        assert answer.choices[0].finish_reason == "stop"


# -- failover: OpenAI primary down, Anthropic fallback, OpenAI-shaped tool calls ----------------


@pytest.mark.parametrize("stream", [False, True])
def test_primary_down_fails_over_to_anthropic_with_openai_tool_calls(stream: bool) -> None:
    with gateway() as gw:
        status, _, _ = call_json(
            "POST",
            gw.control + "/faults",
            {"kind": "refuse", "target": {"deployments": ["gpt@openai"]}},
        )
        assert status == 201
        request: dict[str, Any] = {
            "model": "default",
            "messages": PING,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
        if stream:
            calls: dict[int, dict[str, str]] = {}
            finish = None
            with gw.client.chat.completions.with_streaming_response.create(
                **request, stream=True
            ) as response:
                assert response.headers[DEPLOYMENT_HEADER] == "claude@anthropic"
                for chunk in response.parse():
                    for choice in chunk.choices:
                        finish = choice.finish_reason or finish
                        for fragment in choice.delta.tool_calls or ():
                            call = calls.setdefault(fragment.index, {"id": "", "args": ""})
                            call["id"] = fragment.id or call["id"]
                            if fragment.function is not None:
                                call["name"] = fragment.function.name or call.get("name", "")
                                call["args"] += fragment.function.arguments or ""
            assert finish == "tool_calls"
            assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("toolu_")
            assert json.loads(calls[0]["args"]) == {"city": "fake"}
        else:
            raw = gw.client.chat.completions.with_raw_response.create(**request)
            answer = raw.parse()
            assert raw.headers[DEPLOYMENT_HEADER] == "claude@anthropic"
            assert answer.model == "claude-sonnet-4-5"
            assert answer.choices[0].finish_reason == "tool_calls"
            tool_calls = answer.choices[0].message.tool_calls
            assert tool_calls is not None
            assert tool_calls[0].type == "function"
            assert json.loads(tool_calls[0].function.arguments) == {"city": "fake"}
            assert answer.usage is not None and answer.usage.prompt_tokens > 0
        tried = gw.tried()
        assert tried[-1] == ("claude@anthropic", "ok")
        assert {outcome for d, outcome in tried[:-1]} == {"connect"}
        assert len(tried) == 4  # three refused connects on the primary, then the fallback


# -- the failure behaviours of issue 7 -------------------------------------------------------


def test_429_retry_after_is_waited_out_then_failed_over() -> None:
    """Behaviours 1 and 2: each retry waits at least Retry-After; then the fallback answers."""
    with gateway(models={"gpt@openai": "gpt-4o~rate_limited-0.3"}) as gw:
        answer = gw.client.chat.completions.create(model="default", messages=PING)
        assert answer.model == "claude-sonnet-4-5"
        rows = gw.attempts()
        primary = [row for row in rows if row.deployment == "gpt@openai"]
        assert [row.outcome for row in primary] == ["rate_limited"] * 3
        gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(primary)]
        assert all(gap >= 0.3 for gap in gaps), gaps


class _EarlyTimers(asyncio.SelectorEventLoop):
    """A loop whose timers fire 2 ms early, as a loop on a millisecond clock may (uvloop)."""

    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., object], *args: object, context: Any = None
    ) -> asyncio.TimerHandle:
        return super().call_at(when - 0.002, callback, *args, context=context)


@pytest.mark.parametrize("loop", [SERVED_LOOP, _EarlyTimers], ids=["served", "early-timers"])
def test_persistent_429_with_nothing_left_surfaces_the_original_error(
    loop: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """Every retry waits out the Retry-After on the same deployment, even on a loop whose
    timers fire early: the engine hears a timer at the time it asked for."""
    with gateway(models={"gpt@openai": "gpt-4o~rate_limited-0.1"}, loop=loop) as gw:
        with pytest.raises(openai.RateLimitError) as raised:
            gw.client.chat.completions.create(model="solo", messages=PING)
        error = raised.value
        assert error.status_code == 429
        assert isinstance(error.body, dict) and error.body["code"] == "rate_limit_exceeded"
        assert error.response.headers[DEPLOYMENT_HEADER] == "gpt@openai"
        assert [row.outcome for row in gw.attempts()] == ["rate_limited"] * 3


def test_an_upstream_auth_failure_is_a_502_not_the_clients_401() -> None:
    """The gateway's upstream key was refused: the client's key is fine, so no 401, and
    the vendor's message (which echoes part of the gateway's key) is not passed on."""
    with gateway(models={"gpt@openai": "gpt-4o~auth"}) as gw:
        with pytest.raises(openai.InternalServerError) as raised:
            gw.client.chat.completions.create(model="solo", messages=PING)
        error = raised.value
        assert error.status_code == 502
        assert isinstance(error.body, dict) and error.body["code"] == "upstream_auth_failed"
        assert "gpt@openai" in error.message and "sk-" not in error.message
        assert error.response.headers[DEPLOYMENT_HEADER] == "gpt@openai"
        assert gw.tried()[0] == ("gpt@openai", "auth")
        assert gw.attempts()[0].http_status == 401


def test_one_500_then_healthy_is_one_retry_on_the_same_deployment() -> None:
    policy = load_policy(retries={"backoff": {"kind": "equal", "base_s": 0.6, "cap_s": 1.0}})
    with gateway(policy=policy) as gw:
        _, rule, _ = call_json(
            "POST",
            gw.control + "/faults",
            {"kind": "server", "target": {"deployments": ["gpt@openai"]}},
        )

        def heal() -> None:
            wait_for(lambda: any(entry.get("fault") == "server" for entry in journal(gw.control)))
            call_json("DELETE", f"{gw.control}/faults/{rule['id']}")

        healer = threading.Thread(target=heal)
        healer.start()
        answer = gw.client.chat.completions.create(model="default", messages=PING)
        healer.join()
        assert answer.model == "gpt-4o"
        assert gw.tried() == [("gpt@openai", "server"), ("gpt@openai", "ok")]


def test_tcp_reset_before_headers_is_retried_then_answered() -> None:
    with gateway(models={"gpt@openai": "gpt-4o~reset"}) as gw:
        answer = gw.client.chat.completions.create(model="default", messages=PING)
        assert answer.model == "claude-sonnet-4-5"
        assert gw.tried() == [("gpt@openai", "connect")] * 3 + [("claude@anthropic", "ok")]


def test_silent_provider_costs_one_timeout_then_fails_over() -> None:
    with gateway(models={"gpt@openai": "gpt-4o~silent"}) as gw:
        started = time.monotonic()
        answer = gw.client.chat.completions.create(model="default", messages=PING)
        elapsed = time.monotonic() - started
        assert answer.model == "claude-sonnet-4-5"
        assert gw.tried() == [("gpt@openai", "timeout"), ("claude@anthropic", "ok")]
        assert elapsed < 2.5  # one first-token deadline (1 s), well inside the 10 s total


def test_slow_first_token_fails_over() -> None:
    """Behaviour 6."""
    with gateway(models={"gpt@openai": "gpt-4o~slow_first_token-3"}) as gw:
        answer = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(answer)
        assert text and finish == "stop"
        assert gw.tried() == [("gpt@openai", "timeout"), ("claude@anthropic", "ok")]


def test_stream_cut_before_the_first_byte_fails_over_transparently() -> None:
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-0"}) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert text and finish == "stop"
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("claude@anthropic", "ok")]


def test_stream_cut_within_the_held_back_tokens_fails_over_transparently() -> None:
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-3"}, policy=holding(4)) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert finish == "stop" and len(text.split()) == 12
        assert gw.tried() == [("gpt@openai", "stream_cut"), ("claude@anthropic", "ok")]


def test_stream_cut_after_bytes_reached_the_client_ends_with_an_in_band_error() -> None:
    """Behaviour 7: never a truncated answer presented as success."""
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-3"}) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        with pytest.raises(openai.APIError, match="stream"):
            stream_text(stream)
        assert gw.tried() == [("gpt@openai", "stream_cut")]


def test_stream_stall_after_bytes_reached_the_client_ends_with_an_in_band_error() -> None:
    """Behaviour 8."""
    with gateway(models={"gpt@openai": "gpt-4o~stream_stall-3"}) as gw:
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        with pytest.raises(openai.APIError):
            stream_text(stream)
        assert gw.tried() == [("gpt@openai", "stream_stall")]


@pytest.mark.parametrize("stream", [True, False])
def test_a_steady_stream_longer_than_the_idle_limit_is_not_a_stall(stream: bool) -> None:
    """Tokens every 0.2 s for ~2.4 s against a 1 s idle limit: only a gap is a stall."""
    with gateway(models={"gpt@openai": "gpt-4o~slow_tokens-0.2"}) as gw:
        answer = gw.client.chat.completions.create(model="default", messages=PING, stream=stream)
        text = stream_text(answer)[0] if stream else answer.choices[0].message.content
        assert len(str(text).split()) == 12
        assert gw.tried() == [("gpt@openai", "ok")]


def test_stream_stall_within_the_held_back_tokens_is_answered_whole_by_the_fallback() -> None:
    """Behaviour 8, the other way out: nothing reached the client, so the fallback answers."""
    with gateway(models={"gpt@openai": "gpt-4o~stream_stall-2"}, policy=holding(4)) as gw:
        started = time.monotonic()
        stream = gw.client.chat.completions.create(model="default", messages=PING, stream=True)
        text, finish, _ = stream_text(stream)
        assert finish == "stop" and len(text.split()) == 12
        assert gw.tried() == [("gpt@openai", "stream_stall"), ("claude@anthropic", "ok")]
        assert time.monotonic() - started < 3.0  # one idle deadline (1 s), not the stall


@pytest.mark.parametrize("fault", ["malformed", "no_done"])
def test_malformed_chunk_or_missing_done_still_finalises(fault: str) -> None:
    """Behaviour 9: a broken chunk is skipped; a stream ending after its finish is complete."""
    with gateway(models={"gpt@openai": f"gpt-4o~{fault}"}) as gw:
        for stream in (True, False):
            started = time.monotonic()
            if stream:
                text, finish, _ = stream_text(
                    gw.client.chat.completions.create(model="solo", messages=PING, stream=True)
                )
            else:
                answer = gw.client.chat.completions.create(model="solo", messages=PING)
                text = answer.choices[0].message.content or ""
                finish = answer.choices[0].finish_reason
            assert text and finish == "stop"
            assert time.monotonic() - started < 1.0
        assert gw.client.chat.completions.create(model="solo", messages=PING).choices


def test_content_filter_is_not_retried_and_its_reason_reaches_the_client() -> None:
    """Behaviour 11: one attempt, no failover (the policy's default), the vendor's code."""
    with gateway(models={"gpt@openai": "gpt-4o~content_filter"}) as gw:
        with pytest.raises(openai.BadRequestError) as raised:
            gw.client.chat.completions.create(model="default", messages=PING)
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["code"] == "invalid_prompt"
        assert raised.value.response.headers["x-blastradius-reason"] == "content_filtered"
        assert gw.tried() == [("gpt@openai", "content_filter")]


# -- client errors (behaviour 14) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (json.dumps({"model": 3, "messages": PING}).encode(), 400, "model"),
        (json.dumps({"model": "default", "messages": "hi"}).encode(), 400, "messages"),
        (json.dumps({"model": "default", "messages": [{"role": "bot"}]}).encode(), 400, None),
        (json.dumps({"model": "default", "messages": PING, "stream": "yes"}).encode(), 400, None),
        (json.dumps({"model": "default", "messages": PING, "max_tokens": -1}).encode(), 400, None),
        (json.dumps({"model": "nope", "messages": PING}).encode(), 404, None),
        (json.dumps({"model": "default", "messages": PING, "x": "y" * 5000}).encode(), 413, None),
    ],
)
def test_client_errors_are_4xx_in_openai_shape_and_never_sent_upstream(
    raw: bytes, status: int, param: str | None
) -> None:
    with gateway(max_body_bytes=4096) as gw:
        got, body, _ = call_json("POST", gw.url + "/v1/chat/completions", raw=raw)
        assert got == status
        assert set(body["error"]) >= {"message", "type", "param", "code"}
        assert body["error"]["message"]
        if param is not None:
            assert body["error"]["param"] == param
        assert journal(gw.control) == []
        assert gw.attempts() == []


def test_unknown_route_through_the_sdk_is_a_404_not_found() -> None:
    with gateway() as gw, pytest.raises(openai.NotFoundError):
        gw.client.chat.completions.create(model="no-such-route", messages=PING)


# -- operations -------------------------------------------------------------------------------


def test_models_health_and_readiness() -> None:
    with gateway() as gw:
        assert [m.id for m in gw.client.models.list()] == ["default", "solo"]
        assert call_json("GET", gw.url + "/healthz")[0] == 200
        assert call_json("GET", gw.url + "/readyz")[:2] == (200, {"ready": True})
        status, body, _ = call_json("GET", gw.url + "/v2/nothing")
        assert status == 404 and body["error"]["code"] == "http_404"


def test_context_length_goes_to_a_larger_context_deployment_not_the_same_one() -> None:
    """Behaviour 10: gpt-4o (128k) refuses the length; claude (200k) is larger, so it serves."""
    with gateway(models={"gpt@openai": "gpt-4o~context_length"}) as gw:
        answer = gw.client.chat.completions.create(model="default", messages=PING)
        assert answer.model == "claude-sonnet-4-5"
        assert gw.tried() == [("gpt@openai", "context_length"), ("claude@anthropic", "ok")]


def test_failed_attempts_are_billed_in_the_ledger_and_the_answer_names_its_server() -> None:
    """Behaviour 13: a stream cut after tokens is billed; usage is the fallback's own."""
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-3"}, policy=holding(8)) as gw:
        raw = gw.client.chat.completions.with_raw_response.create(model="default", messages=PING)
        answer = raw.parse()
        assert raw.headers[DEPLOYMENT_HEADER] == "claude@anthropic"
        cut, served = gw.attempts()
        assert (cut.outcome, cut.output_tokens) == ("stream_cut", 3)
        assert cut.input_tokens > 0 and cut.cost_usd > 0
        assert answer.usage is not None
        assert served.output_tokens == answer.usage.completion_tokens
        assert served.input_tokens == answer.usage.prompt_tokens
        request = gw.trace.requests[-1]
        assert request.served_by == "claude@anthropic"
        assert request.cost_usd == pytest.approx(cut.cost_usd + served.cost_usd)


def test_breaker_opens_during_an_outage_and_the_primary_returns_after_it() -> None:
    """Behaviour 12 (compressed: 0.5 s breaker instead of a minute)."""
    policy = load_policy(breaker={"consecutive_failures": 3, "open_s": 0.5})
    with gateway(policy=policy) as gw:
        _, rule, _ = call_json(
            "POST",
            gw.control + "/faults",
            {"kind": "server", "target": {"deployments": ["gpt@openai"]}},
        )
        for _ in range(4):
            answer = gw.client.chat.completions.create(model="default", messages=PING)
            assert answer.model == "claude-sonnet-4-5"
        during = gw.tried()
        assert during.count(("gpt@openai", "server")) == 3  # then the breaker stops paying
        assert during.count(("claude@anthropic", "ok")) == 4
        call_json("DELETE", f"{gw.control}/faults/{rule['id']}")
        time.sleep(0.6)
        models = [
            gw.client.chat.completions.create(model="default", messages=PING).model
            for _ in range(3)
        ]
        assert models == ["gpt-4o"] * 3


def test_with_tenants_every_request_needs_a_valid_key() -> None:
    digest = hashlib.sha256(b"tenant-secret").hexdigest()
    policy = load_policy().model_copy(update={"tenants": {"acme": Tenant(key_sha256=(digest,))}})
    with gateway(policy=policy) as gw:
        with pytest.raises(openai.AuthenticationError) as raised:
            gw.client.chat.completions.create(model="default", messages=PING)
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["code"] == "invalid_api_key"
        allowed = gw.client.with_options(api_key="tenant-secret")
        assert allowed.chat.completions.create(model="default", messages=PING).choices
        assert gw.trace.requests[-1].tenant == "acme"
        assert journal(gw.control)[0]["deployment"] == "gpt@openai"
        assert len(journal(gw.control)) == 1
