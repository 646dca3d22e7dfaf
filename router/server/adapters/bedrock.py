"""AWS Bedrock upstream: OpenAI chat requests out, ConverseStream event frames back as OpenAI.

Translation (reference/providers.md §1.5):

- Out: `POST {base_url}/model/{modelId}/converse-stream`, SigV4-signed for service
  `bedrock` (`botocore.auth.SigV4Auth`) with the deployment's `api_key` as
  `ACCESS_KEY:SECRET[:SESSION_TOKEN]`, else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
  (/ `AWS_SESSION_TOKEN`) from the environment; an `api_key` without a colon is a
  Bedrock API key, sent as `Authorization: Bearer`. The region comes from the host
  (`bedrock-runtime.{region}.amazonaws.com`), else a `region:aws/{region}` domain, else
  `AWS_REGION`, else `us-east-1`. System messages become `system` blocks, messages
  `content` blocks (`text`, `image`, `toolUse` with an object `input`, `toolResult`),
  tools `toolConfig.tools[].toolSpec`, sampling fields `inferenceConfig`.
- Back: the body is binary AWS event-stream frames, decoded with botocore's
  `EventStreamBuffer`: `contentBlockDelta` text is content; `contentBlockStart` with a
  `toolUse` opens an OpenAI tool call and `toolUse.input` fragments are its arguments;
  `messageStop.stopReason` is the finish (`guardrail_intervened` / `content_filtered`
  → the `content_filter` outcome); `metadata.usage` is the bill and ends the stream.
  Exception frames inside the 200 are mid-stream errors.
- Not streamed (`/converse`, plain JSON): the `output.message` content blocks, the
  `stopReason` and the `usage` are replayed through the same event handlers, as the
  frames that would have carried them.
- Errors: the status and the `x-amzn-ErrorType` header (then body `__type` / `code`),
  suffixes after `:` or `#` stripped, mapped to outcomes; Bedrock sends no retry hint.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, EventStreamError, ParserError

from router.core.outcomes import Outcome, classify_status
from router.core.policy import Deployment
from router.server.adapters.base import (
    Adapter,
    Piece,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    Usage,
    json_or_none,
    openai_error_body,
)
from router.server.adapters.chat_history import (
    Image,
    arguments_object,
    content_parts,
    text_of,
)
from router.server.adapters.filters import filtered_error
from router.server.adapters.sse import SseEvent
from router.server.retry_after import retry_after_s

__all__ = ["BedrockAdapter", "BedrockDecoder", "aws_region", "to_converse_request"]

STOP_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}

FILTER_STOPS = frozenset({"guardrail_intervened", "content_filtered"})

_ERRORS: Mapping[str, tuple[Outcome, str]] = {
    "ThrottlingException": (Outcome.RATE_LIMITED, "rate_limit_exceeded"),
    "ModelNotReadyException": (Outcome.OVERLOADED, "model_not_ready"),
    "ServiceUnavailableException": (Outcome.OVERLOADED, "overloaded"),
    "InternalServerException": (Outcome.SERVER, "server_error"),
    "ModelStreamErrorException": (Outcome.SERVER, "server_error"),
    "ModelErrorException": (Outcome.SERVER, "server_error"),
    "ModelTimeoutException": (Outcome.TIMEOUT, "timeout"),
    "AccessDeniedException": (Outcome.AUTH, "permission_denied"),
    "UnrecognizedClientException": (Outcome.AUTH, "invalid_api_key"),
    "MissingAuthenticationTokenException": (Outcome.AUTH, "invalid_api_key"),
    "IncompleteSignatureException": (Outcome.AUTH, "invalid_api_key"),
    "ServiceQuotaExceededException": (Outcome.AUTH, "insufficient_quota"),
    "ResourceNotFoundException": (Outcome.MODEL_GONE, "model_not_found"),
    "ValidationException": (Outcome.BAD_REQUEST, "invalid_request"),
}
"""Outcome and OpenAI-style code per modeled exception (botocore's service model)."""

_HOST_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def aws_region(deployment: Deployment) -> str:
    """The AWS region to sign for: host name, `region:aws/…` domain, environment, default."""
    match = _HOST_REGION.search(urlsplit(deployment.base_url).hostname or "")
    if match:
        return match.group(1)
    for domain in deployment.domains:
        if domain.startswith("region:aws/"):
            return domain.removeprefix("region:aws/")
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _credentials(deployment: Deployment) -> Credentials | str | None:
    """SigV4 credentials, a Bedrock API key (str), or None when there are none."""
    if deployment.api_key is not None:
        key = deployment.api_key.get_secret_value()
        if ":" not in key:
            return key
        access, secret, *token = key.split(":", 2)
        return Credentials(access, secret, token[0] if token else None)
    env_access = os.environ.get("AWS_ACCESS_KEY_ID")
    env_secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if env_access and env_secret:
        return Credentials(env_access, env_secret, os.environ.get("AWS_SESSION_TOKEN"))
    return None


def _text_block(text: str) -> dict[str, Any]:
    return {"text": text}


def _image_block(image: Image) -> dict[str, Any] | None:
    if image.data is None:  # Converse takes bytes only (or S3), not URLs
        return None
    kind = _IMAGE_FORMATS.get(image.media_type, "png")
    return {"image": {"format": kind, "source": {"bytes": image.data}}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    return content_parts(content, _text_block, _image_block)


def _messages(messages: list[Any]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "tool":
            result: dict[str, Any] = {
                "toolUseId": str(message.get("tool_call_id", "")),
                "content": [{"text": text_of(message.get("content")) or "(empty)"}],
            }
            blocks, role = [{"toolResult": result}], "user"
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                use = {
                    "toolUseId": str(call.get("id", "")),
                    "name": str(function.get("name", "")),
                    "input": arguments_object(function.get("arguments")),
                }
                blocks.append({"toolUse": use})
        else:
            blocks, role = _blocks(message.get("content")), "user"
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tool_config(body: Mapping[str, Any]) -> dict[str, Any]:
    specs = [
        {
            "toolSpec": {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description") or tool["function"]["name"],
                "inputSchema": {"json": tool["function"].get("parameters") or {"type": "object"}},
            }
        }
        for tool in body.get("tools") or ()
    ]
    config: dict[str, Any] = {"tools": specs}
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        config["toolChoice"] = {"tool": {"name": str((choice.get("function") or {})["name"])}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config  # "none" has no Converse form: the tools stay offered, on `auto`


def to_converse_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Converse request body for an OpenAI chat body."""
    system, messages = _messages(list(body.get("messages") or ()))
    request: dict[str, Any] = {"messages": messages}
    if system:
        request["system"] = system
    inference: dict[str, Any] = {}
    tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if tokens:
        inference["maxTokens"] = tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if body.get(ours) is not None:
            inference[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)[:4]
    if inference:
        request["inferenceConfig"] = inference
    history_uses_tools = any(
        m.get("role") == "tool" or m.get("tool_calls") for m in body.get("messages") or ()
    )
    if body.get("tools") or history_uses_tools:
        request["toolConfig"] = _tool_config(body)
    return request


def _error_name(value: str) -> str:
    """`ThrottlingException:http://…` or `aws.protocols#ThrottlingException` → the name."""
    return value.split(":", 1)[0].rsplit("#", 1)[-1]


def _classify(name: str, message: str, status: int | None) -> tuple[Outcome, str | None]:
    lowered = message.lower()
    if name == "ValidationException" and "too long" in lowered:
        return Outcome.CONTEXT_LENGTH, "context_length_exceeded"
    if name == "ValidationException" and "content filter" in lowered:
        return Outcome.CONTENT_FILTER, "content_filter"
    if name == "ThrottlingException" and "per day" in lowered:
        return Outcome.AUTH, "insufficient_quota"  # a daily quota: a short wait will not help
    if name in _ERRORS:
        return _ERRORS[name]
    return (classify_status(status) if status else Outcome.SERVER), None


class BedrockDecoder(StreamDecoder):
    """ConverseStream event frames to pieces; `metadata` (after `messageStop`) ends it."""

    binary: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._buffer = EventStreamBuffer()
        self._tools: dict[int, int] = {}

    def feed(self, event: SseEvent) -> list[Piece]:
        """Not used: Bedrock does not stream SSE."""
        raise NotImplementedError("ConverseStream is an AWS event stream; use feed_bytes")

    def feed_bytes(self, data: bytes) -> list[Piece]:
        """Every frame `data` completes, as pieces; a corrupt frame ends the stream."""
        self._buffer.add_data(data)
        pieces: list[Piece] = []
        try:
            for message in self._buffer:
                pieces.extend(self._frame(message.headers, message.payload))
                if self.error is not None or self.done:
                    break
        except (EventStreamError, ParserError) as problem:
            self.malformed += 1
            body = openai_error_body(f"corrupt event-stream frame: {problem}", "server_error")
            self.error = UpstreamError(Outcome.STREAM_CUT, 200, body)
        return pieces

    def _frame(self, headers: Mapping[str, Any], payload: bytes) -> list[Piece]:
        document = json_or_none(payload)
        if not isinstance(document, dict):
            self.malformed += 1
            return []
        kind = headers.get(":message-type")
        if kind in ("exception", "error"):
            name = str(headers.get(":exception-type") or headers.get(":error-code") or "")
            message = str(document.get("message") or headers.get(":error-message") or name)
            outcome, code = _classify(name[:1].upper() + name[1:], message, None)
            body = openai_error_body(message, name or "server_error", code)
            self.error = UpstreamError(outcome, 200, body)
            return []
        return self._event(headers.get(":event-type"), document)

    def whole(self, document: dict[str, Any]) -> list[Piece]:
        """A Converse answer, replayed as ConverseStream events up to `metadata`.

        Like the stream, it stops at a filter stop: the usage after it is not read.
        """
        pieces: list[Piece] = []
        output = document.get("output")
        message = output.get("message") if isinstance(output, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        for index, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                delta = {"text": block["text"]}
                pieces += self._event(
                    "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
                )
            use = block.get("toolUse")
            if isinstance(use, dict):
                start = {"toolUse": {"toolUseId": use.get("toolUseId"), "name": use.get("name")}}
                pieces += self._event(
                    "contentBlockStart", {"contentBlockIndex": index, "start": start}
                )
                arguments = json.dumps(use.get("input") or {}, separators=(",", ":"))
                delta = {"toolUse": {"input": arguments}}
                pieces += self._event(
                    "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
                )
        pieces += self._event("messageStop", {"stopReason": document.get("stopReason")})
        if self.error is None:
            self._event("metadata", {"usage": document.get("usage") or {}})
        return pieces

    def _event(self, event: Any, document: Mapping[str, Any]) -> list[Piece]:
        """One decoded ConverseStream event named `event`."""
        if event == "contentBlockDelta":
            return self._delta(document)
        if event == "contentBlockStart":
            return self._start(document)
        if event == "messageStop":
            return self._stop(str(document.get("stopReason") or "end_turn"))
        if event == "metadata":
            usage = document.get("usage") or {}
            self.usage = Usage(
                int(usage.get("inputTokens") or 0), int(usage.get("outputTokens") or 0)
            )
            self.done = True
        return []

    def _start(self, document: Mapping[str, Any]) -> list[Piece]:
        use = (document.get("start") or {}).get("toolUse")
        if not isinstance(use, Mapping):
            return []
        index = len(self._tools)
        self._tools[int(document.get("contentBlockIndex", 0))] = index
        call = {
            "index": index,
            "id": str(use.get("toolUseId", "")),
            "type": "function",
            "function": {"name": str(use.get("name", "")), "arguments": ""},
        }
        return [Piece({"tool_calls": [call]}, tokens=1)]

    def _delta(self, document: Mapping[str, Any]) -> list[Piece]:
        delta = document.get("delta") or {}
        text = delta.get("text")
        if isinstance(text, str) and text:
            return [Piece({"content": text}, tokens=1)]
        use = delta.get("toolUse")
        if isinstance(use, Mapping) and use.get("input"):
            index = self._tools.get(int(document.get("contentBlockIndex", 0)), 0)
            fragment = {"index": index, "function": {"arguments": str(use["input"])}}
            return [Piece({"tool_calls": [fragment]}, tokens=1)]
        return []

    def _stop(self, reason: str) -> list[Piece]:
        self.finished = True
        if reason in FILTER_STOPS:
            self.error = filtered_error("Bedrock guardrail", f"stopReason {reason}")
            return []
        return [Piece(finish_reason=STOP_REASONS.get(reason, "stop"))]


class BedrockAdapter(Adapter):
    """bedrock-runtime.{region}.amazonaws.com ConverseStream (`protocol: bedrock`)."""

    protocol: ClassVar[str] = "bedrock"

    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """The signed ConverseStream request, or (`stream=False`) the same body to `/converse`.

        The signature covers the exact body bytes, so the body is serialised here, once,
        signed over, and sent as those very bytes (`UpstreamRequest.content`).
        The model id keeps its `:` unescaped because that is how the path goes out.
        """
        converse = to_converse_request(body)
        content = json.dumps(converse).encode()
        base = deployment.base_url.rstrip("/")
        action = "converse-stream" if stream else "converse"
        url = f"{base}/model/{quote(deployment.model, safe=':~')}/{action}"
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/vnd.amazon.eventstream" if stream else "application/json",
        }
        credentials = _credentials(deployment)
        if isinstance(credentials, str):
            headers["Authorization"] = f"Bearer {credentials}"
        elif credentials is not None:
            signed = AWSRequest(method="POST", url=url, data=content, headers=headers)
            SigV4Auth(credentials, "bedrock", aws_region(deployment)).add_auth(signed)
            headers = {name: str(value) for name, value in signed.headers.items()}
        return UpstreamRequest(url, headers, converse, content)

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """The modeled exception named by `x-amzn-ErrorType` (else the body), classified."""
        body = json_or_none(raw)
        fields = body if isinstance(body, Mapping) else {}
        name = _error_name(
            str(headers.get("x-amzn-ErrorType") or fields.get("code") or fields.get("__type") or "")
        )
        message = str(
            fields.get("message") or fields.get("Message") or f"upstream answered HTTP {status}"
        )
        outcome, code = _classify(name, message, status)
        if not name:
            outcome, code = classify_status(status), None
        envelope = openai_error_body(message, name or "upstream_error", code)
        return UpstreamError(
            outcome, status, envelope, retry_after_s(headers, body, now_epoch=time.time())
        )

    def decoder(self) -> StreamDecoder:
        """A fresh event-stream decoder."""
        return BedrockDecoder()
