"""AWS Bedrock Converse and ConverseStream, as boto3 and the other AWS SDKs see them.

Bedrock differs from every other vendor in the ways a router most easily gets wrong:
the model is in the path (URL-encoded by the SDK: `anthropic.claude-3-5-sonnet-20240620-v1%3A0`),
requests are SigV4-signed, errors are named by an `x-amzn-ErrorType` header the SDKs
turn into modeled exceptions, a blocked prompt is a 200 with `guardrail_intervened`,
and the stream is binary AWS event-stream frames (`fakes.server.eventstream`) whose
mid-stream errors are exception frames inside a 200. Status codes and error names come
from botocore's bedrock-runtime service model; messages are the ones Bedrock really sends.

The stream ends with `messageStop` (stop reason) then `metadata` (usage). The two
`finish` flags drop them independently: `usage=False` drops `metadata`, and
`terminator=False` drops `messageStop`, the event that says the message is complete.

Known simplifications: the SigV4 signature is not verified (a well-formed scheme is
enough); `retry_after_s` is not rendered because Bedrock sends no retry hint (the SDKs
back off on their own); `metrics.latencyMs` is a nominal figure, since the wire does
not see the server's timing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, ClassVar
from urllib.parse import unquote

from aiohttp import web

from fakes.server import eventstream
from fakes.server.wire import (
    TOOL_RESULT_MARK,
    Answer,
    Call,
    ChatHandler,
    ErrorKind,
    Finish,
    Reply,
    StreamEncoder,
    ToolSpec,
    Wire,
    split_directive,
)
from router.core.tokens import count_prompt, count_text

__all__ = ["GUARDRAIL_TEXT", "BedrockWire", "ConverseStreamEncoder", "request_id"]

GUARDRAIL_TEXT = "Sorry, the model cannot answer this question."
"""The canned answer Bedrock gives when a guardrail blocks the prompt."""

_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOOL_INPUT_FRAGMENT = 12
"""Characters of tool-input JSON per `contentBlockDelta`, so clients must reassemble it."""

_STOP_REASONS: Mapping[Finish, str] = {
    Finish.STOP: "end_turn",
    Finish.LENGTH: "max_tokens",
    Finish.TOOL_CALLS: "tool_use",
    Finish.CONTENT_FILTER: "guardrail_intervened",
    Finish.CONTEXT: "model_context_window_exceeded",
}


@dataclass(frozen=True, slots=True)
class _Refusal:
    """How Bedrock says one `ErrorKind`: status, modeled exception name and message."""

    status: int
    code: str
    message: str
    namespace: str = "http://internal.amazon.com/coral/com.amazon.bedrock/"

    @property
    def error_type(self) -> str:
        """The `x-amzn-ErrorType` header value botocore maps to the modeled exception."""
        return f"{self.code}:{self.namespace}"

    def response(self, rid: str, message: str | None = None) -> web.Response:
        """The error as AWS sends it: status, `x-amzn-ErrorType`, request id, `{"message"}`."""
        return web.json_response(
            {"message": message or self.message},
            status=self.status,
            headers={"x-amzn-ErrorType": self.error_type, "x-amzn-RequestId": rid},
        )

    @property
    def stream_member(self) -> str:
        """The `ConverseStreamOutput` member carrying this refusal mid-stream; codes the
        union has no member for travel as a `modelStreamErrorException`."""
        if self.code in _STREAMED_EXCEPTIONS:
            return self.code[0].lower() + self.code[1:]
        return "modelStreamErrorException"


_STREAMED_EXCEPTIONS = frozenset(
    {
        "InternalServerException",
        "ServiceUnavailableException",
        "ThrottlingException",
        "ValidationException",
    }
)

_REFUSALS: Mapping[ErrorKind, _Refusal] = {
    ErrorKind.INVALID_REQUEST: _Refusal(
        400,
        "ValidationException",
        "Malformed input request, please reformat your input and try again.",
    ),
    ErrorKind.CONTEXT_LENGTH: _Refusal(
        400, "ValidationException", "Input is too long for requested model."
    ),
    ErrorKind.AUTH: _Refusal(
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    ErrorKind.MODEL_GONE: _Refusal(
        404,
        "ResourceNotFoundException",
        "This model version has reached the end of its life. "
        "Please refer to the AWS documentation for more details.",
    ),
    ErrorKind.RATE_LIMITED: _Refusal(
        429, "ThrottlingException", "Too many requests, please wait before trying again."
    ),
    ErrorKind.QUOTA: _Refusal(
        429, "ThrottlingException", "Too many tokens per day, please wait before trying again."
    ),
    ErrorKind.SERVER: _Refusal(
        500,
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    ErrorKind.OVERLOADED: _Refusal(
        503, "ServiceUnavailableException", "Bedrock is unable to process your request."
    ),
    ErrorKind.NOT_READY: _Refusal(
        429,
        "ModelNotReadyException",
        "Model is not ready to serve inference requests. Try your request again later.",
    ),
    ErrorKind.CONTENT_FILTER: _Refusal(
        400, "ValidationException", "This request has been blocked by our content filters."
    ),
}

_CORAL_SERVICE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
_UNSIGNED = _Refusal(
    403, "MissingAuthenticationTokenException", "Missing Authentication Token", _CORAL_SERVICE
)
_BAD_SIGNATURE = _Refusal(
    403,
    "IncompleteSignatureException",
    "Authorization header requires 'Credential' parameter. Authorization header requires "
    "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
    _CORAL_SERVICE,
)


def request_id(seed: str) -> str:
    """An `x-amzn-RequestId` (a UUID, as AWS sends) derived from `seed`, so runs repeat."""
    digest = hashlib.blake2b(seed.encode("utf-8"), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _tool_use_id(token: str, index: int) -> str:
    rotated = token[index % len(token) :] + token[: index % len(token)]
    return f"tooluse_{rotated[:22]}"


def _nominal_latency_ms(answer: Answer) -> int:
    return 200 + 15 * answer.output_tokens


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "inputTokens": answer.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens + answer.output_tokens,
    }


class ConverseStreamEncoder(StreamEncoder):
    """A ConverseStream answer as event-stream frames, in the order Bedrock sends them.

    Text goes as `contentBlockDelta`s of block 0 with no `contentBlockStart` (as
    Claude on Bedrock streams it); each tool call is its own block, opened with its
    id and name and fed its input JSON in fragments. Every event carries Bedrock's
    random-length `p` padding field, drawn from a generator seeded by the reply token.
    """

    content_type: ClassVar[str] = eventstream.CONTENT_TYPE

    def __init__(self, answer: Answer, reply: Reply) -> None:
        self._answer = answer
        self._reply = reply
        self._padding = Random(reply.token)
        self._block = 0
        self._text_open = False

    def headers(self) -> dict[str, str]:
        """The request id every Bedrock response carries."""
        return {"x-amzn-RequestId": request_id(self._reply.token)}

    def _event(self, event_type: str, document: Mapping[str, Any]) -> bytes:
        pad = _PAD_ALPHABET[: self._padding.randint(2, len(_PAD_ALPHABET))]
        return eventstream.event(event_type, {**document, "p": pad})

    def _close_text(self) -> bytes:
        if not self._text_open:
            return b""
        self._text_open = False
        self._block += 1
        return self._event("contentBlockStop", {"contentBlockIndex": self._block - 1})

    def start(self) -> bytes:
        """`messageStart` with the assistant role."""
        return self._event("messageStart", {"role": "assistant"})

    def text(self, piece: str) -> bytes:
        """One `contentBlockDelta` of the text block."""
        self._text_open = True
        return self._event(
            "contentBlockDelta", {"contentBlockIndex": self._block, "delta": {"text": piece}}
        )

    def tools(self) -> bytes:
        """Each tool call: `contentBlockStart`, input-JSON deltas, `contentBlockStop`."""
        frames = [self._close_text()]
        for index, use in enumerate(self._answer.tool_uses):
            block = self._block
            tool_id = _tool_use_id(self._reply.token, index)
            start = {"toolUse": {"toolUseId": tool_id, "name": use.name}}
            frames.append(
                self._event("contentBlockStart", {"contentBlockIndex": block, "start": start})
            )
            arguments = json.dumps(use.arguments, separators=(",", ":"))
            for at in range(0, len(arguments), _TOOL_INPUT_FRAGMENT):
                fragment = arguments[at : at + _TOOL_INPUT_FRAGMENT]
                frames.append(
                    self._event(
                        "contentBlockDelta",
                        {"contentBlockIndex": block, "delta": {"toolUse": {"input": fragment}}},
                    )
                )
            frames.append(self._event("contentBlockStop", {"contentBlockIndex": block}))
            self._block += 1
        return b"".join(frames)

    def finish(self, *, usage: bool = True, terminator: bool = True) -> bytes:
        """Close the text block, then `messageStop` (unless not `terminator`) and
        `metadata` with usage and metrics (unless not `usage`)."""
        frames = [self._close_text()]
        if terminator:
            stop_reason = _STOP_REASONS[self._answer.finish]
            frames.append(self._event("messageStop", {"stopReason": stop_reason}))
        if usage:
            metadata = {
                "usage": _usage(self._answer),
                "metrics": {"latencyMs": _nominal_latency_ms(self._answer)},
            }
            frames.append(self._event("metadata", metadata))
        return b"".join(frames)

    def error(self, kind: ErrorKind, message: str) -> bytes:
        """An exception frame: the stream union's member for `kind`, else a model stream error."""
        refusal = _REFUSALS[kind]
        document: dict[str, Any] = {"message": message}
        if refusal.stream_member == "modelStreamErrorException":
            document.update(originalStatusCode=refusal.status, originalMessage=refusal.message)
        return eventstream.exception(refusal.stream_member, document)

    def malformed(self) -> bytes:
        """A text delta whose message CRC is wrong, which the SDKs reject outright."""
        frame = self._event(
            "contentBlockDelta", {"contentBlockIndex": self._block, "delta": {"text": ""}}
        )
        return eventstream.corrupted(frame)


