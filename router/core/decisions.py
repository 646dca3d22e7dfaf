"""Commands the engine gives a driver, in the imperative.

A driver carries each out and reports back with an event: `SendAttempt` →
(`FirstTokenReceived`) → `AttemptFinished`; `Wait` → `TimerFired`. Exactly one
of `CompleteRequest`, `FailRequest` or `RejectRequest` ends every request.

Decisions are named tuples for the reason events are (see `router.core.events`):
the engine returns two per simple request, and a frozen dataclass costs several
times more to build. The engine builds them positionally, in declared field order.
"""

from __future__ import annotations

from typing import NamedTuple

from router.core.outcomes import Outcome
from router.core.reasons import Reason

__all__ = [
    "PASSED_THROUGH",
    "REJECT_STATUS",
    "TERMINAL",
    "CancelAttempt",
    "CompleteRequest",
    "Decision",
    "FailRequest",
    "RejectRequest",
    "SendAttempt",
    "Wait",
    "status_for",
]


class SendAttempt(NamedTuple):
    """Call `deployment` now; give up at the first deadline that passes.

    Deadlines are absolute times on the driver's clock: connected by
    `connect_by`, first token by `first_token_by`, no gap between tokens longer
    than `idle_s`, finished by `deadline`. A missed deadline is reported as
    `timeout` (before the first token) or `stream_stall` (after it).
    `resume_after_tokens` > 0 asks the provider to continue an answer whose
    first tokens already reached the client.
    """

    request_id: str
    attempt_id: int
    attempt: int
    deployment: str
    connect_by: float
    first_token_by: float
    idle_s: float
    deadline: float
    resume_after_tokens: int = 0
    reason: Reason | None = None


class Wait(NamedTuple):
    """Report `TimerFired(request_id)` at `until` (a backoff or a Retry-After)."""

    request_id: str
    until: float


class CancelAttempt(NamedTuple):
    """Abort an attempt in flight; its `AttemptFinished` is still welcome (for billing)."""

    attempt_id: int


class CompleteRequest(NamedTuple):
    """Answer the client with the result of `attempt_id`, naming who served it."""

    request_id: str
    attempt_id: int
    served_by: str
    input_tokens: int
    output_tokens: int
    attempts: int
    cost_usd: float


class FailRequest(NamedTuple):
    """End the request with an error after trying.

    `outcome` is the *original* failure (a later fallback's refusal never masks it)
    and `http_status` the client's status for it (`status_for`); `in_band` means
    bytes already reached the client, so the error goes out as a stream event rather
    than a status line.
    """

    request_id: str
    reason: Reason
    outcome: Outcome | None
    http_status: int
    attempts: int
    in_band: bool = False
    detail: str = ""


class RejectRequest(NamedTuple):
    """Refuse the request before any attempt, for `reason`."""

    request_id: str
    reason: Reason
    http_status: int


Decision = SendAttempt | Wait | CancelAttempt | CompleteRequest | FailRequest | RejectRequest
TERMINAL = (CompleteRequest, FailRequest, RejectRequest)

REJECT_STATUS: dict[Reason, int] = {
    Reason.UNKNOWN_ROUTE: 404,
    Reason.UNKNOWN_TENANT: 401,
    Reason.ROUTE_NOT_ALLOWED: 403,
    Reason.RESIDENCY: 403,
    Reason.NO_CAPABLE_DEPLOYMENT: 400,
    Reason.CONTEXT_TOO_LONG: 400,
    Reason.TENANT_CAP: 429,
    Reason.TENANT_RATE_LIMITED: 429,
}

_OUTCOME_STATUS: dict[Outcome, int] = {
    Outcome.TIMEOUT: 504,
    Outcome.CONNECT: 502,
    Outcome.SERVER: 502,
    Outcome.OVERLOADED: 503,
    Outcome.RATE_LIMITED: 429,
    Outcome.CONTENT_FILTER: 400,
    Outcome.CONTEXT_LENGTH: 400,
    Outcome.MODEL_GONE: 502,
    Outcome.AUTH: 502,
    Outcome.BAD_REQUEST: 400,
    Outcome.STREAM_CUT: 502,
    Outcome.STREAM_STALL: 504,
}


PASSED_THROUGH = frozenset({400, 409, 413, 422, 429, 500, 502, 503, 504})
"""Vendor statuses a client sees as they are: they mean to it what they meant to us."""

_OPERATOR_OUTCOMES = frozenset({Outcome.AUTH, Outcome.MODEL_GONE})


def status_for(outcome: Outcome | None, reason: Reason, upstream: int | None = None) -> int:
    """The status a gateway answers with when a request fails for `reason` after `outcome`.

    `upstream` is the vendor's status for that outcome. A client sees it when it means
    the same to the client: its own request was at fault (400, 413, 422, ...) or the
    provider is busy or failing (429, 5xx), so the client's SDK retries or not as it
    would against the vendor. Upstream auth and model errors are the operator's
    problem, not the client's, so they surface as 502 rather than leaking the
    provider's 401/403/404 (which an SDK reads as *its* key or model being wrong).
    Statuses outside RFC 9110 (Anthropic's 529, Cloudflare's 52x) become the
    outcome's standard one, which every HTTP client understands.
    """
    if reason in REJECT_STATUS:
        return REJECT_STATUS[reason]
    if outcome is None:
        return 503
    if upstream in PASSED_THROUGH and outcome not in _OPERATOR_OUTCOMES:
        return upstream
    return _OUTCOME_STATUS.get(outcome, 502)
