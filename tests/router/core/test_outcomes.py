"""Outcomes: the DISPOSITIONS table and the HTTP status classifier, vendor by vendor.

Two rules matter most: a client's bad request fails fast (failing it over only
multiplies load), and a provider's own failure never does (the request could
still be served elsewhere, and the breaker must see it).
"""

from __future__ import annotations

import pytest

from router.core.outcomes import (
    BREAKER_FAILURES,
    DISPOSITIONS,
    Disposition,
    Outcome,
    classify_status,
)

OC, D = Outcome, Disposition


def test_every_outcome_has_exactly_one_disposition() -> None:
    assert set(DISPOSITIONS) == set(Outcome)


@pytest.mark.parametrize(
    ("outcome", "disposition"),
    [
        (OC.OK, D.DONE),
        (OC.BAD_REQUEST, D.FAIL_FAST),
        (OC.CONTENT_FILTER, D.FILTERED),
        (OC.CONTEXT_LENGTH, D.LARGER_CONTEXT),
        (OC.TIMEOUT, D.FAIL_OVER),  # a silent provider costs one timeout, never two
        (OC.STREAM_CUT, D.FAIL_OVER),
        (OC.STREAM_STALL, D.FAIL_OVER),
        (OC.AUTH, D.FAIL_OVER),
        (OC.MODEL_GONE, D.FAIL_OVER),
        (OC.CONNECT, D.RETRY_SAME),
        (OC.SERVER, D.RETRY_SAME),
        (OC.OVERLOADED, D.RETRY_SAME),
        (OC.RATE_LIMITED, D.RETRY_SAME),
    ],
)
def test_disposition_table(outcome: Outcome, disposition: Disposition) -> None:
    assert DISPOSITIONS[outcome] is disposition


@pytest.mark.parametrize("outcome", list(Outcome))
def test_breaker_failures_are_exactly_the_provider_side_outcomes(outcome: Outcome) -> None:
    """Retry-worthy and fail-over outcomes speak about the deployment; the rest, the request."""
    provider_side = DISPOSITIONS[outcome] in {D.RETRY_SAME, D.FAIL_OVER}
    assert (outcome in BREAKER_FAILURES) is provider_side


def test_outcome_values_are_the_trace_vocabulary() -> None:
    assert {o.value for o in Outcome} == {
        "ok", "timeout", "connect", "server", "overloaded", "rate_limited", "content_filter",
        "context_length", "model_gone", "auth", "bad_request", "stream_cut", "stream_stall",
    }  # fmt: skip