class _Invalid(Exception):
    """A request Bedrock refuses with a ValidationException; the message names the field."""


def _validation(path: str, value: object, constraint: str) -> _Invalid:
    shown = "null" if value is None else f"'{value}'"
    return _Invalid(
        f"1 validation error detected: Value {shown} at '{path}' "
        f"failed to satisfy constraint: {constraint}"
    )


def _member(document: Mapping[str, Any], key: str, kind: type, path: str) -> Any:
    """`document[key]` when it has the JSON type `kind`, else the Coral-style error for it."""
    value = document.get(key)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if value is None:
        raise _validation(path, None, "Member must not be null")
    names = {list: "a list", dict: "a structure", str: "a string", int: "an integer"}
    raise _validation(path, type(value).__name__, f"Member must be {names[kind]}")


def _block_pieces(block: Mapping[str, Any], path: str) -> tuple[list[str], str | None]:
    """The countable text of one content block, and its kind (`toolUse`/`toolResult`)."""
    if "text" in block:
        return [_member(block, "text", str, f"{path}.text")], None
    if "toolUse" in block:
        use = _member(block, "toolUse", dict, f"{path}.toolUse")
        name = _member(use, "name", str, f"{path}.toolUse.name")
        return [name, json.dumps(use.get("input", {}))], "toolUse"
    if "toolResult" in block:
        result = _member(block, "toolResult", dict, f"{path}.toolResult")
        items = _member(result, "content", list, f"{path}.toolResult.content")
        pieces = [
            item["text"] if "text" in item else json.dumps(item.get("json", item))
            for item in items
            if isinstance(item, dict)
        ]
        return pieces, "toolResult"
    return [], None


