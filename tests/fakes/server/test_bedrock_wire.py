"""The Bedrock wire through boto3: Converse, ConverseStream, modeled errors, guardrails.

Every test talks to the fake with boto3's own `bedrock-runtime` client, so what passes
here is what a router built on an AWS SDK would see. Parsing is checked on the `Call`
the route hands to the server (captured on the way through), and error codes against
botocore's service model, the authority on Bedrock's statuses and exception names.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import botocore
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from botocore.config import Config
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError
from urllib3.exceptions import ProtocolError

from fakes.server.answers import arguments_for
from fakes.server.bedrock_wire import GUARDRAIL_TEXT, BedrockWire
from fakes.server.wire import (
    TOOL_RESULT_MARK,
    Answer,
    Call,
    ErrorKind,
    Finish,
    ToolSpec,
    ToolUse,
    Wire,
)
from router.core.tokens import count_prompt
from tests.fakes.server.harness import TOKEN, reply, running, serve_direct

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
HELLO = [{"role": "user", "content": [{"text": "hello"}]}]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
TOOLS: list[dict[str, Any]] = [
    {"toolSpec": {"name": "weather", "description": "Forecast", "inputSchema": {"json": WEATHER}}},
    {"toolSpec": {"name": "clock", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
]  # fmt: skip
RETRIES_OFF = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=5, connect_timeout=2
)
"""One attempt, no SDK retry: `max_attempts` in botocore counts retries, not attempts."""


class Recorder:
    """Serves like the harness, and keeps every `Call` and request a route produced."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.requests = 0

    async def serve(self, request: web.Request, call: Call, wire: Wire) -> web.StreamResponse:
        self.calls.append(call)
        return await serve_direct(request, call, wire)

    @web.middleware
    async def count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests += 1
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.count])
        app.add_routes(BedrockWire().routes(self.serve, (MODEL,)))
        return app


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def url(recorder: Recorder) -> Iterator[str]:
    with running(recorder.app()) as base:
        yield base


def _client(url: str, config: Config = RETRIES_OFF) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=config,
    )


@pytest.fixture(scope="module")
def client(url: str) -> Any:
    return _client(url)


@pytest.fixture(scope="module")
def lax_client(url: str) -> Any:
    """A client that sends what botocore's own validation would refuse, to reach the server."""
    return _client(url, RETRIES_OFF.merge(Config(parameter_validation=False)))


@pytest.fixture(scope="module")
def service_model() -> Any:
    return botocore.session.get_session().get_service_model("bedrock-runtime")


