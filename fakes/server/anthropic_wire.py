"""Anthropic's Messages API (`POST /v1/messages`), byte for byte as the `anthropic` SDK reads it.

What makes Anthropic its own wire (reference/providers.md §1.3): auth by `x-api-key` plus a
mandatory `anthropic-version` header; `max_tokens` is required; content is a string or a
list of typed blocks; tool calls are `tool_use` blocks whose `input` is a JSON *object*
and whose results come back as `tool_result` blocks in the next user turn; a stream is a
sequence of *named* SSE events (`event: message_start` … `event: message_stop`) with
tool input split into `input_json_delta` fragments; overload is the vendor-specific 529
`overloaded_error`; rate-limit resets are RFC 3339 timestamps, not durations; and a
refusal is a 200 with `stop_reason: "refusal"`, not an error.

Deliberate choices where the vendor gives no single answer:

- `ErrorKind.QUOTA` is the 429 tier spend cap (`error.details.error_code:
  "enforced_spend_limit_reached"`, no `retry-after`): the reference's "429 that waiting
  will not fix", which the SDK raises as `EnforcedSpendLimitReachedError`.
- `ErrorKind.NOT_READY` is a 529 `overloaded_error`: Anthropic has no warming-model
  state and its documented error table (§1.3) has no 503, so "not ready" looks like load.
- `ErrorKind.CONTENT_FILTER` as an error is the real 400 "Output blocked by content
  filtering policy"; `blocked_prompt` is the 200 refusal with empty content.
- Consecutive turns of one role are accepted, because the API merges them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from fakes.server.anthropic_request import Invalid, parse_call
from fakes.server.wire import (
    Answer,
    Call,
    ChatHandler,
    ErrorKind,
    Finish,
    RateSnapshot,
    Reply,
    StreamEncoder,
    Wire,
)

__all__ = ["AnthropicWire"]

_STOP_REASONS: Mapping[Finish, str] = {
    Finish.STOP: "end_turn",
    Finish.LENGTH: "max_tokens",
    Finish.TOOL_CALLS: "tool_use",
    Finish.CONTENT_FILTER: "refusal",
    Finish.CONTEXT: "model_context_window_exceeded",
}


_REFUSAL_DETAILS: Mapping[str, Any] = {
    "type": "refusal",
    "category": None,
    "explanation": "The fake provider's safety policy declined this request.",
}


@dataclass(frozen=True, slots=True)
class _Refusal:
    """How Anthropic says one `ErrorKind`: status, `error.type` and the default message."""

    status: int
    type: str
    message: str
    error_code: str | None = None


_REFUSALS: Mapping[ErrorKind, _Refusal] = {
    ErrorKind.INVALID_REQUEST: _Refusal(400, "invalid_request_error", "Invalid request."),
    ErrorKind.CONTEXT_LENGTH: _Refusal(
        400, "invalid_request_error", "prompt is too long: 200001 tokens > 200000 maximum"
    ),
    ErrorKind.AUTH: _Refusal(401, "authentication_error", "invalid x-api-key"),
    ErrorKind.MODEL_GONE: _Refusal(404, "not_found_error", "model: not found"),
    ErrorKind.RATE_LIMITED: _Refusal(
        429,
        "rate_limit_error",
        "This request would exceed your account's rate limit. Please try again later.",
    ),
    ErrorKind.QUOTA: _Refusal(
        429,
        "rate_limit_error",
        "You have reached your API usage limits for this period.",
        error_code="enforced_spend_limit_reached",
    ),
    ErrorKind.SERVER: _Refusal(500, "api_error", "Internal server error"),
    ErrorKind.OVERLOADED: _Refusal(529, "overloaded_error", "Overloaded"),
    ErrorKind.NOT_READY: _Refusal(529, "overloaded_error", "Overloaded"),
    ErrorKind.CONTENT_FILTER: _Refusal(
        400, "invalid_request_error", "Output blocked by content filtering policy"
    ),
}

_RETRY_AFTER_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.NOT_READY})


class AnthropicWire(Wire):
    """Anthropic's Messages API: `/v1/messages` (plain and streamed) and `/v1/models`."""

    protocol: ClassVar[str] = "anthropic"

    def routes(self, serve: ChatHandler, models: Sequence[str]) -> list[web.RouteDef]:
        """The chat route and a model listing, both behind the `x-api-key` check."""

        async def messages(request: web.Request) -> web.StreamResponse:
            refused = self._refuse_headers(request)
            if refused is not None:
                return refused
            try:
                call = parse_call(await _json_body(request))
            except Invalid as problem:
                return self.error(
                    ErrorKind.INVALID_REQUEST, _route_reply(request), message=str(problem)
                )
            return await serve(request, call, self)

        async def list_models(request: web.Request) -> web.StreamResponse:
            refused = self._refuse_headers(request)
            return refused if refused is not None else _model_list(models)

        return [web.post("/v1/messages", messages), web.get("/v1/models", list_models)]

    def _refuse_headers(self, request: web.Request) -> web.Response | None:
        """The 401 or 400 a request gets before its body is read, or None when it may pass."""
        reply = _route_reply(request)
        if not (request.headers.get("x-api-key") or _bearer(request)):
            return self.error(ErrorKind.AUTH, reply, message="x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            problem = "anthropic-version: header is required"
            return self.error(ErrorKind.INVALID_REQUEST, reply, message=problem)
        return None

    def complete(self, call: Call, answer: Answer, reply: Reply) -> web.Response:
        """A `message` object: text and `tool_use` blocks, stop reason, usage."""
        content: list[dict[str, Any]] = []
        if answer.pieces:
            content.append({"type": "text", "text": answer.text})
        content.extend(_tool_blocks(answer, reply))
        body = _message(call, reply, content, stop_reason=_STOP_REASONS[answer.finish])
        body["usage"] = _usage(answer.input_tokens, answer.output_tokens)
        return web.json_response(body, headers=_headers(reply))

    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """Named SSE events from `message_start` to `message_stop`."""
        return _MessageStream(call, answer, reply)

    def error(
        self,
        kind: ErrorKind,
        reply: Reply,
        *,
        message: str | None = None,
        retry_after_s: float | None = None,
    ) -> web.Response:
        """`{"type":"error","error":{…},"request_id"}` with `request-id` and, on a 429, the
        `retry-after` and `anthropic-ratelimit-*` headers the SDK and routers read."""
        refusal = _REFUSALS[kind]
        headers = _headers(reply)
        if refusal.status == 429 and refusal.error_code is None:
            wait_s = retry_after_s if retry_after_s is not None else 1.0
            headers.update(_rate_headers(reply.rate or _fallback_rate(wait_s), reply.now_epoch))
        if retry_after_s is not None and kind in _RETRY_AFTER_KINDS:
            headers["retry-after"] = str(max(1, math.ceil(retry_after_s)))
        body = _error_body(refusal, reply, message or refusal.message)
        return web.json_response(body, status=refusal.status, headers=headers)

    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """A 200 refusal with no content (Anthropic does not reject prompts with an error)."""
        refused = Answer((), (), Finish.CONTENT_FILTER, call.input_tokens, 0)
        if not call.stream:
            return self.complete(call, refused, reply)
        events = _MessageStream(call, refused, reply)
        body = events.start() + events.finish()
        return web.Response(body=body, content_type="text/event-stream", headers=events.headers())


class _MessageStream(StreamEncoder):
    """One streamed message; remembers whether the text block is still open."""

    def __init__(self, call: Call, answer: Answer, reply: Reply) -> None:
        self._call = call
        self._answer = answer
        self._reply = reply
        self._text_open = False

    def headers(self) -> dict[str, str]:
        return _headers(self._reply)

    def start(self) -> bytes:
        message = _message(self._call, self._reply, [], stop_reason=None)
        message["usage"] = _usage(self._answer.input_tokens, 1)
        out = _event({"type": "message_start", "message": message})
        if self._answer.pieces:
            self._text_open = True
            block = {"type": "text", "text": ""}
            out += _event({"type": "content_block_start", "index": 0, "content_block": block})
        return out + self.ping()

    def text(self, piece: str) -> bytes:
        delta = {"type": "text_delta", "text": piece}
        return _event({"type": "content_block_delta", "index": 0, "delta": delta})

    def tools(self) -> bytes:
        out = self._close_text()
        first = 1 if self._answer.pieces else 0
        for offset, block in enumerate(_tool_blocks(self._answer, self._reply)):
            out += _tool_events(first + offset, block)
        return out

    def finish(self, *, usage: bool = True, terminator: bool = True) -> bytes:
        out = self._close_text()
        stop_reason = _STOP_REASONS[self._answer.finish]
        delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": None}
        if stop_reason == "refusal":
            delta["stop_details"] = dict(_REFUSAL_DETAILS)
        event: dict[str, Any] = {"type": "message_delta", "delta": delta}
        if usage:
            event["usage"] = _usage(
                self._answer.input_tokens, self._answer.output_tokens, tier=False
            )
        out += _event(event)
        if terminator:
            out += _event({"type": "message_stop"})
        return out

    def error(self, kind: ErrorKind, message: str) -> bytes:
        return _event(_error_body(_REFUSALS[kind], self._reply, message))

    def malformed(self) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_del\n\n'
        )

    def ping(self) -> bytes:
        return _event({"type": "ping"})

    def _close_text(self) -> bytes:
        if not self._text_open:
            return b""
        self._text_open = False
        return _event({"type": "content_block_stop", "index": 0})