@dataclass(frozen=True, slots=True)
class _Conversation:
    """What the messages say, for token counting, the prompt and tool checks."""

    pieces: list[list[str]]
    uses_tools: bool
    ends_with_tool_result: bool


def _message_pieces(message: object, number: int) -> tuple[list[str], set[str | None]]:
    """One message's countable text and the kinds of block it holds."""
    path = f"messages.{number}.member"
    if not isinstance(message, dict):
        raise _validation(path, None, "Member must not be null")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise _validation(
            f"{path}.role", role, "Member must satisfy enum value set: [user, assistant]"
        )
    content = _member(message, "content", list, f"{path}.content")
    if not content:
        raise _Invalid(
            f"The content field in the Message object at messages.{number} is empty. "
            "Add a ContentBlock object to the content field and try again."
        )
    texts: list[str] = []
    kinds: set[str | None] = set()
    for index, block in enumerate(content, start=1):
        block_path = f"{path}.content.{index}.member"
        if not isinstance(block, dict):
            raise _validation(block_path, None, "Member must not be null")
        block_texts, kind = _block_pieces(block, block_path)
        texts.extend(block_texts)
        kinds.add(kind)
    return texts, kinds


def _conversation(body: Mapping[str, Any]) -> _Conversation:
    messages = _member(body, "messages", list, "messages")
    if not messages:
        raise _Invalid(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message."
        )
    pieces: list[list[str]] = []
    uses_tools = ends_with_result = False
    for number, message in enumerate(messages, start=1):
        texts, kinds = _message_pieces(message, number)
        pieces.append(texts)
        uses_tools = uses_tools or bool(kinds & {"toolUse", "toolResult"})
        ends_with_result = "toolResult" in kinds
    return _Conversation(pieces, uses_tools, ends_with_result)


