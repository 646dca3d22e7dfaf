"""Anthropic Messages upstream: OpenAI chat requests out, Messages streams back as OpenAI.

Translation both ways (reference: Anthropic's OpenAI-compatibility notes and the
Messages API):

- System and developer messages become the top-level `system`; consecutive messages
  of one role are merged, as the API requires alternation.
- Assistant `tool_calls` become `tool_use` blocks (arguments parsed to an object);
  `tool` messages become `tool_result` blocks in a user turn.
- Tools become `input_schema` tools; `tool_choice` `required` is `any`, a named
  function is `{"type": "tool"}`; `parallel_tool_calls: false` disables parallel use.
- `max_tokens` is required by Anthropic: the client's, else the deployment's limit,
  else `DEFAULT_MAX_TOKENS`.
- Back: `text_delta` → content, `tool_use` blocks → OpenAI `tool_calls` (the
  `toolu_` id is kept: OpenAI clients treat ids as opaque strings), `input_json_delta`
  → argument fragments, stop reasons mapped (`refusal` → `content_filter`).
- A non-streamed call (`stream: false`) answers one `message`; the decoder replays it
  as the events that would have streamed it (`message_start`, a delta per text block,
  a start and one `input_json_delta` per `tool_use` block, `message_delta`), so both
  paths share the tables above.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

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
    loads_event,
    openai_error_body,
)
from router.server.adapters.chat_history import Image, content_parts, text_of
from router.server.adapters.sse import SseEvent
from router.server.retry_after import retry_after_s

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdapter",
    "AnthropicDecoder",
    "to_messages_request",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

STOP_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_ERROR_CODES: Mapping[str, str] = {
    "not_found_error": "model_not_found",
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limit_exceeded",
    "authentication_error": "invalid_api_key",
    "permission_error": "permission_denied",
    "api_error": "server_error",
}

_STREAM_ERRORS: Mapping[str, Outcome] = {
    "overloaded_error": Outcome.OVERLOADED,
    "rate_limit_error": Outcome.RATE_LIMITED,
    "api_error": Outcome.SERVER,
}


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image_block(image: Image) -> dict[str, Any]:
    if image.data is not None:
        source = {"type": "base64", "media_type": image.media_type, "data": image.data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": image.url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI content as Anthropic blocks (text and images)."""
    return content_parts(content, _text_block, _image_block)


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        arguments = {"arguments": raw}
    if not isinstance(arguments, dict):
        arguments = {"value": arguments}
    return {
        "type": "tool_use",
        "id": str(call.get("id", "")),
        "name": str(function.get("name", "")),
        "input": arguments,
    }


