"""Mistral's chat completions: OpenAI-shaped, with the differences that trip routers up.

The one that matters most is tool-call ids: Mistral makes them exactly 9 alphanumerics
and refuses (400) any request whose history carries an id of another shape, so a
conversation started on OpenAI (`call_…`) or Anthropic (`toolu_…`) and failed over to
Mistral breaks unless the router rewrites the ids. The others: errors in a flat
`{"object": "error", …}` envelope, `model_length` when an answer hits the context window,
`tool_choice: "any"`, no `stream_options` (usage always rides on the last chunk), whole
tool calls in one chunk rather than fragments, and no prompt filter (a refused prompt is
an ordinary answer that declines).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, ClassVar

from aiohttp import web

from fakes.server.openai_family import ChatRequest, ChatRules, Invalid
from fakes.server.openai_wire import OpenAIStream, OpenAIWire, Refusal, sse
from fakes.server.wire import Answer, Call, ErrorKind, Finish, RateSnapshot, Reply, StreamEncoder
from router.core.tokens import count_text

__all__ = ["MistralStream", "MistralWire", "valid_tool_call_id"]

TOOL_CALL_ID_LENGTH = 9

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

_REFUSAL_TEXT = "I'm sorry, but I can't help with that request."

_FINISH_REASONS: Mapping[Finish, str] = MappingProxyType(
    {
        Finish.STOP: "stop",
        Finish.LENGTH: "length",
        Finish.TOOL_CALLS: "tool_calls",
        Finish.CONTEXT: "model_length",
        Finish.CONTENT_FILTER: "error",
    }
)
"""Mistral has no `content_filter` reason; an answer cut short by the fake's filter ends
with `error`, the only reason Mistral has for an abnormal end."""

_MISTRAL_REFUSALS: Mapping[ErrorKind, Refusal] = {
    ErrorKind.INVALID_REQUEST: Refusal(400, "Invalid request", "invalid_request_error"),
    ErrorKind.CONTEXT_LENGTH: Refusal(
        400,
        "Prompt contains too many tokens, too large for model's maximum context length",
        "invalid_request_error",
    ),
    ErrorKind.AUTH: Refusal(401, "Unauthorized", "unauthorized"),
    ErrorKind.MODEL_GONE: Refusal(404, "Invalid model", "invalid_model", "1500"),
    ErrorKind.RATE_LIMITED: Refusal(429, "Rate limit exceeded", "rate_limited", "1300"),
    ErrorKind.QUOTA: Refusal(
        429,
        "Service tier capacity exceeded for this model.",
        "service_tier_capacity_exceeded",
        "3505",
    ),
    ErrorKind.SERVER: Refusal(500, "Internal server error", "internal_server_error"),
    ErrorKind.OVERLOADED: Refusal(
        503, "This model is currently overloaded. Please try again later.", "service_unavailable"
    ),
    ErrorKind.NOT_READY: Refusal(
        503, "This model is currently unavailable. Please try again later.", "service_unavailable"
    ),
    ErrorKind.CONTENT_FILTER: Refusal(
        400, "Prompt rejected by moderation", "invalid_request_error"
    ),
}


def valid_tool_call_id(value: str) -> bool:
    """Mistral's rule: exactly 9 characters from a-z, A-Z, 0-9."""
    return len(value) == TOOL_CALL_ID_LENGTH and set(value) <= _ALNUM


