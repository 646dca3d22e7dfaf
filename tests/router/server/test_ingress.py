"""Ingress validation: what is refused (and with which `param`), what is measured, and a fuzz
of the live gateway that must never answer 5xx to anything a client sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.server.errors import ClientError
from router.server.ingress import read_chat
from tests.router.server.gateway import Gateway, call_json, gateway

PING = [{"role": "user", "content": "ping"}]


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": "default", "messages": PING, **fields}).encode()


def test_a_valid_request_is_sized_and_its_needs_named() -> None:
    request = read_chat(
        chat(
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=64,
            response_format={"type": "json_object"},
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    )
    assert request.route == "default" and request.stream and request.include_usage
    assert request.max_output_tokens == 64
    assert request.needs == frozenset({"streaming", "json", "tools"})
    assert request.input_tokens > 0


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"", None),
        (b"\xff\xfe", None),
        (chat(model=""), "model"),
        (chat(messages=[]), "messages"),
        (chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (chat(messages=[{"role": "assistant", "tool_calls": [{}]}]), "messages[0].tool_calls[0]"),
        (chat(temperature=3), "temperature"),
        (chat(max_tokens=True), "max_tokens"),
        (chat(tools=[{"type": "function"}]), "tools[0]"),
        (chat(tool_choice="sometimes"), "tool_choice"),
        (chat(tool_choice={"type": "function"}), "tool_choice"),
        (chat(stop=[1]), "stop"),
        (chat(stream_options=[]), "stream_options"),
        (chat(response_format="json"), "response_format"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(raw: bytes, param: str | None) -> None:
    with pytest.raises(ClientError) as raised:
        read_chat(raw)
    assert raised.value.status == 400
    assert raised.value.param == param


# -- fuzz -------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "bot"])},
    optional={"content": _json, "tool_calls": _json, "tool_call_id": _json},
)
_body = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["default", "solo", "nope", ""]) | _json,
        "messages": st.lists(_message, max_size=3) | _json,
        "stream": _json,
        "max_tokens": _json,
        "tools": _json,
        "tool_choice": _json,
        "temperature": _json,
        "stop": _json,
        "response_format": _json,
    },
)


@pytest.fixture(scope="module")
def live() -> Iterator[Gateway]:
    with gateway() as gw:
        yield gw


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_body | _json)
def test_fuzzed_ingress_never_answers_5xx(live: Gateway, body: Any) -> None:
    raw = json.dumps(body).encode()
    status, answer, _ = call_json("POST", live.url + "/v1/chat/completions", raw=raw)
    assert status < 500, answer
    if status >= 400:
        assert answer["error"]["message"]
