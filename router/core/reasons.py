"""Every "no" the core says, and every reason it routes away, has a name here.

Reports count these; tests assert them. A new refusal means a new member, never
a free-form string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ROUTED_AWAY", "Reason"]


class Reason(StrEnum):
    """Why the engine refused, skipped, retried or moved a request."""

    # Admission and classification (the request never reaches a provider).
    UNKNOWN_ROUTE = "unknown_route"
    UNKNOWN_TENANT = "unknown_tenant"
    ROUTE_NOT_ALLOWED = "route_not_allowed"
    RESIDENCY = "residency"
    NO_CAPABLE_DEPLOYMENT = "no_capable_deployment"
    CONTEXT_TOO_LONG = "context_too_long"
    TENANT_CAP = "tenant_cap"
    TENANT_RATE_LIMITED = "tenant_rate_limited"
    # Why a candidate deployment was skipped.
    BREAKER_OPEN = "breaker_open"
    DOMAIN_SUSPECT = "domain_suspect"
    COOLING_DOWN = "cooling_down"
    DEPLOYMENT_RATE_LIMITED = "deployment_rate_limited"
    THROTTLED = "throttled"
    # Why an attempt was made where it was.
    RETRY = "retry"
    FAILOVER = "failover"
    ESCALATED = "escalated"
    CONTINUATION = "continuation"
    DEGRADED = "degraded"
    # Why a request ended without an answer.
    BUDGET_EXHAUSTED = "budget_exhausted"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    NO_HEALTHY_DEPLOYMENT = "no_healthy_deployment"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    RETRY_AFTER_TOO_LONG = "retry_after_too_long"
    NO_LARGER_CONTEXT = "no_larger_context"
    CONTENT_FILTERED = "content_filtered"
    CLIENT_ERROR = "client_error"
    STREAM_INTERRUPTED = "stream_interrupted"
    CLIENT_CANCELLED = "client_cancelled"


ROUTED_AWAY: frozenset[Reason] = frozenset({Reason.BREAKER_OPEN, Reason.DOMAIN_SUSPECT})
"""Reasons that mark the engine detecting a fault (TTD counts from the first of these)."""