def _system(body: Mapping[str, Any]) -> list[str]:
    if body.get("system") is None:
        return []
    blocks = _member(body, "system", list, "system")
    return [
        _member(block, "text", str, f"system.{index}.member.text")
        for index, block in enumerate(blocks, start=1)
        if isinstance(block, dict) and "text" in block
    ]


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    if body.get("inferenceConfig") is None:
        return None
    config = _member(body, "inferenceConfig", dict, "inferenceConfig")
    if config.get("maxTokens") is None:
        return None
    value: int = _member(config, "maxTokens", int, "inferenceConfig.maxTokens")
    if value < 1:
        raise _validation(
            "inferenceConfig.maxTokens", value, "Member must have value greater than or equal to 1"
        )
    return value


def _tool_choice(config: Mapping[str, Any]) -> str:
    if config.get("toolChoice") is None:
        return "auto"
    choice = _member(config, "toolChoice", dict, "toolConfig.toolChoice")
    if "auto" in choice:
        return "auto"
    if "any" in choice:
        return "required"
    if "tool" in choice:
        tool = _member(choice, "tool", dict, "toolConfig.toolChoice.tool")
        name = _member(tool, "name", str, "toolConfig.toolChoice.tool.name")
        return f"tool:{name}"
    raise _validation("toolConfig.toolChoice", None, "Member must be one of auto, any, tool")


def _tools(body: Mapping[str, Any]) -> tuple[tuple[ToolSpec, ...], str] | None:
    """The offered tools and choice, or None when the request has no `toolConfig`."""
    if body.get("toolConfig") is None:
        return None
    config = _member(body, "toolConfig", dict, "toolConfig")
    specs = []
    for index, entry in enumerate(_member(config, "tools", list, "toolConfig.tools"), start=1):
        if not isinstance(entry, dict) or "toolSpec" not in entry:
            continue
        path = f"toolConfig.tools.{index}.member.toolSpec"
        spec = _member(entry, "toolSpec", dict, path)
        schema = _member(spec, "inputSchema", dict, f"{path}.inputSchema")
        specs.append(
            ToolSpec(
                name=_member(spec, "name", str, f"{path}.name"),
                description=str(spec.get("description", "")),
                parameters=_member(schema, "json", dict, f"{path}.inputSchema.json"),
            )
        )
    return tuple(specs), _tool_choice(config)


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise _Invalid(
            f"Malformed input request: {exc}, please reformat your input and try again."
        ) from exc
    if not isinstance(body, dict):
        raise _Invalid(
            "Malformed input request: the body must be a JSON object, "
            "please reformat your input and try again."
        )
    return body


def _parse_call(model_id: str, body: Mapping[str, Any], *, stream: bool) -> Call:
    """Read a Converse request body into a `Call`; raises `_Invalid` naming the bad field."""
    model, fault = split_directive(model_id)
    conversation = _conversation(body)
    system = _system(body)
    offered = _tools(body)
    if offered is None and conversation.uses_tools:
        raise _Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    tools, choice = offered or ((), "auto")
    counted = ([system] if system else []) + conversation.pieces
    prompt = "\n".join(piece for pieces in counted for piece in pieces)
    if conversation.ends_with_tool_result:
        prompt += TOOL_RESULT_MARK
    return Call(
        protocol=BedrockWire.protocol,
        model=model,
        stream=stream,
        input_tokens=count_prompt(counted),
        prompt=prompt,
        max_tokens=_max_tokens(body),
        tools=tools,
        tool_choice=choice,
        include_usage=True,
        fault=fault,
        deployment=model,
        carries_on=_carries_on(body["messages"][-1]),
    )


