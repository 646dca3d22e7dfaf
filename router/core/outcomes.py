"""Outcomes of an attempt and what the engine does about each.

Classify, then decide, then act: a driver turns whatever happened on the wire
into one `Outcome` (`classify_status` helps with HTTP statuses); this module's
`DISPOSITIONS` table says whether that outcome is worth another try on the same
deployment, a move to the next one, or the end of the request. The engine then
applies budgets, breakers and deadlines on top. Keeping the table here, in one
place, is what lets a reviewer check "a client's bad request is never failed
over" by reading six lines.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BREAKER_FAILURES",
    "DISPOSITIONS",
    "Disposition",
    "Outcome",
    "classify_status",
]


class Outcome(StrEnum):
    """How one attempt ended (DESIGN.md vocabulary)."""

    OK = "ok"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    SERVER = "server"
    OVERLOADED = "overloaded"
    RATE_LIMITED = "rate_limited"
    CONTENT_FILTER = "content_filter"
    CONTEXT_LENGTH = "context_length"
    MODEL_GONE = "model_gone"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    STREAM_CUT = "stream_cut"
    STREAM_STALL = "stream_stall"


class Disposition(StrEnum):
    """What an outcome calls for before budgets, breakers and deadlines have their say."""

    DONE = "done"
    RETRY_SAME = "retry_same"
    FAIL_OVER = "fail_over"
    LARGER_CONTEXT = "larger_context"
    FILTERED = "filtered"
    FAIL_FAST = "fail_fast"


DISPOSITIONS: dict[Outcome, Disposition] = {
    Outcome.OK: Disposition.DONE,
    # Transient by nature: the same deployment may well answer next time.
    Outcome.CONNECT: Disposition.RETRY_SAME,
    Outcome.SERVER: Disposition.RETRY_SAME,
    Outcome.OVERLOADED: Disposition.RETRY_SAME,
    Outcome.RATE_LIMITED: Disposition.RETRY_SAME,
    # A silent or stalled provider already cost one deadline; never pay it twice.
    Outcome.TIMEOUT: Disposition.FAIL_OVER,
    Outcome.STREAM_CUT: Disposition.FAIL_OVER,
    Outcome.STREAM_STALL: Disposition.FAIL_OVER,
    # Our credentials or the model are broken there; another deployment may be fine.
    Outcome.AUTH: Disposition.FAIL_OVER,
    Outcome.MODEL_GONE: Disposition.FAIL_OVER,
    # The request itself is the problem; only a different kind of deployment helps.
    Outcome.CONTEXT_LENGTH: Disposition.LARGER_CONTEXT,
    Outcome.CONTENT_FILTER: Disposition.FILTERED,
    # The client's mistake: sending it anywhere else only multiplies load.
    Outcome.BAD_REQUEST: Disposition.FAIL_FAST,
}

BREAKER_FAILURES: frozenset[Outcome] = frozenset(
    {
        Outcome.TIMEOUT,
        Outcome.CONNECT,
        Outcome.SERVER,
        Outcome.OVERLOADED,
        Outcome.RATE_LIMITED,
        Outcome.STREAM_CUT,
        Outcome.STREAM_STALL,
        Outcome.AUTH,
        Outcome.MODEL_GONE,
    }
)
"""Outcomes that speak about the deployment's health.

Content filters, context-length and bad requests say something about the request,
not the provider, so they never trip a breaker.
"""

DOMAIN_FAILURES: frozenset[Outcome] = BREAKER_FAILURES - {Outcome.RATE_LIMITED, Outcome.AUTH}
"""Outcomes that may speak about a shared failure domain.

A 429 or a rejected key is about our account with one vendor; the edge, cloud and
region in between evidently answered. Two vendors rate-limiting us at peak must
not make the router condemn the edge they share, so for domains these count as
the path being up.
"""


def classify_status(status: int, *, error_code: str | None = None) -> Outcome:
    """Map an HTTP status (and a vendor error code, when one is known) to an outcome.

    Vendor adapters refine this with body parsing; the defaults here follow the
    shared meaning of the statuses across OpenAI, Anthropic, Gemini, Bedrock and
    Mistral (reference/providers.md, section 0).
    """
    code = (error_code or "").lower()
    if 200 <= status < 300:
        return Outcome.OK
    if code in {"context_length_exceeded", "string_above_max_length"}:
        return Outcome.CONTEXT_LENGTH
    if code in {
        "content_filter",
        "content_policy_violation",
        "guardrail_intervened",
        "invalid_prompt",  # OpenAI: "your prompt was flagged as potentially violating…"
    }:
        return Outcome.CONTENT_FILTER
    if code in {"model_not_found", "deployment_not_found", "not_found_error"}:
        return Outcome.MODEL_GONE
    if code == "insufficient_quota":
        return Outcome.AUTH  # a 429 that no wait will fix: the account is out of credit
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in {503, 529}:
        return Outcome.OVERLOADED
    if status in {401, 402, 403}:  # 402: our account there cannot pay, not the client's fault
        return Outcome.AUTH
    if status in {404, 410}:
        return Outcome.MODEL_GONE
    if status == 413:
        return Outcome.CONTEXT_LENGTH
    if status == 408 or status == 504:
        return Outcome.TIMEOUT
    if status == 424:  # Bedrock ModelErrorException: the model failed while processing
        return Outcome.SERVER
    if 400 <= status < 500:
        return Outcome.BAD_REQUEST
    return Outcome.SERVER
