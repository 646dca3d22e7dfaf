"""The engine's state of requests and attempts in flight.

Plain slotted records, not frozen values: the engine updates a request at every event
of its life (a million times a simulated day), and a slotted attribute write is the
cheapest state change Python has. Only `router.core.engine` creates or changes them;
they never leave the core.
"""

from __future__ import annotations

from router.core.classify import Candidate
from router.core.events import AttemptFinished, RequestArrived
from router.core.outcomes import Outcome
from router.core.policy import Route, Tenant
from router.core.reasons import Reason

__all__ = ["AttemptState", "RequestState"]


class RequestState:
    """One client request the engine has not answered yet: where it is in its candidate
    order, what it has tried, spent and delivered, and its first failure (which a later
    fallback's refusal must never mask)."""

    __slots__ = (
        "arrival",
        "attempts",
        "attempts_here",
        "backoff_prev",
        "cascade",
        "client_attempt",
        "compliant",
        "cost",
        "current",
        "deadline",
        "deferred",
        "delivered",
        "excluded",
        "failovers",
        "first_failure",
        "held",
        "id",
        "ignore_domains",
        "in_flight",
        "input_tokens",
        "larger_than",
        "last_reason",
        "order",
        "output_estimate",
        "pos",
        "route",
        "task",
        "tenant",
        "tenant_policy",
        "waiting",
    )

    def __init__(
        self,
        event: RequestArrived,
        tenant: str,
        tenant_policy: Tenant | None,
        route: Route,
        order: list[Candidate],
        deadline: float,
    ) -> None:
        self.id = event.request_id
        self.tenant = tenant
        self.tenant_policy = tenant_policy
        self.route = route.name
        self.task = event.task or route.task or ""
        self.arrival = event.at
        self.deadline = deadline
        self.input_tokens = event.input_tokens
        self.output_estimate = event.max_output_tokens or route.expected_output_tokens
        self.client_attempt = event.client_attempt
        self.cascade = route.cascade.escalate_on if route.strategy == "cascade" else None
        self.order = order
        self.pos = 0
        self.deferred: list[Candidate] = []
        self.ignore_domains = False
        self.excluded: set[int] = set()
        self.larger_than = 0
        self.current = -1
        self.attempts = 0
        self.attempts_here = 0
        self.failovers = 0
        self.backoff_prev = 0.0
        self.in_flight: AttemptState | None = None
        self.waiting = False
        self.first_failure: tuple[Outcome, int | None, str] | None = None
        self.last_reason: Reason | None = None
        self.delivered = 0
        self.cost = 0.0
        self.compliant = True
        self.held: tuple[AttemptState, AttemptFinished] | None = None


class AttemptState:
    """One upstream attempt in flight: the breaker epoch and domain probe it was admitted
    under and the spend it reserved, which the engine settles when the attempt ends."""

    __slots__ = (
        "breaker_epoch",
        "cancelled",
        "candidate",
        "domain_probe",
        "first_token_at",
        "id",
        "number",
        "reason",
        "request",
        "reserved",
        "start",
    )

    def __init__(
        self,
        attempt_id: int,
        request: RequestState,
        candidate: Candidate,
        start: float,
        reason: Reason | None,
    ) -> None:
        self.id = attempt_id
        self.request = request
        self.candidate = candidate
        self.number = request.attempts
        self.start = start
        self.reason = reason
        self.first_token_at: float | None = None
        self.breaker_epoch: int | None = None
        self.domain_probe = False
        self.reserved = 0.0
        self.cancelled = False
