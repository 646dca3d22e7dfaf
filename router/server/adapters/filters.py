"""Content filters that answer with HTTP 200, as the `content_filter` outcome.

Most vendors refuse a prompt or stop a completion for safety inside a *successful*
response (Azure's `finish_reason: content_filter`, Gemini's `promptFeedback`, Bedrock's
`guardrail_intervened`; reference/providers.md §1.7). A router that only looks at
statuses would call that a success; the decoders report it as this error instead, so
the engine never retries it on the same deployment and fails over only where the policy
allows.
"""

from __future__ import annotations

from router.core.outcomes import Outcome
from router.server.adapters.base import UpstreamError, openai_error_body

__all__ = ["filtered_error"]


def filtered_error(vendor: str, detail: str = "") -> UpstreamError:
    """A request the vendor's filter stopped: the `content_filter` outcome, code and reason.

    The status is None because the vendor's 200 is no status to show a client: the
    engine answers a filtered request with its own (400).
    """
    message = f"The {vendor} content filter stopped the answer" + (f": {detail}" if detail else ".")
    body = openai_error_body(message, "invalid_request_error", "content_filter")
    return UpstreamError(Outcome.CONTENT_FILTER, None, body)