def _turns(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id", "")),
                "content": text_of(message.get("content")),
            }
            blocks, role = [block], "user"
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            blocks.extend(_tool_use(call) for call in message.get("tool_calls") or ())
        else:
            blocks, role = _blocks(message.get("content")), "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if isinstance(choice, Mapping):
        function = choice.get("function") or {}
        out: dict[str, Any] = {"type": "tool", "name": str(function.get("name", ""))}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "auto" or parallel is False:
        out = {"type": "auto"}
    else:
        return None
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def to_messages_request(
    body: Mapping[str, Any], deployment: Deployment, *, stream: bool = True
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body (streamed unless `stream` is False)."""
    system, turns = _turns(list(body.get("messages") or ()))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    request: dict[str, Any] = {
        "model": deployment.model,
        "messages": turns,
        "max_tokens": max_tokens or deployment.max_output_tokens or DEFAULT_MAX_TOKENS,
        "stream": stream,
    }
    if any(system):
        request["system"] = "\n\n".join(part for part in system if part)
    tools = body.get("tools")
    if tools:
        request["tools"] = [
            {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "input_schema": tool["function"].get("parameters")
                or {"type": "object", "properties": {}},
            }
            for tool in tools
        ]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            request["tool_choice"] = choice
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            request[name] = body[name]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    user = body.get("user")
    if isinstance(user, str) and user:
        request["metadata"] = {"user_id": user}
    return request


def _error_code(error: Mapping[str, Any]) -> str:
    """An OpenAI-style code for an Anthropic error, recognising filters and long prompts."""
    kind = str(error.get("type") or "")
    message = str(error.get("message") or "").lower()
    details = error.get("details")
    if isinstance(details, Mapping) and details.get("error_code") == "enforced_spend_limit_reached":
        return "insufficient_quota"
    if "content filtering" in message:
        return "content_filter"
    if "prompt is too long" in message or "context window" in message:
        return "context_length_exceeded"
    return _ERROR_CODES.get(kind, kind)


class AnthropicDecoder(StreamDecoder):
    """Named Messages events to pieces; `message_stop` ends the stream."""

    def __init__(self) -> None:
        super().__init__()
        self._tools: dict[int, int] = {}
        self._input_tokens = 0

    def feed(self, event: SseEvent) -> list[Piece]:
        """Text deltas, tool-use starts and fragments, and the stop reason."""
        try:
            data = loads_event(event.data)
        except ValueError:
            self.malformed += 1
            return []
        if not isinstance(data, dict):
            self.malformed += 1
            return []
        return self._event(data.get("type") or event.event, data)

    def whole(self, document: dict[str, Any]) -> list[Piece]:
        """A whole `message` (or an `error` document), replayed as its stream events."""
        if document.get("type") == "error":
            return self._event("error", document)
        pieces = self._event("message_start", {"message": document})
        for index, block in enumerate(document.get("content") or ()):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                delta = {"type": "text_delta", "text": block.get("text")}
                pieces += self._block_delta({"index": index, "delta": delta})
            elif block.get("type") == "tool_use":
                pieces += self._block_start({"index": index, "content_block": block})
                arguments = json.dumps(block.get("input") or {}, separators=(",", ":"))
                delta = {"type": "input_json_delta", "partial_json": arguments}
                pieces += self._block_delta({"index": index, "delta": delta})
        stop = {"delta": {"stop_reason": document.get("stop_reason")}}
        pieces += self._message_delta({**stop, "usage": document.get("usage") or {}})
        return pieces

    def _event(self, kind: Any, data: dict[str, Any]) -> list[Piece]:
        """One decoded event of type `kind`."""
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") or self.model
            usage = message.get("usage") or {}
            self._input_tokens = int(usage.get("input_tokens") or 0)
            self.usage = Usage(self._input_tokens, int(usage.get("output_tokens") or 0))
            return []
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self.done = True
        elif kind == "error":
            error = data.get("error") or {}
            outcome = _STREAM_ERRORS.get(str(error.get("type")), Outcome.SERVER)
            body = openai_error_body(
                str(error.get("message") or "upstream stream error"),
                "server_error",
                _error_code(error),
            )
            self.error = UpstreamError(outcome, 200, body)
        return []

    def _block_start(self, data: Mapping[str, Any]) -> list[Piece]:
        block = data.get("content_block") or {}
        if block.get("type") != "tool_use":
            return []
        index = len(self._tools)
        self._tools[int(data.get("index", 0))] = index
        call = {
            "index": index,
            "id": block.get("id", ""),
            "type": "function",
            "function": {"name": block.get("name", ""), "arguments": ""},
        }
        return [Piece({"tool_calls": [call]}, tokens=1)]

    def _block_delta(self, data: Mapping[str, Any]) -> list[Piece]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [Piece({"content": delta["text"]}, tokens=1)]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tools.get(int(data.get("index", 0)), 0)
            fragment = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [Piece({"tool_calls": [fragment]}, tokens=1)]
        return []

    def _message_delta(self, data: Mapping[str, Any]) -> list[Piece]:
        usage = data.get("usage") or {}
        if usage:
            self.usage = Usage(
                int(usage.get("input_tokens") or self._input_tokens),
                int(usage.get("output_tokens") or 0),
            )
        reason = (data.get("delta") or {}).get("stop_reason")
        if not isinstance(reason, str):
            return []
        self.finished = True
        return [Piece(finish_reason=STOP_REASONS.get(reason, "stop"))]


class AnthropicAdapter(Adapter):
    """api.anthropic.com (`POST /v1/messages`)."""

    protocol: ClassVar[str] = "anthropic"

    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """The Messages request, authenticated with `x-api-key`; with `stream: false` one
        `message` comes back."""
        base = deployment.base_url.rstrip("/")
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": deployment.api_version or ANTHROPIC_VERSION,
        }
        if deployment.api_key is not None:
            headers["x-api-key"] = deployment.api_key.get_secret_value()
        request = to_messages_request(body, deployment, stream=stream)
        return UpstreamRequest(url, headers, request)

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """`{"type": "error", "error": {...}}` as an OpenAI envelope, with its outcome."""
        body = json_or_none(raw)
        error = body.get("error") if isinstance(body, Mapping) else None
        wait = retry_after_s(headers, body, now_epoch=time.time())
        if not isinstance(error, Mapping):
            message = f"upstream answered HTTP {status} without an API error body"
            return UpstreamError(
                classify_status(status), status, openai_error_body(message, "upstream_error"), wait
            )
        code = _error_code(error)
        envelope = openai_error_body(
            str(error.get("message") or f"upstream answered HTTP {status}"),
            str(error.get("type") or "upstream_error"),
            code,
        )
        return UpstreamError(classify_status(status, error_code=code), status, envelope, wait)

    def decoder(self) -> StreamDecoder:
        """A fresh Messages-stream decoder."""
        return AnthropicDecoder()