def _tool_events(index: int, block: Mapping[str, Any]) -> bytes:
    """A `tool_use` block streamed: empty input, then its JSON in `input_json_delta` pieces."""
    opening = {**block, "input": {}}
    out = _event({"type": "content_block_start", "index": index, "content_block": opening})
    for fragment in ["", *_fragments(json.dumps(block["input"]))]:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        out += _event({"type": "content_block_delta", "index": index, "delta": delta})
    return out + _event({"type": "content_block_stop", "index": index})


def _fragments(text: str, size: int = 12) -> list[str]:
    """Cut `text` into pieces the way the API does: arbitrary, not at JSON boundaries."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _event(data: Mapping[str, Any]) -> bytes:
    """One named SSE event; Anthropic names every event after its payload's `type`."""
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {data['type']}\ndata: {payload}\n\n".encode()


def _message(
    call: Call, reply: Reply, content: list[dict[str, Any]], *, stop_reason: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"msg_{reply.token}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
    }
    if stop_reason == "refusal":
        body["stop_details"] = dict(_REFUSAL_DETAILS)
    return body


def _tool_blocks(answer: Answer, reply: Reply) -> list[dict[str, Any]]:
    """`tool_use` blocks with `toolu_` ids (24 characters after the prefix, like the API's)."""
    return [
        {
            "type": "tool_use",
            "id": f"toolu_{reply.token[:22]}{i:02d}",
            "name": use.name,
            "input": dict(use.arguments),
        }
        for i, use in enumerate(answer.tool_uses)
    ]


