"""One deterministic token counter, shared by the fakes' `usage` and the router's cost estimates.

The fakes are the "provider" in every live test, so the usage they report is ground
truth for the spend ledger; if the router estimated tokens one way and the fakes counted
another, a reservation could never match its bill. Real tokenizers either need a network
download (tiktoken) or are not public (Anthropic, Gemini), so both sides use the
approximation of reference/providers.md §3: ⌈UTF-8 bytes ÷ 4⌉ per piece of text, 3 tokens
of overhead per message and 3 to prime the reply — the OpenAI cookbook's chat framing.
English prose lands within a few per cent of o200k; JSON and code are under-counted by
15–30 %, which is the documented price of needing no download.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PER_MESSAGE", "REPLY_PRIMING", "count_prompt", "count_text"]

PER_MESSAGE = 3
"""Framing tokens every chat message costs (role and separators)."""

REPLY_PRIMING = 3
"""Tokens that prime the assistant's reply, counted once per request."""


def count_text(text: str) -> int:
    """Tokens in one piece of text: a quarter of its UTF-8 bytes, rounded up."""
    return -(-len(text.encode("utf-8")) // 4)


def count_prompt(messages: Iterable[Iterable[str]]) -> int:
    """Input tokens of a chat prompt given each message's text pieces (system prompt included)."""
    total = REPLY_PRIMING
    for pieces in messages:
        total += PER_MESSAGE + sum(count_text(piece) for piece in pieces)
    return total
