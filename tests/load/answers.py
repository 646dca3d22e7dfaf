"""Locust helpers: what counts as a complete answer (kept free of Locust's imports, whose
gevent monkey-patching would break the asyncio servers of any test that imported them)."""

from __future__ import annotations

import json

__all__ = ["complete_stream"]


def complete_stream(text: str) -> str | None:
    """None when an SSE body is a complete OpenAI stream, else what is wrong with it."""
    finished = done = False
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            return "malformed chunk"
        if "error" in chunk:
            return f"error event: {chunk['error'].get('message', chunk['error'])}"
        if any(choice.get("finish_reason") for choice in chunk.get("choices", [])):
            finished = True
    if not finished:
        return "stream ended without a finish reason (truncated)"
    if not done:
        return "stream ended without [DONE]"
    return None
