"""The gateway's answers in OpenAI's shape: whole completions and stream chunks.

Pieces come from whichever vendor answered (`router.server.adapters`); this module
puts them into the envelope the client expects — one `chatcmpl-` id per client
request across failovers, `model` = the model that actually answered — so a client's
parser never learns which vendor it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from router.server.adapters.base import Piece, Usage

__all__ = ["Assembler", "chunk_bytes", "done_bytes", "error_event", "usage_body"]


def usage_body(usage: Usage) -> dict[str, int]:
    """OpenAI's `usage` object."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _sse(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chunk_bytes(
    completion_id: str, created: int, model: str, piece: Piece | None, usage: Usage | None = None
) -> bytes:
    """One `chat.completion.chunk` event: a piece's delta, or (no piece) the usage chunk."""
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
    }
    if piece is not None:
        chunk["choices"] = [
            {
                "index": 0,
                "delta": dict(piece.delta),
                "logprobs": None,
                "finish_reason": piece.finish_reason,
            }
        ]
    if usage is not None:
        chunk["usage"] = usage_body(usage)
    return _sse(chunk)


def done_bytes() -> bytes:
    """The `[DONE]` terminator."""
    return b"data: [DONE]\n\n"


def error_event(body: Mapping[str, Any]) -> bytes:
    """An in-band error after bytes reached the client: `data: {"error": {...}}`, which the
    OpenAI SDK raises as `APIError`."""
    return _sse(body)


class Assembler:
    """Collects one attempt's pieces into a whole `chat.completion` message."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None

    def add_all(self, pieces: list[Piece]) -> None:
        """Fold one network read's pieces; plain text, by far the commonest, short-cut."""
        content = self.content
        for piece in pieces:
            delta = piece.delta
            if piece.finish_reason is None and len(delta) == 1 and "content" in delta:
                content.append(str(delta["content"]))
            else:
                self.add(piece)

    def add(self, piece: Piece) -> None:
        """Fold one piece into the message."""
        if piece.finish_reason is not None:
            self.finish_reason = piece.finish_reason
        delta = piece.delta
        if "content" in delta:
            self.content.append(str(delta["content"]))
        if "refusal" in delta:
            self.refusal.append(str(delta["refusal"]))
        for fragment in delta.get("tool_calls") or ():
            index = int(fragment.get("index", 0))
            call = self.tool_calls.setdefault(
                index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if fragment.get("id"):
                call["id"] = fragment["id"]
            function = fragment.get("function") or {}
            if function.get("name"):
                call["function"]["name"] = function["name"]
            call["function"]["arguments"] += function.get("arguments") or ""

    def completion(
        self, completion_id: str, created: int, model: str, usage: Usage
    ) -> dict[str, Any]:
        """The `chat.completion` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.content) if self.content or not self.tool_calls else None,
            "refusal": "".join(self.refusal) or None,
        }
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason or "stop",
                }
            ],
            "usage": usage_body(usage),
        }
