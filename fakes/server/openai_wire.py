"""OpenAI Chat Completions, byte for byte as far as the `openai` SDK and routers can tell.

Theory of operation: the chat route checks the bearer key, reads the body with
`openai_family.read_chat` (refusing the first bad field with OpenAI's message, `param` and
`code`), runs cross-message rules (every tool call answered, every tool result answering
one), and hands the resulting `Call` to the server. Answers, streams and errors are then
rendered here from vendor-neutral facts.

`OpenAIWire` is also the base of the Azure OpenAI and Mistral wires, which speak dialects
of the same protocol. Each difference is one overridable method (`_refusal`, `_error_body`,
`_headers`, `_message`, `_usage`, `_finish_reason`, `_tool_call_id`, the stream class), so a
subclass reads as a list of what its vendor does differently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from aiohttp import web

from fakes.server.openai_family import (
    ChatRequest,
    ChatRules,
    Invalid,
    Turn,
    go_duration,
    load_body,
    local_reply,
    read_chat,
)
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
    split_directive,
)
from router.core.tokens import count_prompt

__all__ = ["OpenAIStream", "OpenAIWire", "Refusal", "sse"]

MODEL_CREATED = 1_715_367_049
"""The `created` stamp model listings show (a fixed date: listings do not change per call)."""

FRAGMENT_CHARS = 5
"""Characters of tool-call arguments per streamed fragment (real fragments are token-sized)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error as a vendor words it (status and envelope fields), before it becomes bytes."""

    status: int
    message: str
    type: str | None
    code: str | None = None
    param: str | None = None
    bare: bool = False
    """Only `code` and `message` in the envelope (Azure's gateway-level errors)."""


_RATE_MESSAGE = (
    "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
    "Limit {limit}, Used {used}, Requested 1. Please try again in {wait}. "
    "Visit https://platform.openai.com/account/rate-limits to learn more."
)

_REFUSALS: Mapping[ErrorKind, Refusal] = {
    ErrorKind.INVALID_REQUEST: Refusal(400, "Invalid request.", "invalid_request_error"),
    ErrorKind.CONTEXT_LENGTH: Refusal(
        400,
        "This model's maximum context length is exceeded. Please reduce the length of the "
        "messages or completion.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    ),
    ErrorKind.AUTH: Refusal(
        401,
        "Incorrect API key provided: sk-fake***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    ErrorKind.MODEL_GONE: Refusal(
        404,
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    ErrorKind.RATE_LIMITED: Refusal(429, _RATE_MESSAGE, "requests", "rate_limit_exceeded"),
    ErrorKind.QUOTA: Refusal(
        429,
        "You exceeded your current quota, please check your plan and billing details. For "
        "more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
    ),
    ErrorKind.SERVER: Refusal(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    ),
    ErrorKind.OVERLOADED: Refusal(
        503, "The engine is currently overloaded, please try again later", "server_error"
    ),
    ErrorKind.NOT_READY: Refusal(
        503, "The model is currently loading, please try again later", "server_error"
    ),
    ErrorKind.CONTENT_FILTER: Refusal(
        400,
        "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
        "Please try again with a different prompt: "
        "https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
        "invalid_request_error",
        "invalid_prompt",
    ),
}

_MISSING_KEY = Refusal(
    401,
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API "
    "key from https://platform.openai.com/account/api-keys.",
    "invalid_request_error",
)


def sse(payload: Mapping[str, Any]) -> bytes:
    """One SSE `data:` event carrying compact JSON."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _fragments(text: str) -> list[str]:
    return [text[i : i + FRAGMENT_CHARS] for i in range(0, len(text), FRAGMENT_CHARS)] or [""]


class OpenAIWire(Wire):
    """`POST /v1/chat/completions` and `GET /v1/models` as api.openai.com serves them."""

    protocol: ClassVar[str] = "openai"
    rules: ClassVar[ChatRules] = ChatRules()
    owned_by: ClassVar[str] = "system"

    def routes(self, serve: ChatHandler, models: Sequence[str]) -> list[web.RouteDef]:
        """Chat completions plus the model listing and lookup the SDK's `models` calls use."""

        async def chat(request: web.Request) -> web.StreamResponse:
            return await self._chat(request, serve, deployment=None)

        async def list_models(request: web.Request) -> web.Response:
            return await self._list_models(request, models)

        async def get_model(request: web.Request) -> web.Response:
            return await self._get_model(request, models)

        return [
            web.post("/v1/chat/completions", chat),
            web.get("/v1/models", list_models),
            web.get("/v1/models/{model}", get_model),
        ]

    # -- requests -------------------------------------------------------------------

    async def _chat(
        self, request: web.Request, serve: ChatHandler, *, deployment: str | None
    ) -> web.StreamResponse:
        """Auth, then the body, then vendor rules; the first failure answers the request."""
        raw = await request.read()
        reply = local_reply(raw)
        if not self._authorized(request):
            return self._render(self._unauthenticated(), reply)
        try:
            chat = read_chat(load_body(raw), self.rules)
            self._check(chat)
        except Invalid as problem:
            return self._render(self._invalid(problem, reply), reply)
        return await serve(request, self._call(chat, deployment), self)

    def _invalid(self, problem: Invalid, reply: Reply) -> Refusal:
        """A malformed request in the vendor's envelope, naming the offending field."""
        refusal = self._refusal(ErrorKind.INVALID_REQUEST, problem.message, None, reply)
        return replace(refusal, param=problem.param, code=problem.code)

    def _authorized(self, request: web.Request) -> bool:
        """A non-empty bearer key is enough: the fake checks presence, not identity."""
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(key.strip())

    def _unauthenticated(self) -> Refusal:
        """The refusal for a request with no usable key."""
        return _MISSING_KEY

    def _check(self, chat: ChatRequest) -> None:
        """OpenAI's pairing rule: each tool result answers a call, each call gets a result."""
        pending: set[str] = set()
        for turn in chat.turns:
            if turn.role == "tool":
                if turn.answers not in pending:
                    raise Invalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.",
                        f"messages.[{turn.index}].role",
                    )
                pending.discard(turn.answers)
                continue
            _require_answered(pending, turn)
            pending = set(turn.calls)
        if pending:
            _require_answered(pending, chat.turns[-1])

    def _call(self, chat: ChatRequest, deployment: str | None) -> Call:
        """The vendor-neutral call, with the fault directive split off the model name."""
        model, fault = split_directive(deployment or chat.model or "")
        return Call(
            protocol=self.protocol,
            model=model,
            stream=chat.stream,
            input_tokens=count_prompt(turn.pieces for turn in chat.turns),
            prompt=chat.prompt,
            max_tokens=chat.max_tokens,
            tools=chat.tools,
            tool_choice=chat.tool_choice,
            include_usage=chat.include_usage,
            fault=fault,
            deployment=model if deployment is not None else None,
            carries_on=_carries_on(chat.turns[-1]),
        )

    async def _list_models(self, request: web.Request, models: Sequence[str]) -> web.Response:
        reply = local_reply(request.path.encode())
        if not self._authorized(request):
            return self._render(self._unauthenticated(), reply)
        cards = [self._model_card(model) for model in models]
        return web.json_response({"object": "list", "data": cards}, headers=self._headers(reply))

    async def _get_model(self, request: web.Request, models: Sequence[str]) -> web.Response:
        reply = local_reply(request.path.encode())
        if not self._authorized(request):
            return self._render(self._unauthenticated(), reply)
        name = request.match_info["model"]
        if name not in models:
            message = f"The model '{name}' does not exist"
            return self.error(ErrorKind.MODEL_GONE, reply, message=message)
        return web.json_response(self._model_card(name), headers=self._headers(reply))

    def _model_card(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": self.owned_by}

    # -- answers --------------------------------------------------------------------

    def complete(self, call: Call, answer: Answer, reply: Reply) -> web.Response:
        """A `chat.completion` object with usage."""
        return web.json_response(
            self._completion(call, answer, reply), headers=self._headers(reply)
        )

    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """`chat.completion.chunk` events, then `data: [DONE]`."""
        return OpenAIStream(self, call, answer, reply)

    def _completion(self, call: Call, answer: Answer, reply: Reply) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": self._message(answer, reply),
            "logprobs": None,
            "finish_reason": self._finish_reason(answer.finish),
            **self._choice_extras(answer),
        }
        return {
            "id": self._completion_id(reply),
            "object": "chat.completion",
            "created": reply.created,
            "model": call.model,
            "choices": [choice],
            "usage": self._usage(answer),
            **self._completion_extras(reply),
        }

    def _message(self, answer: Answer, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.pieces or not answer.tool_uses else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_uses:
            message["tool_calls"] = self._tool_calls(answer, reply)
        return message

    def _tool_calls(self, answer: Answer, reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": self._tool_call_id(reply, i),
                "type": "function",
                "function": {"name": use.name, "arguments": json.dumps(dict(use.arguments))},
            }
            for i, use in enumerate(answer.tool_uses)
        ]

    def _choice_extras(self, answer: Answer) -> dict[str, Any]:
        """Vendor fields on each choice (Azure's `content_filter_results`)."""
        return {}

    def _completion_extras(self, reply: Reply) -> dict[str, Any]:
        """Vendor fields on the response and on every chunk."""
        return {"service_tier": "default", "system_fingerprint": f"fp_{reply.token[:10]}"}

    def _usage(self, answer: Answer) -> dict[str, Any]:
        return {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _finish_reason(self, finish: Finish) -> str:
        return "length" if finish == Finish.CONTEXT else finish.value

    def _completion_id(self, reply: Reply) -> str:
        return f"chatcmpl-{reply.token}"

    def _tool_call_id(self, reply: Reply, index: int) -> str:
        """`call_` and 24 alphanumerics, distinct per call of one answer."""
        return f"call_{reply.token[index:]}{reply.token[:index]}"

    # -- headers --------------------------------------------------------------------

    def _headers(self, reply: Reply) -> dict[str, str]:
        """Request id, rate-limit state and the SDK's retry override, on every response."""
        headers = {"x-request-id": f"req_{reply.token}", "openai-version": "2020-10-01"}
        if reply.rate is not None:
            headers.update(self._rate_headers(reply.rate))
        if reply.should_retry is not None:
            headers["x-should-retry"] = "true" if reply.should_retry else "false"
        return headers

    def _rate_headers(self, rate: RateSnapshot) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(rate.limit_requests),
            "x-ratelimit-limit-tokens": str(rate.limit_tokens),
            "x-ratelimit-remaining-requests": str(rate.remaining_requests),
            "x-ratelimit-remaining-tokens": str(rate.remaining_tokens),
            "x-ratelimit-reset-requests": go_duration(rate.reset_requests_s),
            "x-ratelimit-reset-tokens": go_duration(rate.reset_tokens_s),
        }

    def _retry_headers(self, retry_after_s: float) -> dict[str, str]:
        """`retry-after` in whole seconds and `retry-after-ms`, which the SDK prefers."""
        return {
            "retry-after": str(math.ceil(retry_after_s)),
            "retry-after-ms": str(round(retry_after_s * 1000)),
        }

    # -- errors ---------------------------------------------------------------------

    def error(
        self,
        kind: ErrorKind,
        reply: Reply,
        *,
        message: str | None = None,
        retry_after_s: float | None = None,
    ) -> web.Response:
        """OpenAI's status and `{"error": {...}}` envelope, with retry hints when given."""
        response = self._render(self._refusal(kind, message, retry_after_s, reply), reply)
        if retry_after_s is not None:
            response.headers.update(self._retry_headers(retry_after_s))
        return response

    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """400 `invalid_prompt`, as OpenAI answers a prompt its usage policy flags."""
        return self.error(ErrorKind.CONTENT_FILTER, reply)

    def _refusal(
        self, kind: ErrorKind, message: str | None, retry_after_s: float | None, reply: Reply
    ) -> Refusal:
        """The vendor's wording of `kind`; `message` overrides the default text."""
        refusal = _REFUSALS[kind]
        if message is not None:
            return replace(refusal, message=message)
        if kind != ErrorKind.RATE_LIMITED:
            return refusal
        rate = reply.rate
        wait = retry_after_s if retry_after_s is not None else rate.reset_requests_s if rate else 1
        limit = rate.limit_requests if rate else 500
        text = _RATE_MESSAGE.format(
            model="this model", limit=limit, used=limit, wait=go_duration(wait)
        )
        return replace(refusal, message=text)

    def _error_body(self, refusal: Refusal) -> dict[str, Any]:
        return {
            "error": {
                "message": refusal.message,
                "type": refusal.type,
                "param": refusal.param,
                "code": refusal.code,
            }
        }

    def _render(self, refusal: Refusal, reply: Reply) -> web.Response:
        return web.json_response(
            self._error_body(refusal), status=refusal.status, headers=self._headers(reply)
        )

    def _stream_error(self, kind: ErrorKind, message: str, reply: Reply) -> dict[str, Any]:
        """The payload of a mid-stream error event: `{"error": {...}}`, which the SDK raises."""
        refusal = self._refusal(kind, message, None, reply)
        return {
            "error": {
                "message": refusal.message,
                "type": refusal.type,
                "param": None,
                "code": refusal.code,
            }
        }

    def _whole_stream(self, call: Call, answer: Answer, reply: Reply) -> web.Response:
        """A complete answer as one response, streamed or not as the call asked."""
        if not call.stream:
            return self.complete(call, answer, reply)
        encoder = self.stream(call, answer, reply)
        body = encoder.start() + b"".join(encoder.text(piece) for piece in answer.pieces)
        if answer.tool_uses:
            body += encoder.tools()
        body += encoder.finish()
        return web.Response(
            body=body,
            headers={"Content-Type": encoder.content_type, **encoder.headers()},
        )


def _require_answered(pending: set[str], turn: Turn) -> None:
    if pending:
        missing = ", ".join(sorted(pending))
        raise Invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {missing}",
            f"messages.[{turn.index}].role",
        )


class OpenAIStream(StreamEncoder):
    """Chunks sharing one id: role first, text deltas, tool fragments, finish, usage, `[DONE]`."""

    def __init__(self, wire: OpenAIWire, call: Call, answer: Answer, reply: Reply) -> None:
        self._wire = wire
        self._call = call
        self._answer = answer
        self._reply = reply

    def headers(self) -> dict[str, str]:
        """Request id and rate-limit headers, as on a non-streamed answer."""
        return self._wire._headers(self._reply)

    def start(self) -> bytes:
        """The role delta (`content: null` when the answer is only tool calls)."""
        content = None if self._answer.tool_uses and not self._answer.pieces else ""
        return self._chunk({"role": "assistant", "content": content, "refusal": None})

    def text(self, piece: str) -> bytes:
        """One content delta."""
        return self._chunk({"content": piece})

    def tools(self) -> bytes:
        """Per call: id, type and name with empty arguments, then argument fragments."""
        out = b""
        calls = self._wire._tool_calls(self._answer, self._reply)
        for index, call in enumerate(calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            out += self._chunk({"tool_calls": [head]})
            for piece in _fragments(call["function"]["arguments"]):
                fragment = {"index": index, "function": {"arguments": piece}}
                out += self._chunk({"tool_calls": [fragment]})
        return out

    def finish(self, *, usage: bool = True, terminator: bool = True) -> bytes:
        """Empty delta with the finish reason; the usage chunk if asked for; `[DONE]`."""
        out = self._chunk({}, self._wire._finish_reason(self._answer.finish))
        if usage and self._call.include_usage:
            usage_body = self._wire._usage(self._answer)
            out += sse({**self._base(), "choices": [], "usage": usage_body})
        return out + (b"data: [DONE]\n\n" if terminator else b"")

    def error(self, kind: ErrorKind, message: str) -> bytes:
        """`data: {"error": {...}}` after a 200, which the SDK raises as `APIError`."""
        return sse(self._wire._stream_error(kind, message, self._reply))

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._wire._completion_id(self._reply),
            "object": "chat.completion.chunk",
            "created": self._reply.created,
            "model": self._call.model,
            **self._wire._completion_extras(self._reply),
        }

    def _choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = {**self._base(), "choices": [self._choice(delta, finish_reason)]}
        if self._call.include_usage:
            chunk["usage"] = None
        return sse(chunk)


def _carries_on(last: Turn) -> bool:
    """A final assistant message with text and no tool calls is an answer to carry on."""
    return last.role == "assistant" and any(last.pieces) and not last.calls