def _carries_on(last: Mapping[str, Any]) -> bool:
    """A final assistant message with text and no `toolUse` is an answer to carry on (a
    prefill, which Bedrock's Anthropic models continue)."""
    blocks = last.get("content") or ()
    return (
        last.get("role") == "assistant"
        and any(isinstance(block, dict) and block.get("text") for block in blocks)
        and not any(isinstance(block, dict) and "toolUse" in block for block in blocks)
    )


def _signature_refusal(request: web.Request) -> web.Response | None:
    """The 403 AWS gives an unsigned request, or None when a credential scheme is present.

    SigV4 and Bedrock API keys (`Bearer`) are both accepted; neither is verified.
    """
    authorization = request.headers.get("Authorization")
    rid = request_id(f"{request.method} {request.path_qs} {authorization}")
    if authorization is None:
        return _UNSIGNED.response(rid)
    if authorization.startswith(("AWS4-HMAC-SHA256 ", "Bearer ")):
        return None
    return _BAD_SIGNATURE.response(rid)


class BedrockWire(Wire):
    """Bedrock runtime's Converse and ConverseStream.

    There is no model listing: that is the `bedrock` control plane's
    ListFoundationModels, a different service from the runtime this fakes.
    """

    protocol: ClassVar[str] = "bedrock"

    def routes(self, serve: ChatHandler, models: Sequence[str]) -> list[web.RouteDef]:
        """`/model/{modelId}/converse` and `/converse-stream`; `models` is unused."""

        async def converse(request: web.Request) -> web.StreamResponse:
            return await self._chat(request, serve, stream=False)

        async def converse_stream(request: web.Request) -> web.StreamResponse:
            return await self._chat(request, serve, stream=True)

        return [
            web.post("/model/{model_id:.+}/converse", converse),
            web.post("/model/{model_id:.+}/converse-stream", converse_stream),
        ]

    async def _chat(
        self, request: web.Request, serve: ChatHandler, *, stream: bool
    ) -> web.StreamResponse:
        refusal = _signature_refusal(request)
        if refusal is not None:
            return refusal
        raw = await request.read()
        model_id = unquote(request.match_info["model_id"])
        try:
            call = _parse_call(model_id, _json_body(raw), stream=stream)
        except _Invalid as exc:
            rid = request_id(raw.decode("utf-8", "replace") + model_id)
            return _REFUSALS[ErrorKind.INVALID_REQUEST].response(rid, str(exc))
        return await serve(request, call, self)

    def _body(self, answer: Answer, reply: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if answer.pieces or not answer.tool_uses:
            content.append({"text": answer.text})
        for index, use in enumerate(answer.tool_uses):
            tool_use = {
                "toolUseId": _tool_use_id(reply.token, index),
                "name": use.name,
                "input": dict(use.arguments),
            }
            content.append({"toolUse": tool_use})
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": _STOP_REASONS[answer.finish],
            "usage": _usage(answer),
            "metrics": {"latencyMs": _nominal_latency_ms(answer)},
        }

    def complete(self, call: Call, answer: Answer, reply: Reply) -> web.Response:
        """The Converse response: output message, stopReason, usage and metrics."""
        return web.json_response(
            self._body(answer, reply), headers={"x-amzn-RequestId": request_id(reply.token)}
        )

    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """A `ConverseStreamEncoder` for the answer."""
        return ConverseStreamEncoder(answer, reply)

    def error(
        self,
        kind: ErrorKind,
        reply: Reply,
        *,
        message: str | None = None,
        retry_after_s: float | None = None,
    ) -> web.Response:
        """Status, `x-amzn-ErrorType` and `{"message"}` of the modeled exception for `kind`.

        `retry_after_s` is ignored: Bedrock sends no retry hint.
        """
        return _REFUSALS[kind].response(request_id(reply.token), message)

    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """A 200 whose answer is the guardrail's canned text, stopped `guardrail_intervened`;
        a whole event stream when the call streams, as Bedrock sends it."""
        billed = count_text(GUARDRAIL_TEXT)
        answer = Answer((GUARDRAIL_TEXT,), (), Finish.CONTENT_FILTER, call.input_tokens, billed)
        if not call.stream:
            return self.complete(call, answer, reply)
        encoder = ConverseStreamEncoder(answer, reply)
        frames = encoder.start() + encoder.text(GUARDRAIL_TEXT) + encoder.finish()
        return web.Response(
            body=frames,
            headers={"Content-Type": encoder.content_type, **encoder.headers()},
        )
