"""Egress adapters, one module per vendor protocol, and the registry the gateway uses."""

from __future__ import annotations

from router.server.adapters.anthropic import AnthropicAdapter
from router.server.adapters.base import Adapter
from router.server.adapters.openai import OpenAIAdapter

__all__ = ["ADAPTERS", "Adapter", "adapter_for"]

ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
}
"""Adapters by policy `protocol`; the others of issue 7 (azure-openai, gemini, bedrock,
mistral) are not written yet."""


def adapter_for(protocol: str) -> Adapter:
    """The adapter for `protocol`; a clear error for a protocol the gateway cannot speak yet."""
    try:
        return ADAPTERS[protocol]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(
            f"the gateway has no egress adapter for protocol {protocol!r} yet (has: {known})"
        ) from None
