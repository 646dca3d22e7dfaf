"""What the fake model says: a deterministic function of the prompt, sized by the caller.

Tests need answers that are repeatable (same prompt, same answer, same usage) and
recognisably fake; routers need them sized like real ones so timing and cost behave.
So the text is drawn from a small vocabulary, one word per output token, seeded by a
hash of the prompt; tool calls fill a tool's required parameters with typed
placeholders, which is enough for a client's parser and schema checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from random import Random
from typing import Any

from fakes.server.wire import Answer, Call, Finish, ToolSpec, ToolUse
from router.core.tokens import count_text

__all__ = ["DEFAULT_OUTPUT_TOKENS", "answer_for", "arguments_for"]

DEFAULT_OUTPUT_TOKENS = 12
"""Answer length when the caller does not size it (the behaviour model usually does)."""

_WORDS = (
    "fallback", "breaker", "domain", "route", "latency", "budget", "retry", "edge",
    "region", "replica", "quorum", "token", "stream", "ledger", "probe", "outage",
)  # fmt: skip


def _rng(call: Call) -> Random:
    digest = hashlib.blake2b(f"{call.model}\x00{call.prompt}".encode(), digest_size=8).digest()
    return Random(int.from_bytes(digest, "big"))


def arguments_for(tool: ToolSpec) -> dict[str, Any]:
    """Typed placeholders for a tool's required parameters (all of them if none is required)."""
    schema: Mapping[str, Any] = tool.parameters or {}
    properties: Mapping[str, Any] = schema.get("properties") or {}
    names = schema.get("required") or list(properties)
    return {name: _placeholder(properties.get(name) or {}) for name in names}


def _placeholder(schema: Mapping[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {
        "string": "fake",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "array": [],
        "object": {},
        "null": None,
    }.get(kind, "fake")


def answer_for(
    call: Call,
    *,
    output_tokens: int | None = None,
    context_window: int | None = None,
) -> Answer:
    """The answer to `call`: `output_tokens` words (default 12), cut by max_tokens or context.

    A tool-calling answer carries no text and bills the JSON of its arguments. An answer
    longer than `max_tokens` stops at it with `length`; one that would overflow the
    context window stops there with `context` (Mistral's `model_length`).
    """
    tool = call.wants_tool()
    if tool is not None:
        arguments = arguments_for(tool)
        billed = count_text(tool.name) + count_text(json.dumps(arguments))
        return Answer(
            (), (ToolUse(tool.name, arguments),), Finish.TOOL_CALLS, call.input_tokens, billed
        )
    wanted = DEFAULT_OUTPUT_TOKENS if output_tokens is None else max(1, output_tokens)
    finish = Finish.STOP
    if call.max_tokens is not None and call.max_tokens < wanted:
        wanted, finish = call.max_tokens, Finish.LENGTH
    if context_window is not None and call.input_tokens + wanted > context_window:
        wanted, finish = max(0, context_window - call.input_tokens), Finish.CONTEXT
    rng = _rng(call)
    first = " " if call.carries_on else ""  # a continuation's first word follows the prefill's
    pieces = tuple((first if i == 0 else " ") + rng.choice(_WORDS) for i in range(wanted))
    return Answer(pieces, (), finish, call.input_tokens, wanted)