def _events(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [next(iter(event.items())) for event in response["stream"]]


def _streamed_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(
        body["delta"]["text"]
        for name, body in events
        if name == "contentBlockDelta" and "text" in body["delta"]
    )


def _call() -> Call:
    return Call(protocol="bedrock", model=MODEL, stream=True, input_tokens=10, prompt="hi")


def _answer(finish: Finish) -> Answer:
    uses = (ToolUse("weather", {"city": "x"}),) if finish is Finish.TOOL_CALLS else ()
    pieces = () if uses else ("a", " b")
    return Answer(pieces, uses, finish, 10, 2)


def test_converse_answers_text_with_usage_and_request_id(client: Any) -> None:
    response = client.converse(
        modelId=MODEL, messages=HELLO, system=[{"text": "Be brief."}, {"text": "Be kind."}]
    )

    assert response["output"]["message"]["role"] == "assistant"
    (block,) = response["output"]["message"]["content"]
    assert len(block["text"].split()) == 5
    assert response["stopReason"] == "end_turn"
    expected_input = count_prompt([["Be brief.", "Be kind."], ["hello"]])
    assert response["usage"] == {
        "inputTokens": expected_input,
        "outputTokens": 5,
        "totalTokens": expected_input + 5,
    }
    assert response["metrics"]["latencyMs"] > 0
    assert len(response["ResponseMetadata"]["RequestId"]) == 36


def test_route_reads_the_request_into_a_call(client: Any, recorder: Recorder) -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{MODEL}"
    client.converse(
        modelId=f"{arn}~no_usage",
        messages=HELLO,
        system=[{"text": "sys"}],
        inferenceConfig={"maxTokens": 64},
    )

    call = recorder.calls[-1]
    assert (call.protocol, call.model, call.deployment, call.fault) == (
        "bedrock",
        arn,
        arn,
        "no_usage",
    )
    assert (call.stream, call.max_tokens, call.include_usage) == (False, 64, True)
    assert call.prompt == "sys\nhello"
    assert call.input_tokens == count_prompt([["sys"], ["hello"]])


def test_max_tokens_cuts_the_answer(client: Any) -> None:
    response = client.converse(modelId=MODEL, messages=HELLO, inferenceConfig={"maxTokens": 2})

    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 2


@pytest.mark.parametrize(
    ("tool_choice", "expected_choice", "expected_tool"),
    [
        (None, "auto", "weather"),
        ({"auto": {}}, "auto", "weather"),
        ({"any": {}}, "required", "weather"),
        ({"tool": {"name": "clock"}}, "tool:clock", "clock"),
    ],
    ids=["default", "auto", "any", "tool"],
)
def test_converse_calls_the_chosen_tool(
    client: Any,
    recorder: Recorder,
    tool_choice: dict[str, Any] | None,
    expected_choice: str,
    expected_tool: str,
) -> None:
    config: dict[str, Any] = {"tools": TOOLS}
    if tool_choice is not None:
        config["toolChoice"] = tool_choice

    response = client.converse(modelId=MODEL, messages=HELLO, toolConfig=config)

    assert recorder.calls[-1].tool_choice == expected_choice
    assert [t.name for t in recorder.calls[-1].tools] == ["weather", "clock"]
    assert response["stopReason"] == "tool_use"
    (block,) = response["output"]["message"]["content"]
    use = block["toolUse"]
    assert use["name"] == expected_tool
    assert use["toolUseId"].startswith("tooluse_")
    spec = next(s["toolSpec"] for s in TOOLS if s["toolSpec"]["name"] == expected_tool)
    assert use["input"] == arguments_for(ToolSpec(expected_tool, "", spec["inputSchema"]["json"]))


def test_tool_result_ends_the_agent_loop_with_text(client: Any, recorder: Recorder) -> None:
    messages = [
        *HELLO,
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"c": 21}}]}}
            ],
        },
    ]

    response = client.converse(modelId=MODEL, messages=messages, toolConfig={"tools": TOOLS})

    assert recorder.calls[-1].prompt.endswith(TOOL_RESULT_MARK)
    assert recorder.calls[-1].input_tokens == count_prompt(
        [["hello"], ["weather", "{}"], ['{"c": 21}']]
    )
    assert response["stopReason"] == "end_turn"
    assert "text" in response["output"]["message"]["content"][0]


def test_ids_are_deterministic(client: Any) -> None:
    first = client.converse(modelId=MODEL, messages=HELLO, toolConfig={"tools": TOOLS})
    second = client.converse(modelId=MODEL, messages=HELLO, toolConfig={"tools": TOOLS})

    assert first["ResponseMetadata"]["RequestId"] == second["ResponseMetadata"]["RequestId"]
    assert first["output"] == second["output"]


def test_converse_stream_reassembles_the_same_text(client: Any) -> None:
    whole = client.converse(modelId=MODEL, messages=HELLO)["output"]["message"]["content"][0]

    events = _events(client.converse_stream(modelId=MODEL, messages=HELLO))

    names = [name for name, _ in events]
    assert names[0] == "messageStart"
    assert names[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert _streamed_text(events) == whole["text"]
    assert events[-2][1]["stopReason"] == "end_turn"
    assert events[-1][1]["usage"]["outputTokens"] == 5


def test_converse_stream_tool_input_reassembles_to_the_arguments(client: Any) -> None:
    events = _events(
        client.converse_stream(modelId=MODEL, messages=HELLO, toolConfig={"tools": TOOLS})
    )

    (start,) = [body for name, body in events if name == "contentBlockStart"]
    fragments = [
        body["delta"]["toolUse"]["input"] for name, body in events if name == "contentBlockDelta"
    ]
    assert start["start"]["toolUse"]["name"] == "weather"
    assert start["start"]["toolUse"]["toolUseId"].startswith("tooluse_")
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "fake", "days": 1}
    assert dict(events)["messageStop"]["stopReason"] == "tool_use"