class MistralWire(OpenAIWire):
    """`POST /v1/chat/completions` and `GET /v1/models` as api.mistral.ai serves them."""

    protocol: ClassVar[str] = "mistral"
    rules: ClassVar[ChatRules] = ChatRules(
        tool_choices=MappingProxyType(
            {"none": "none", "auto": "auto", "any": "required", "required": "required"}
        ),
        token_fields=("max_tokens",),
        stream_options=False,
    )
    owned_by: ClassVar[str] = "mistralai"

    # -- requests -------------------------------------------------------------------

    def _check(self, chat: ChatRequest) -> None:
        """Every tool-call id in the history is 9 alphanumerics; calls and results pair up;
        a final assistant message is a prefix to carry on from, and must say so."""
        last = chat.turns[-1]
        if last.role == "assistant" and not last.calls and not last.prefix:
            raise Invalid(
                "Expected last role User or Tool (or Assistant with prefix True) for serving "
                "but got assistant"
            )
        for turn in chat.turns:
            for sent in (*turn.calls, *([turn.answers] if turn.answers is not None else [])):
                if not valid_tool_call_id(sent):
                    raise Invalid(
                        f"Tool call id was {sent} but must be a-z, A-Z, 0-9, with a length of 9."
                    )
        calls = sum(len(turn.calls) for turn in chat.turns)
        results = sum(1 for turn in chat.turns if turn.role == "tool")
        if calls != results:
            raise Invalid("Not the same number of function calls and responses")

    def _call(self, chat: ChatRequest, deployment: str | None) -> Call:
        """Mistral reports usage on every stream, asked or not."""
        return replace(super()._call(chat, deployment), include_usage=True)

    def _invalid(self, problem: Invalid, reply: Reply) -> Refusal:
        """Mistral names the problem in the message only: `param` and `code` are null."""
        return self._refusal(ErrorKind.INVALID_REQUEST, problem.message, None, reply)

    def _model_card(self, model: str) -> dict[str, Any]:
        card = super()._model_card(model)
        card.update(
            {
                "capabilities": {
                    "completion_chat": True,
                    "completion_fim": False,
                    "function_calling": True,
                    "fine_tuning": False,
                    "vision": False,
                },
                "name": model,
                "aliases": [],
                "deprecation": None,
                "type": "base",
            }
        )
        return card

    # -- answers --------------------------------------------------------------------

    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """OpenAI-like chunks with whole tool calls and usage on the finishing chunk."""
        return MistralStream(self, call, answer, reply)

    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """Mistral filters no prompts: the model itself declines, in an ordinary 200 answer."""
        words = _REFUSAL_TEXT.split(" ")
        pieces = tuple(("" if i == 0 else " ") + word for i, word in enumerate(words))
        answer = Answer(pieces, (), Finish.STOP, call.input_tokens, count_text(_REFUSAL_TEXT))
        return self._whole_stream(call, answer, reply)

    def _message(self, answer: Answer, reply: Reply) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": answer.text,
            "tool_calls": self._tool_calls(answer, reply) if answer.tool_uses else None,
        }

    def _tool_calls(self, answer: Answer, reply: Reply) -> list[dict[str, Any]]:
        calls = super()._tool_calls(answer, reply)
        return [{**call, "index": i} for i, call in enumerate(calls)]

    def _completion_extras(self, reply: Reply) -> dict[str, Any]:
        return {}

    def _usage(self, answer: Answer) -> dict[str, Any]:
        return {
            "prompt_tokens": answer.input_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
            "completion_tokens": answer.output_tokens,
        }

    def _finish_reason(self, finish: Finish) -> str:
        return _FINISH_REASONS[finish]

    def _completion_id(self, reply: Reply) -> str:
        """32 hex digits, as Mistral's ids are."""
        return hashlib.blake2b(reply.token.encode(), digest_size=16).hexdigest()

    def _tool_call_id(self, reply: Reply, index: int) -> str:
        """Exactly 9 alphanumerics, distinct per call of one answer."""
        rotated = reply.token[index:] + reply.token[:index]
        return rotated[:TOOL_CALL_ID_LENGTH]

    # -- headers and errors ---------------------------------------------------------

    def _headers(self, reply: Reply) -> dict[str, str]:
        """No request-id or rate-limit headers in OpenAI's names; the SDK retry override stays."""
        headers = super()._headers(reply)
        return {name: value for name, value in headers.items() if name == "x-should-retry"}

    def _rate_headers(self, rate: RateSnapshot) -> dict[str, str]:
        return {}

    def _retry_headers(self, retry_after_s: float) -> dict[str, str]:
        """Only `retry-after`, in whole seconds."""
        return {"retry-after": super()._retry_headers(retry_after_s)["retry-after"]}

    def _unauthenticated(self) -> Refusal:
        return _MISTRAL_REFUSALS[ErrorKind.AUTH]

    def _refusal(
        self, kind: ErrorKind, message: str | None, retry_after_s: float | None, reply: Reply
    ) -> Refusal:
        refusal = _MISTRAL_REFUSALS[kind]
        if message is None:
            return refusal
        return replace(refusal, message=message)

    def _error_body(self, refusal: Refusal) -> dict[str, Any]:
        """The flat envelope: `{"object": "error", "message", "type", "param", "code"}`."""
        return {
            "object": "error",
            "message": refusal.message,
            "type": refusal.type,
            "param": refusal.param,
            "code": refusal.code,
        }


class MistralStream(OpenAIStream):
    """Mistral's stream: no logprobs, whole tool calls in one chunk, usage with the finish."""

    def start(self) -> bytes:
        """The role delta with empty content."""
        return self._chunk({"role": "assistant", "content": ""})

    def tools(self) -> bytes:
        """Every call complete (id, name, all arguments) in a single delta."""
        calls = self._wire._tool_calls(self._answer, self._reply)
        return self._chunk({"content": "", "tool_calls": calls})

    def finish(self, *, usage: bool = True, terminator: bool = True) -> bytes:
        """The finish reason and, unless cut, the usage on the same chunk; then `[DONE]`."""
        choice = self._choice({"content": ""}, self._wire._finish_reason(self._answer.finish))
        chunk: dict[str, Any] = {**self._base(), "choices": [choice]}
        if usage:
            chunk["usage"] = self._wire._usage(self._answer)
        out = sse(chunk)
        return out + (b"data: [DONE]\n\n" if terminator else b"")

    def _choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish_reason}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return sse({**self._base(), "choices": [self._choice(delta, finish_reason)]})
