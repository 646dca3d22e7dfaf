"""OpenAI Chat Completions upstream: the client's body passes through almost untouched.

The gateway's own ingress speaks this protocol, so translation is small: the route
name in `model` becomes the deployment's model, the call is streamed with
`stream_options.include_usage` (so the bill is known even for non-streaming clients),
and the chunks' deltas pass through as pieces. A non-streamed call (`stream=False`)
sends `stream: false` and no `stream_options` (OpenAI refuses them without a stream);
its `chat.completion` is read as one chunk whose delta is the whole message. Errors
are already in OpenAI's envelope; what is added is their outcome, from the status and
`error.code` (`invalid_prompt` is the content filter, `context_length_exceeded`,
`insufficient_quota`, …).
"""

from __future__ import annotations

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
from router.server.adapters.sse import SseEvent
from router.server.retry_after import retry_after_s

__all__ = ["OpenAIAdapter", "OpenAIDecoder", "error_outcome"]

_GATEWAY_ONLY = frozenset({"stream", "stream_options"})
"""Client fields the gateway sets itself on the upstream call."""

_MID_STREAM_TYPES: Mapping[str, Outcome] = {
    "server_error": Outcome.SERVER,
    "rate_limit_error": Outcome.RATE_LIMITED,
    "overloaded_error": Outcome.OVERLOADED,
    "invalid_request_error": Outcome.BAD_REQUEST,
}


def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def error_outcome(status: int, body: Any) -> tuple[Outcome, dict[str, Any]]:
    """The outcome of an OpenAI-style error answer, and its body as clients should see it."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        code = error.get("code") or error.get("type")
        outcome = classify_status(status, error_code=code if isinstance(code, str) else None)
        envelope = openai_error_body(
            str(error.get("message") or f"upstream answered HTTP {status}"),
            str(error.get("type") or "upstream_error"),
            code if isinstance(code, str) else None,
            error.get("param") if isinstance(error.get("param"), str) else None,
        )
        return outcome, envelope
    message = f"upstream answered HTTP {status} without an API error body"
    return classify_status(status), openai_error_body(message, "upstream_error")


class OpenAIDecoder(StreamDecoder):
    """`chat.completion.chunk` events to pieces; `[DONE]` ends the stream."""

    def feed(self, event: SseEvent) -> list[Piece]:
        """Deltas and finish reasons of one chunk; usage and errors are remembered."""
        data = event.data
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            chunk = loads_event(data)
        except ValueError:
            self.malformed += 1
            return []
        if not isinstance(chunk, dict):
            self.malformed += 1
            return []
        return self.chunk(chunk)

    def whole(self, document: dict[str, Any]) -> list[Piece]:
        """A `chat.completion` as the one chunk that would carry it: each choice's
        `message` is its `delta`, tool calls numbered as stream fragments are."""
        choices = []
        for choice in document.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            delta = dict(message) if isinstance(message, dict) else {}
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                delta["tool_calls"] = [
                    {**call, "index": index} if isinstance(call, dict) else call
                    for index, call in enumerate(calls)
                ]
            choices.append(
                {
                    "index": choice.get("index", 0),
                    "delta": delta,
                    "finish_reason": choice.get("finish_reason"),
                }
            )
        return self.chunk({**document, "choices": choices})

    def chunk(self, chunk: dict[str, Any]) -> list[Piece]:
        """The pieces of one decoded chunk (subclasses adjust vendor quirks here)."""
        if chunk.get("error"):
            error = chunk["error"]
            kind = str(error.get("type") or "") if isinstance(error, Mapping) else ""
            outcome = _MID_STREAM_TYPES.get(kind, Outcome.SERVER)
            _, body = error_outcome(500, chunk)
            self.error = UpstreamError(outcome, 200, body)
            return []
        # Everything below came out of the JSON decoder, so `dict` is the exact type test
        # for an object (the `Mapping` ABC check costs several times more, per event).
        model = chunk.get("model")
        if isinstance(model, str):
            self.model = model
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
        pieces: list[Piece] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, dict) and delta:
                _delta_pieces(delta, pieces)
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self.finished = True
                pieces.append(Piece(finish_reason=finish))
        return pieces


def _delta_pieces(delta: dict[str, Any], pieces: list[Piece]) -> None:
    """Append the pieces of one decoded `delta` to `pieces`."""
    content = delta.get("content")
    if content and isinstance(content, str):
        pieces.append(Piece({"content": content}, tokens=1))
    refusal = delta.get("refusal")
    if refusal and isinstance(refusal, str):
        pieces.append(Piece({"refusal": refusal}, tokens=1))
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict):
                pieces.append(Piece({"tool_calls": [dict(call)]}, tokens=1))


class OpenAIAdapter(Adapter):
    """api.openai.com and anything else that speaks Chat Completions."""

    protocol: ClassVar[str] = "openai"

    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """The client's body with the deployment's model, streamed with usage or not; the one
        place OpenAI-family subclasses reshape it."""
        upstream = {k: v for k, v in body.items() if k not in _GATEWAY_ONLY}
        upstream["model"] = deployment.model
        upstream["stream"] = stream
        if stream:
            upstream["stream_options"] = {"include_usage": True}
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if deployment.api_key is not None:
            headers["Authorization"] = f"Bearer {deployment.api_key.get_secret_value()}"
        return UpstreamRequest(_url(deployment.base_url, "/chat/completions"), headers, upstream)

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """Outcome from status and `error.code`; Retry-After from headers or the message."""
        body = json_or_none(raw)
        outcome, envelope = error_outcome(status, body)
        wait = retry_after_s(headers, body, now_epoch=time.time())
        return UpstreamError(outcome, status, envelope, wait)

    def decoder(self) -> StreamDecoder:
        """A fresh chunk decoder."""
        return OpenAIDecoder()
