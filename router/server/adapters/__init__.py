"""Egress adapters, one module per vendor protocol, and the registry the gateway uses."""

from __future__ import annotations

from router.server.adapters.anthropic import AnthropicAdapter
from router.server.adapters.azure_openai import AzureOpenAIAdapter
from router.server.adapters.base import Adapter
from router.server.adapters.bedrock import BedrockAdapter
from router.server.adapters.gemini import GeminiAdapter
from router.server.adapters.mistral import MistralAdapter
from router.server.adapters.openai import OpenAIAdapter

__all__ = ["ADAPTERS", "Adapter", "adapter_for"]

ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "azure-openai": AzureOpenAIAdapter(),
    "gemini": GeminiAdapter(),
    "bedrock": BedrockAdapter(),
    "mistral": MistralAdapter(),
}
"""Adapters by policy `protocol`, one per protocol the policy schema names."""


def adapter_for(protocol: str) -> Adapter:
    """The adapter for `protocol`; a clear error for a protocol the gateway cannot speak yet."""
    try:
        return ADAPTERS[protocol]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(
            f"the gateway has no egress adapter for protocol {protocol!r} yet (has: {known})"
        ) from None
