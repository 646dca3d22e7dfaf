"""Egress adapters, one module per vendor protocol, and the registry the gateway uses.

Adapters are imported on first use, not with this package: a gateway loads only the
protocols its policy names. Bedrock's pulls in botocore (tens of MB and most of the
gateway's start-up), which a policy without a Bedrock deployment should not pay for.
"""

from __future__ import annotations

import importlib

from router.server.adapters.base import Adapter

__all__ = ["ADAPTERS", "Adapter", "adapter_for"]

ADAPTERS: dict[str, str] = {
    "openai": "router.server.adapters.openai:OpenAIAdapter",
    "anthropic": "router.server.adapters.anthropic:AnthropicAdapter",
    "azure-openai": "router.server.adapters.azure_openai:AzureOpenAIAdapter",
    "gemini": "router.server.adapters.gemini:GeminiAdapter",
    "bedrock": "router.server.adapters.bedrock:BedrockAdapter",
    "mistral": "router.server.adapters.mistral:MistralAdapter",
}
"""Adapters by policy `protocol` (`module:class`), one per protocol the schema names."""

_loaded: dict[str, Adapter] = {}


def adapter_for(protocol: str) -> Adapter:
    """The adapter for `protocol`; a clear error for a protocol the gateway cannot speak yet."""
    adapter = _loaded.get(protocol)
    if adapter is not None:
        return adapter
    try:
        module, _, name = ADAPTERS[protocol].partition(":")
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(
            f"the gateway has no egress adapter for protocol {protocol!r} yet (has: {known})"
        ) from None
    adapter = getattr(importlib.import_module(module), name)()
    assert isinstance(adapter, Adapter), f"{ADAPTERS[protocol]} is not an Adapter"
    _loaded[protocol] = adapter
    return adapter
