"""Mistral upstream: OpenAI-shaped, except for the details that break a cross-vendor failover.

The one that matters most is tool-call ids (reference/providers.md §1.6): Mistral
refuses (400) any history whose ids are not exactly 9 characters of `[a-zA-Z0-9]`, so a
conversation started on OpenAI (`call_…`) or Anthropic (`toolu_…`) would fail as soon as
it falls over to Mistral. On the way out every other id is replaced by a deterministic
9-character one (a hash, so an assistant call and the tool result answering it still
match); on the way in any such id Mistral repeats is turned back into the client's, so
the client's parser only ever sees its own ids or Mistral's fresh ones.

The others: no `stream_options` (Mistral rejects the field, and sends usage on the last
chunk anyway), `max_tokens` only, `tool_choice: "any"` for `required`, `random_seed`
for `seed`, `model_length` as a finish reason (→ `length`), `error` as one (→ the
`server` outcome), and a flat `{"object": "error", "message", "type", "code"}` error
envelope, sometimes just `{"message"}`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, ClassVar

from router.core.outcomes import Outcome, classify_status
from router.core.policy import Deployment
from router.server.adapters.base import (
    Piece,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    json_or_none,
    openai_error_body,
)
from router.server.adapters.openai import OpenAIAdapter, OpenAIDecoder
from router.server.retry_after import retry_after_s

__all__ = ["MistralAdapter", "MistralDecoder", "mistral_id", "valid_tool_call_id"]

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_LENGTH = 9

_FIELDS = frozenset(
    {
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "parallel_tool_calls",
        "prediction",
        "safe_prompt",
        "random_seed",
    }
)
"""Request fields Mistral accepts; anything else OpenAI-only would be a 422 there."""

_FINISH_REASONS: Mapping[str, str] = {"model_length": "length"}

_CODES: Mapping[str, str] = {
    "invalid_model": "model_not_found",
    "rate_limited": "rate_limit_exceeded",
    "service_tier_capacity_exceeded": "insufficient_quota",
    "unauthorized": "invalid_api_key",
}

_RESTORE: ContextVar[Mapping[str, str] | None] = ContextVar("mistral_restore", default=None)
"""The id translations of the request just built, for the decoder of the same attempt.

`Adapter.request` and `Adapter.decoder` are called one after the other in the
attempt's own task, and an adapter is shared by every request, so the translation table
rides in the task's context rather than on the adapter.
"""


def valid_tool_call_id(value: str) -> bool:
    """Mistral's rule: exactly 9 characters from a-z, A-Z, 0-9."""
    return len(value) == _ID_LENGTH and all(c in _ALPHABET for c in value)


def mistral_id(client_id: str) -> str:
    """A deterministic 9-alphanumeric id for `client_id` (kept as is when already valid)."""
    if valid_tool_call_id(client_id):
        return client_id
    number = int.from_bytes(hashlib.blake2b(client_id.encode("utf-8"), digest_size=8).digest())
    out = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        out.append(_ALPHABET[digit])
    return "".join(out)


def _translate(messages: Any, table: dict[str, str]) -> list[Any]:
    """The history with every tool-call id Mistral-shaped; `table` learns mistral → client."""
    out: list[Any] = []
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            out.append(message)
            continue
        message = dict(message)
        if message.get("role") == "tool" and isinstance(message.get("tool_call_id"), str):
            short = mistral_id(message["tool_call_id"])
            table[short] = message["tool_call_id"]
            message["tool_call_id"] = short
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [_translate_call(call, table) for call in calls]
        out.append(message)
    return out


def _translate_call(call: Any, table: dict[str, str]) -> Any:
    if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
        return call
    short = mistral_id(call["id"])
    table[short] = call["id"]
    return {**call, "id": short}