@pytest.mark.parametrize(
    ("fault", "tail"),
    [
        ("no_usage", ["contentBlockStop", "messageStop"]),
        ("no_done", ["contentBlockStop", "metadata"]),
    ],
)
def test_stream_endings_drop_their_own_event(client: Any, fault: str, tail: list[str]) -> None:
    events = _events(client.converse_stream(modelId=f"{MODEL}~{fault}", messages=HELLO))

    assert [name for name, _ in events][-2:] == tail


def test_mid_stream_exception_frame_raises_from_iteration(client: Any) -> None:
    response = client.converse_stream(modelId=f"{MODEL}~mid_stream_error", messages=HELLO)
    seen: list[str] = []

    with pytest.raises(EventStreamError) as raised:
        for event in response["stream"]:
            seen.extend(event)

    assert seen == ["messageStart", "contentBlockDelta", "contentBlockDelta"]
    assert raised.value.response["Error"]["Code"] == "serviceUnavailableException"


@pytest.mark.parametrize(
    ("fault", "error"),
    [("malformed", ChecksumMismatch), ("stream_cut", ProtocolError)],
)
def test_broken_streams_fail_in_the_client(client: Any, fault: str, error: type) -> None:
    response = client.converse_stream(modelId=f"{MODEL}~{fault}", messages=HELLO)

    with pytest.raises(error):
        _events(response)


@pytest.mark.parametrize(
    ("kind", "exception", "status", "message"),
    [
        (ErrorKind.INVALID_REQUEST, "ValidationException", 400, "Malformed input request"),
        (ErrorKind.CONTEXT_LENGTH, "ValidationException", 400, "Input is too long"),
        (ErrorKind.AUTH, "AccessDeniedException", 403, "You don't have access"),
        (ErrorKind.MODEL_GONE, "ResourceNotFoundException", 404, "end of its life"),
        (ErrorKind.RATE_LIMITED, "ThrottlingException", 429, "Too many requests"),
        (ErrorKind.QUOTA, "ThrottlingException", 429, "Too many tokens per day"),
        (ErrorKind.NOT_READY, "ModelNotReadyException", 429, "not ready"),
        (ErrorKind.SERVER, "InternalServerException", 500, "unexpected error"),
        (ErrorKind.OVERLOADED, "ServiceUnavailableException", 503, "unable to process"),
        (ErrorKind.CONTENT_FILTER, "ValidationException", 400, "content filters"),
    ],
)
@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
def test_errors_surface_as_the_clients_modeled_exceptions(
    client: Any,
    recorder: Recorder,
    operation: str,
    kind: ErrorKind,
    exception: str,
    status: int,
    message: str,
) -> None:
    before = recorder.requests

    with pytest.raises(getattr(client.exceptions, exception)) as raised:
        getattr(client, operation)(modelId=f"{MODEL}~{kind.value}", messages=HELLO)

    metadata = raised.value.response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == status
    assert metadata["HTTPHeaders"]["x-amzn-errortype"].startswith(f"{exception}:http://")
    assert metadata["RequestId"]
    assert message in raised.value.response["Error"]["Message"]
    assert recorder.requests == before + 1


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_error_statuses_match_the_service_model(service_model: Any, kind: ErrorKind) -> None:
    response = BedrockWire().error(kind, reply())
    code = response.headers["x-amzn-ErrorType"].split(":")[0]

    shape = service_model.shape_for(code)
    converse_errors = {s.name for s in service_model.operation_model("Converse").error_shapes}
    assert code in converse_errors
    assert shape.metadata["error"]["httpStatusCode"] == response.status


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_mid_stream_errors_use_members_of_the_stream_union(
    service_model: Any, kind: ErrorKind
) -> None:
    union = service_model.shape_for("ConverseStreamOutput").members
    encoder = BedrockWire().stream(_call(), _answer(Finish.STOP), reply())
    buffer = EventStreamBuffer()

    buffer.add_data(encoder.error(kind, "boom"))

    (frame,) = list(buffer)
    member = frame.headers[":exception-type"]
    assert frame.headers[":message-type"] == "exception"
    assert member in union and union[member].metadata.get("exception")
    assert json.loads(frame.payload)["message"] == "boom"


@pytest.mark.parametrize("finish", list(Finish))
def test_every_finish_is_a_stop_reason_boto_knows(service_model: Any, finish: Finish) -> None:
    response = BedrockWire().complete(_call(), _answer(finish), reply())

    assert isinstance(response.body, bytes)
    stop_reason = json.loads(response.body)["stopReason"]
    assert stop_reason in service_model.shape_for("StopReason").enum