# (vendor, HTTP status, error code as the adapter reads it, expected outcome)
VENDOR_ERRORS = [
    # OpenAI (reference/providers.md §1.1)
    ("openai", 200, None, OC.OK),
    ("openai", 400, "context_length_exceeded", OC.CONTEXT_LENGTH),
    ("openai", 400, "invalid_prompt", OC.CONTENT_FILTER),  # flagged by the usage policy
    ("openai", 400, None, OC.BAD_REQUEST),
    ("openai", 401, "invalid_api_key", OC.AUTH),
    ("openai", 403, None, OC.AUTH),
    ("openai", 404, "model_not_found", OC.MODEL_GONE),
    ("openai", 409, None, OC.BAD_REQUEST),
    ("openai", 422, None, OC.BAD_REQUEST),
    ("openai", 429, "rate_limit_exceeded", OC.RATE_LIMITED),
    ("openai", 429, "insufficient_quota", OC.AUTH),  # no wait fixes an empty account
    ("openai", 500, "server_error", OC.SERVER),
    ("openai", 503, None, OC.OVERLOADED),
    # Azure OpenAI (§1.2)
    ("azure", 400, "content_filter", OC.CONTENT_FILTER),
    ("azure", 400, "context_length_exceeded", OC.CONTEXT_LENGTH),
    ("azure", 404, "DeploymentNotFound", OC.MODEL_GONE),
    ("azure", 404, "deployment_not_found", OC.MODEL_GONE),
    ("azure", 429, None, OC.RATE_LIMITED),
    ("azure", 503, None, OC.OVERLOADED),
    # Anthropic (§1.3; the code is error.type)
    ("anthropic", 400, "invalid_request_error", OC.BAD_REQUEST),
    ("anthropic", 401, "authentication_error", OC.AUTH),
    ("anthropic", 402, "billing_error", OC.AUTH),  # our account there, not the client's request
    ("anthropic", 403, "permission_error", OC.AUTH),
    ("anthropic", 404, "not_found_error", OC.MODEL_GONE),
    ("anthropic", 413, "request_too_large", OC.CONTEXT_LENGTH),
    ("anthropic", 429, "rate_limit_error", OC.RATE_LIMITED),
    ("anthropic", 500, "api_error", OC.SERVER),
    ("anthropic", 504, "timeout_error", OC.TIMEOUT),
    ("anthropic", 529, "overloaded_error", OC.OVERLOADED),
    # Gemini (§1.4; the code is error.status)
    ("gemini", 400, "INVALID_ARGUMENT", OC.BAD_REQUEST),
    ("gemini", 403, "PERMISSION_DENIED", OC.AUTH),
    ("gemini", 404, "NOT_FOUND", OC.MODEL_GONE),
    ("gemini", 429, "RESOURCE_EXHAUSTED", OC.RATE_LIMITED),
    ("gemini", 500, "INTERNAL", OC.SERVER),
    ("gemini", 503, "UNAVAILABLE", OC.OVERLOADED),
    ("gemini", 504, "DEADLINE_EXCEEDED", OC.TIMEOUT),
    # Bedrock (§1.5; the code is x-amzn-ErrorType)
    ("bedrock", 400, "ValidationException", OC.BAD_REQUEST),
    ("bedrock", 400, "guardrail_intervened", OC.CONTENT_FILTER),
    ("bedrock", 403, "AccessDeniedException", OC.AUTH),
    ("bedrock", 404, "ResourceNotFoundException", OC.MODEL_GONE),
    ("bedrock", 408, "ModelTimeoutException", OC.TIMEOUT),
    ("bedrock", 424, "ModelErrorException", OC.SERVER),  # the model failed, not the request
    ("bedrock", 429, "ThrottlingException", OC.RATE_LIMITED),
    ("bedrock", 429, "ModelNotReadyException", OC.RATE_LIMITED),
    ("bedrock", 500, "InternalServerException", OC.SERVER),
    ("bedrock", 503, "ServiceUnavailableException", OC.OVERLOADED),
    # Mistral (§1.6)
    ("mistral", 400, None, OC.BAD_REQUEST),
    ("mistral", 429, "1300", OC.RATE_LIMITED),
    ("mistral", 503, None, OC.OVERLOADED),
    # shared edges and gateways
    ("edge", 502, None, OC.SERVER),
    ("edge", 504, None, OC.TIMEOUT),
    ("edge", 520, None, OC.SERVER),
    ("edge", 522, None, OC.SERVER),
    ("edge", 408, None, OC.TIMEOUT),
    ("edge", 410, None, OC.MODEL_GONE),
]


@pytest.mark.parametrize(
    ("vendor", "status", "code", "outcome"),
    VENDOR_ERRORS,
    ids=[f"{v}-{s}-{c}" for v, s, c, _ in VENDOR_ERRORS],
)
def test_classify_status_per_vendor(
    vendor: str, status: int, code: str | None, outcome: Outcome
) -> None:
    assert classify_status(status, error_code=code) is outcome


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (400, "model_not_found", OC.MODEL_GONE),  # a known code beats the status
        (429, "context_length_exceeded", OC.CONTEXT_LENGTH),
        (400, "Context_Length_Exceeded", OC.CONTEXT_LENGTH),  # codes are case-insensitive
        (500, "content_policy_violation", OC.CONTENT_FILTER),
        (400, "string_above_max_length", OC.CONTEXT_LENGTH),
        (201, "content_filter", OC.OK),  # a 2xx is a success whatever the body says
        (299, None, OC.OK),
        (400, "", OC.BAD_REQUEST),
        (418, "something_new", OC.BAD_REQUEST),
        (599, "something_new", OC.SERVER),
    ],
)
def test_codes_refine_statuses(status: int, code: str | None, outcome: Outcome) -> None:
    assert classify_status(status, error_code=code) is outcome


@pytest.mark.parametrize("status", range(400, 600))
def test_no_error_status_is_a_success_and_5xx_never_fails_fast(status: int) -> None:
    """A provider's 5xx must never be treated as the client's mistake."""
    outcome = classify_status(status)
    assert outcome is not OC.OK
    if status >= 500:
        assert DISPOSITIONS[outcome] in {D.RETRY_SAME, D.FAIL_OVER}