def to_mistral_request(body: Mapping[str, Any], table: dict[str, str]) -> dict[str, Any]:
    """The Mistral chat body for an OpenAI one (model and streaming set by the caller)."""
    upstream = {k: v for k, v in body.items() if k in _FIELDS}
    tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if tokens is not None:
        upstream["max_tokens"] = tokens
    if body.get("seed") is not None:
        upstream["random_seed"] = body["seed"]
    if body.get("tool_choice") == "required":
        upstream["tool_choice"] = "any"
    upstream["messages"] = _translate(body.get("messages"), table)
    return upstream


class MistralDecoder(OpenAIDecoder):
    """OpenAI chunks with Mistral's finish reasons, and the client's ids restored."""

    def __init__(self, restore: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._restore = dict(restore or {})

    def chunk(self, chunk: dict[str, Any]) -> list[Piece]:
        """Pieces as OpenAI's; `model_length` is `length`, `error` a failed attempt."""
        pieces: list[Piece] = []
        for piece in super().chunk(chunk):
            if piece.finish_reason == "error":
                body = openai_error_body(
                    "Mistral ended the answer with finish_reason 'error'.", "server_error"
                )
                self.error = UpstreamError(Outcome.SERVER, None, body)
                continue
            reason = piece.finish_reason
            if reason is not None and reason in _FINISH_REASONS:
                piece = Piece(piece.delta, _FINISH_REASONS[reason], piece.tokens)
            pieces.append(self._restored(piece))
        return pieces

    def _restored(self, piece: Piece) -> Piece:
        calls = piece.delta.get("tool_calls")
        if not calls or not self._restore:
            return piece
        fixed = [
            {**call, "id": self._restore.get(call["id"], call["id"])}
            if isinstance(call, Mapping) and isinstance(call.get("id"), str)
            else call
            for call in calls
        ]
        return Piece({**piece.delta, "tool_calls": fixed}, piece.finish_reason, piece.tokens)


def _error_fields(body: Any) -> Mapping[str, Any] | None:
    """The error object of either envelope: flat (`object: error`) or OpenAI's."""
    if not isinstance(body, Mapping):
        return None
    nested = body.get("error")
    if isinstance(nested, Mapping):
        return nested
    return body if isinstance(body.get("message"), str) else None


class MistralAdapter(OpenAIAdapter):
    """api.mistral.ai (`POST /v1/chat/completions`)."""

    protocol: ClassVar[str] = "mistral"

    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """The Mistral body with translated tool-call ids, streamed or not."""
        table: dict[str, str] = {}
        upstream = to_mistral_request(body, table)
        upstream["model"] = deployment.model
        upstream["stream"] = stream
        _RESTORE.set({short: full for short, full in table.items() if short != full})
        openai = super().build({}, deployment, stream=stream)
        return UpstreamRequest(openai.url, openai.headers, upstream)

    def prefill(self, text: str) -> dict[str, Any]:
        """Mistral carries on from a final assistant message only when it says `prefix`
        (without, it refuses the request: "Expected last role User or Tool ...")."""
        return {"role": "assistant", "content": text, "prefix": True}

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """The outcome from status, Mistral's `type` and message; `retry-after` seconds."""
        body = json_or_none(raw)
        wait = retry_after_s(headers, body, now_epoch=time.time())
        error = _error_fields(body)
        if error is None:
            message = f"upstream answered HTTP {status} without an API error body"
            return UpstreamError(
                classify_status(status), status, openai_error_body(message, "upstream_error"), wait
            )
        message = str(error.get("message") or f"upstream answered HTTP {status}")
        kind = str(error.get("type") or "")
        code = _CODES.get(kind)
        if code is None and "context length" in message.lower():
            code = "context_length_exceeded"
        envelope = openai_error_body(
            message,
            kind or "upstream_error",
            code or (str(error["code"]) if error.get("code") else None),
        )
        return UpstreamError(classify_status(status, error_code=code), status, envelope, wait)

    def decoder(self) -> StreamDecoder:
        """A decoder that restores the ids this task's request translated."""
        return MistralDecoder(_RESTORE.get())