def test_stream_events_carry_padding_and_the_request_id() -> None:
    encoder = BedrockWire().stream(_call(), _answer(Finish.STOP), reply())
    buffer = EventStreamBuffer()

    buffer.add_data(encoder.start() + encoder.text("hi") + encoder.finish())

    pads = [json.loads(frame.payload)["p"] for frame in buffer]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert all(alphabet.startswith(pad) and len(pad) >= 2 for pad in pads)
    assert len(set(pads)) > 1
    assert len(encoder.headers()["x-amzn-RequestId"]) == 36
    assert encoder.content_type == "application/vnd.amazon.eventstream"


@pytest.mark.parametrize("directive", ["blocked", "completion_filter"])
def test_guardrail_is_a_200_with_guardrail_intervened(client: Any, directive: str) -> None:
    response = client.converse(modelId=f"{MODEL}~{directive}", messages=HELLO)

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["stopReason"] == "guardrail_intervened"
    if directive == "blocked":
        assert response["output"]["message"]["content"] == [{"text": GUARDRAIL_TEXT}]


def test_blocked_stream_is_a_whole_event_stream(client: Any) -> None:
    events = _events(client.converse_stream(modelId=f"{MODEL}~blocked", messages=HELLO))

    assert _streamed_text(events) == GUARDRAIL_TEXT
    assert dict(events)["messageStop"]["stopReason"] == "guardrail_intervened"
    assert "metadata" in dict(events)


@pytest.mark.parametrize(
    ("request_args", "fragment"),
    [
        ({"messages": []}, "must start with a user message"),
        ({"messages": [{"role": "user", "content": []}]}, "messages.1 is empty"),
        (
            {"messages": [{"role": "bot", "content": [{"text": "x"}]}]},
            "'messages.1.member.role'",
        ),
        ({"messages": HELLO, "inferenceConfig": {"maxTokens": 0}}, "'inferenceConfig.maxTokens'"),
        (
            {
                "messages": HELLO,
                "toolConfig": {"tools": [{"toolSpec": {"name": "x", "inputSchema": {}}}]},
            },
            "'toolConfig.tools.1.member.toolSpec.inputSchema.json'",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": []}}]}
                ]
            },
            "toolConfig field must be defined",
        ),
    ],
    ids=["no-messages", "empty-content", "bad-role", "max-tokens", "tool-schema", "no-toolconfig"],
)
def test_invalid_requests_are_validation_exceptions_naming_the_field(
    lax_client: Any, request_args: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(lax_client.exceptions.ValidationException) as raised:
        lax_client.converse(modelId=MODEL, **request_args)

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in raised.value.response["Error"]["Message"]


def test_unsigned_request_is_refused_by_aws_auth(url: str) -> None:
    unsigned = boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        config=RETRIES_OFF.merge(Config(signature_version=botocore.UNSIGNED)),
    )

    with pytest.raises(ClientError) as raised:
        unsigned.converse(modelId=MODEL, messages=HELLO)

    assert raised.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("headers", "status", "error_type"),
    [
        ({"Authorization": "Basic eDp5"}, 403, "IncompleteSignatureException"),
        ({"Authorization": "Bearer bedrock-api-key-abc"}, 400, "ValidationException"),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, 400, "ValidationException"),
    ],
    ids=["basic", "bedrock-api-key", "sigv4"],
)
def test_raw_requests_check_the_scheme_then_the_body(
    url: str, headers: dict[str, str], status: int, error_type: str
) -> None:
    request = urllib.request.Request(
        f"{url}/model/{MODEL}/converse", data=b"{not json", headers=headers, method="POST"
    )

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)

    assert raised.value.code == status
    assert raised.value.headers["x-amzn-ErrorType"].startswith(f"{error_type}:")
    assert json.loads(raised.value.read())["message"]


def test_tool_use_ids_come_from_the_reply_token() -> None:
    response = BedrockWire().complete(_call(), _answer(Finish.TOOL_CALLS), reply())

    assert isinstance(response.body, bytes)
    (block,) = json.loads(response.body)["output"]["message"]["content"]
    assert block["toolUse"]["toolUseId"] == f"tooluse_{TOKEN[:22]}"