def _usage(input_tokens: int, output_tokens: int, *, tier: bool = True) -> dict[str, Any]:
    """A message's usage; `message_delta` sends the same cumulative totals without the tier."""
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }
    if tier:
        usage["service_tier"] = "standard"
    return usage


def _error_body(refusal: _Refusal, reply: Reply, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"type": refusal.type, "message": message}
    if refusal.error_code is not None:
        error["details"] = {"error_code": refusal.error_code}
    return {"type": "error", "error": error, "request_id": _request_id(reply)}


def _request_id(reply: Reply) -> str:
    return f"req_{reply.token}"


def _headers(reply: Reply) -> dict[str, str]:
    """`request-id` on every response, and the rate-limit family when the server knows it."""
    headers = {"request-id": _request_id(reply)}
    if reply.rate is not None:
        headers.update(_rate_headers(reply.rate, reply.now_epoch))
    return headers


def _rate_headers(rate: RateSnapshot, now_epoch: float) -> dict[str, str]:
    """`anthropic-ratelimit-*` headers; resets are RFC 3339 instants, not durations."""
    families = {
        "requests": (rate.limit_requests, rate.remaining_requests, rate.reset_requests_s),
        "tokens": (rate.limit_tokens, rate.remaining_tokens, rate.reset_tokens_s),
    }
    headers = {}
    for family, (limit, remaining, reset_s) in families.items():
        headers[f"anthropic-ratelimit-{family}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{family}-remaining"] = str(remaining)
        headers[f"anthropic-ratelimit-{family}-reset"] = _rfc3339(now_epoch + reset_s)
    return headers


def _fallback_rate(wait_s: float) -> RateSnapshot:
    """Tier-1 limits (50 requests, 40k tokens a minute) for a 429 that came without rate
    state: the headers are always sent, and the requests bucket is the one that ran out."""
    return RateSnapshot(
        limit_requests=50,
        remaining_requests=0,
        reset_requests_s=wait_s,
        limit_tokens=40_000,
        remaining_tokens=40_000,
        reset_tokens_s=wait_s,
    )


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _route_reply(request: web.Request) -> Reply:
    """A Reply for answers the route gives itself, before the server has drawn one.

    Its token hashes the request line, so a refused request gets a stable `request-id`
    without drawing from the server's seeded generator.
    """
    token = hashlib.blake2b(f"{request.method} {request.path_qs}".encode(), digest_size=12)
    now = time.time()
    return Reply(token=token.hexdigest(), created=int(now), now_epoch=now)


def _model_list(models: Sequence[str]) -> web.Response:
    """One page holding every model, in `/v1/models`' paginated envelope."""
    created = "2025-01-01T00:00:00Z"
    data = [{"type": "model", "id": m, "display_name": m, "created_at": created} for m in models]
    first, last = (models[0], models[-1]) if models else (None, None)
    return web.json_response({"data": data, "has_more": False, "first_id": first, "last_id": last})


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise Invalid(f"Request body is not valid JSON: {problem}") from problem
