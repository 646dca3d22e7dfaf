"""Azure OpenAI upstream: OpenAI's chat protocol behind Azure's paths, keys and filters.

What differs from api.openai.com (reference/providers.md §1.2), and what the gateway
does about it:

- the deployment is in the path and every call needs `?api-version=`: the URL is
  `{base_url}/openai/deployments/{model}/chat/completions?api-version={api_version}`,
  with `Deployment.api_version` (else `DEFAULT_API_VERSION`);
- the key goes in `api-key`;
- Azure's content filter refuses a prompt with a 400 `code: content_filter` and stops
  a completion with `finish_reason: content_filter`; both are the `content_filter`
  outcome, so the engine never retries them on the same deployment;
- gateway-level refusals carry a bare `{"code": "429", "message": ...}` whose wait is
  only in the message ("Please retry after 86400 seconds") when no header says it;
- a 404 "Resource not found" means the endpoint or api-version is wrong, not that the
  model was withdrawn: it is reported as `auth` (our configuration), not `model_gone`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from router.core.outcomes import Outcome
from router.core.policy import Deployment
from router.server.adapters.base import (
    Piece,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    json_or_none,
)
from router.server.adapters.filters import filtered_error
from router.server.adapters.openai import OpenAIAdapter, OpenAIDecoder, error_outcome
from router.server.retry_after import retry_after_s

__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIAdapter", "AzureOpenAIDecoder"]

DEFAULT_API_VERSION = "2024-10-21"
"""The GA data-plane inference version used when a deployment names none."""

_RETRY_AFTER_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


class AzureOpenAIDecoder(OpenAIDecoder):
    """OpenAI chunks, with a `content_filter` finish turned into the filter outcome."""

    def chunk(self, chunk: dict[str, Any]) -> list[Piece]:
        """Pieces as OpenAI's; the filter-only opening chunk (no choices) yields none."""
        pieces = super().chunk(chunk)
        if any(piece.finish_reason == "content_filter" for piece in pieces):
            self.error = filtered_error("Azure OpenAI")
            return [piece for piece in pieces if piece.finish_reason != "content_filter"]
        return pieces


def _azure_outcome(status: int, body: Any) -> tuple[Outcome, dict[str, Any]]:
    """Azure's codes on top of OpenAI's: bare string codes and the 404 of a wrong URL."""
    outcome, envelope = error_outcome(status, body)
    error = body.get("error") if isinstance(body, Mapping) else None
    code = str(error.get("code") or "") if isinstance(error, Mapping) else ""
    inner = error.get("innererror") if isinstance(error, Mapping) else None
    if isinstance(inner, Mapping) and inner.get("code") == "ResponsibleAIPolicyViolation":
        outcome = Outcome.CONTENT_FILTER
    if status == 404 and code == "404":
        outcome = Outcome.AUTH
        envelope["error"]["code"] = "resource_not_found"
    elif code == "DeploymentNotFound":
        outcome = Outcome.MODEL_GONE
    return outcome, envelope


class AzureOpenAIAdapter(OpenAIAdapter):
    """`{resource}.openai.azure.com` deployments (`protocol: azure-openai`)."""

    protocol: ClassVar[str] = "azure-openai"

    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """OpenAI's request (streamed or not), sent to the deployment's path with `api-key`."""
        openai = super().build(body, deployment, stream=stream)
        base = deployment.base_url.rstrip("/")
        if not base.endswith("/openai"):
            base += "/openai"
        version = quote(deployment.api_version or DEFAULT_API_VERSION, safe="")
        name = quote(deployment.model, safe="~")
        url = f"{base}/deployments/{name}/chat/completions?api-version={version}"
        headers = {k: v for k, v in openai.headers.items() if k != "Authorization"}
        if deployment.api_key is not None:
            headers["api-key"] = deployment.api_key.get_secret_value()
        return UpstreamRequest(url, headers, openai.body)

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """Outcome from status and Azure's codes; the wait from headers, else the message."""
        body = json_or_none(raw)
        outcome, envelope = _azure_outcome(status, body)
        wait = retry_after_s(headers, body, now_epoch=time.time())
        if wait is None and (match := _RETRY_AFTER_TEXT.search(envelope["error"]["message"])):
            wait = float(match.group(1))
        return UpstreamError(outcome, status, envelope, wait)

    def decoder(self) -> StreamDecoder:
        """A fresh Azure chunk decoder."""
        return AzureOpenAIDecoder()
