"""The routing engine: facts in, commands out, no I/O.

Theory of operation
-------------------
A driver (the aiohttp gateway or the SimPy simulator) calls `Engine.handle` with
one event at a time and carries out the decisions it gets back. Nothing here
sleeps, reads a clock, opens a socket or touches the global RNG: time is the
event's `at`, randomness is the `random.Random` handed to the constructor. That
is why a simulated hour and a production hour run the same code.

A request goes through three steps, each owned by one module:

1. *Admit and classify.* Tenant checks (known tenant, allowed route, spend cap —
   hard refuses, soft degrades to a cheaper route — and RPM/TPM buckets), then
   `Classifier` narrows the route to deployments this tenant may use and that
   can serve the request (residency fails closed). A `Strategy` orders them;
   fallbacks follow.
2. *Pick the next candidate.* Walk the order, skipping — each skip a counted
   `Reason` — deployments cooling down after a Retry-After, in a suspect failure
   domain (they are kept as a last resort), with an open breaker, over their
   provider rate limit, or throttled. Reserve the tenant's estimated spend, and
   send with deadlines (connect, first token, idle, total).
3. *Dispose of the outcome.* `outcomes.DISPOSITIONS` says retry the same
   deployment, fail over, or fail fast; Retry-After, the per-deployment attempt
   limit, the fleet-wide retry budget and the request deadline can each turn a
   retry into a failover. A stream that already reached the client is never
   silently replaced: by policy it continues on a fallback or ends in-band.

Every attempt updates health (breaker, failure-domain detector, throttle,
latency EWMA) and the spend ledger, failed attempts included, and every request
ends in exactly one terminal decision: `CompleteRequest`, `FailRequest` or
`RejectRequest`.

Contract with drivers: report `AttemptFinished` for every `SendAttempt`, also
after `CancelAttempt` (with the tokens billed so far; it is billed but not
counted for health), and `TimerFired` for every `Wait`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from random import Random
from typing import Any, Literal

from router.core.backoff import Backoff
from router.core.breaker import Admission, BreakerState, CircuitBreaker
from router.core.budget import UNLIMITED, Budget, RetryBudget
from router.core.classify import Candidate, Classifier, permits
from router.core.decisions import (
    CancelAttempt,
    CompleteRequest,
    Decision,
    FailRequest,
    RejectRequest,
    SendAttempt,
    Wait,
    status_for,
)
from router.core.domains import DomainDetector, DomainVerdict
from router.core.errors import ProtocolViolation
from router.core.events import (
    UNRESUMABLE,
    AttemptFinished,
    Event,
    FirstTokenReceived,
    RequestArrived,
    RequestCancelled,
    TimerFired,
)
from router.core.inflight import AttemptState, RequestState
from router.core.ledger import SpendLedger
from router.core.limits import RateLimiter
from router.core.outcomes import (
    BREAKER_FAILURES,
    DISPOSITIONS,
    DOMAIN_FAILURES,
    Disposition,
    Outcome,
)
from router.core.policy import Policy
from router.core.reasons import Reason
from router.core.strategies import LatencyEwma, order_candidates
from router.core.throttle import AdaptiveThrottle
from router.core.trace import MISSING, RequestRow, TraceRecorder

__all__ = ["ANONYMOUS", "Engine"]

ANONYMOUS = "anonymous"
"""The tenant every request belongs to when the policy configures none."""

_REFUSALS = (Outcome.OVERLOADED, Outcome.RATE_LIMITED)

# What the engine builds for every request — a send, a completion — is
# built by `tuple.__new__` from one tuple of every field, in declared order. A named
# tuple's own constructor is a Python `__new__` behind a slot wrapper: about 250 ns more
# per call, a microsecond per simple request. The price is that mypy does not check these
# tuples against the fields; the engine tests and the golden traces do.
_new_send = partial(tuple.__new__, SendAttempt)
_new_complete = partial(tuple.__new__, CompleteRequest)

# Enum `.value` is a descriptor call; trace rows take the plain strings from these tables.
_OUTCOME_TEXT: dict[Outcome, str] = {outcome: outcome.value for outcome in Outcome}
_REASON_TEXT: dict[Reason | None, str] = {reason: reason.value for reason in Reason}
_REASON_TEXT[None] = ""


class Engine:
    """The sans-I/O router: feed it `Event`s, carry out the `Decision`s it returns."""

    def __init__(
        self,
        policy: Policy,
        *,
        rng: Random,
        trace: TraceRecorder | None = None,
        budget: Budget | None = None,
    ) -> None:
        r = policy.resilience
        self.policy = policy
        self._rng = rng
        self._trace = trace
        self._classifier = Classifier(policy)
        self.candidates = self._classifier.candidates
        self._timeouts = r.timeouts
        self._retries = r.retries
        self._after_first_byte = r.streaming.after_first_byte
        self._filter_failover = r.content_filter_failover
        self._slow_call_s = r.breaker.slow_call_s
        self._model_gone_s = r.breaker.model_gone_open_s
        self._backoff = Backoff(
            r.retries.backoff.kind, base_s=r.retries.backoff.base_s, cap_s=r.retries.backoff.cap_s
        )
        if budget is not None:
            self.budget = budget
        elif r.budget.enabled:
            self.budget = RetryBudget(
                ratio=r.budget.ratio,
                min_retries_per_s=r.budget.min_retries_per_s,
                ttl_s=r.budget.ttl_s,
            )
        else:
            self.budget = UNLIMITED
        count = len(self.candidates)
        self.breakers: list[CircuitBreaker | None] = [
            CircuitBreaker(r.breaker) if r.breaker.enabled else None for _ in range(count)
        ]
        self._throttles: list[AdaptiveThrottle | None] = [
            AdaptiveThrottle(k=r.throttle.k, window_s=r.throttle.window_s)
            if r.throttle.enabled
            else None
            for _ in range(count)
        ]
        self._limiters: list[RateLimiter | None] = []
        for deployment in policy.deployments:
            limiter = RateLimiter(deployment.limits)
            self._limiters.append(None if limiter.unlimited else limiter)
        self._cooldown = [0.0] * count
        self.domains = (
            DomainDetector({c.index: c.domains for c in self.candidates}, r.domains)
            if r.domains.enabled
            else None
        )
        self.latency = LatencyEwma()
        self._tenants = policy.tenants
        self._routes = {route.name: route for route in policy.routes}
        self._tenant_limiters: dict[str, RateLimiter] = {}
        cap_windows: dict[str, float] = {}
        for name, tenant in policy.tenants.items():
            limiter = RateLimiter(tenant.limits)
            if not limiter.unlimited:
                self._tenant_limiters[name] = limiter
            if tenant.spend is not None:
                cap_windows[name] = tenant.spend.window_s
        self.ledger = SpendLedger(window_s=cap_windows)
        self.reasons: Counter[Reason] = Counter()
        self._requests: dict[str, RequestState] = {}
        self._attempts: dict[int, AttemptState] = {}
        self._next_attempt_id = 0
        self._now = float("-inf")
        self._handlers: dict[type, Callable[[Any], list[Decision]]] = {
            RequestArrived: self._arrived,
            FirstTokenReceived: self._first_token,
            AttemptFinished: self._finished,
            TimerFired: self._timer,
            RequestCancelled: self._cancelled,
        }

    # -- public surface -------------------------------------------------------------

    def handle(self, event: Event) -> list[Decision]:
        """Apply one fact; return the commands it calls for (possibly none)."""
        at = event.at
        if at < self._now:
            raise ProtocolViolation(f"time went backwards: event at {at} after {self._now}")
        self._now = at
        return self._handlers[type(event)](event)

    @property
    def live_requests(self) -> int:
        """Requests admitted and not yet ended."""
        return len(self._requests)

    @property
    def attempts_in_flight(self) -> int:
        """Attempts sent and not yet reported back."""
        return len(self._attempts)

    def breaker_state(self, deployment_id: str) -> BreakerState:
        """A deployment's breaker state (CLOSED when breakers are disabled)."""
        for candidate in self.candidates:
            if candidate.id == deployment_id:
                breaker = self.breakers[candidate.index]
                return BreakerState.CLOSED if breaker is None else breaker.state
        raise KeyError(deployment_id)

    # -- events ------------------------------------------------------------------

    def _arrived(self, event: RequestArrived) -> list[Decision]:
        at = event.at
        if event.request_id in self._requests:
            raise ProtocolViolation(f"request id {event.request_id!r} is already live")
        tenant_name = event.tenant or ANONYMOUS
        tenant = self._tenants.get(tenant_name)
        if self._tenants and tenant is None:
            return self._reject(event, tenant_name, Reason.UNKNOWN_TENANT)
        route_name = event.route
        first_reason: Reason | None = None
        if tenant is not None:
            if tenant.routes is not None and route_name not in tenant.routes:
                return self._reject(event, tenant_name, Reason.ROUTE_NOT_ALLOWED)
            spend = tenant.spend
            if spend is not None:
                spent = self.ledger.committed(at, tenant_name)
                if spend.hard_usd is not None and spent >= spend.hard_usd:
                    return self._reject(event, tenant_name, Reason.TENANT_CAP)
                if spend.soft_usd is not None and spend.degrade_to and spent >= spend.soft_usd:
                    route_name = spend.degrade_to
                    first_reason = Reason.DEGRADED
                    self.reasons[Reason.DEGRADED] += 1
        input_tokens = event.input_tokens
        targets, fallbacks, refusal = self._classifier.classify(
            route_name,
            tenant_name,
            input_tokens,
            event.max_output_tokens,
            event.needs,
            event.requires,
        )
        if refusal is not None:
            return self._reject(event, tenant_name, refusal)
        route = self._routes[route_name]
        if self._tenant_limiters:
            limiter = self._tenant_limiters.get(tenant_name)
            if limiter is not None and not limiter.try_acquire(
                at, input_tokens + (event.max_output_tokens or route.expected_output_tokens)
            ):
                return self._reject(event, tenant_name, Reason.TENANT_RATE_LIMITED)
        order = order_candidates(
            targets, fallbacks, route, event.task, input_tokens, self._rng, self.latency
        )
        total_s = self._timeouts.total_s
        if event.timeout_s is not None:
            total_s = min(total_s, event.timeout_s)
        request = RequestState(event, tenant_name, tenant, route, order, at + total_s)
        self._requests[request.id] = request
        self.budget.deposit(at)
        return self._next_attempt(request, at, first_reason)

    def _first_token(self, event: FirstTokenReceived) -> list[Decision]:
        attempt = self._attempts.get(event.attempt_id)
        if attempt is None:
            raise ProtocolViolation(f"first token for unknown attempt {event.attempt_id}")
        if attempt.first_token_at is None:
            attempt.first_token_at = event.at
        return []

    def _finished(self, event: AttemptFinished) -> list[Decision]:
        attempt = self._attempts.pop(event.attempt_id, None)
        if attempt is None:
            raise ProtocolViolation(
                f"result for unknown or already finished attempt {event.attempt_id}"
            )
        at = event.at
        candidate = attempt.candidate
        request = attempt.request
        outcome = event.outcome
        cost = candidate.cost(event.input_tokens, event.output_tokens)
        if attempt.reserved:
            self.ledger.release(request.tenant, attempt.reserved)
        self.ledger.record(at, request.tenant, candidate.id, cost)
        request.cost += cost
        # Time to first token; an ok answer with no token event counts its whole duration.
        first_token_at = attempt.first_token_at or event.first_token_at
        if first_token_at is not None:
            ttft: float | None = first_token_at - attempt.start
        elif outcome is Outcome.OK:
            ttft = at - attempt.start
        else:
            ttft = None
        if not attempt.cancelled:
            self._record_health(attempt, event, ttft)
        if self._trace is not None:
            number = attempt.number
            table = self._trace.attempt_columns
            table.request_id.append(request.id)
            table.tenant.append(request.tenant)
            table.route.append(request.route)
            table.task.append(request.task)
            table.arrival_s.append(request.arrival)
            table.attempt.append(number)
            table.origin.append("client" if number == 1 else "router")
            table.deployment.append(candidate.id)
            table.start_s.append(attempt.start)
            table.end_s.append(at)
            table.outcome.append(_OUTCOME_TEXT[outcome])
            status = event.http_status
            table.http_status.append(MISSING if status is None else status)
            table.input_tokens.append(event.input_tokens)
            table.output_tokens.append(event.output_tokens)
            table.cost_usd.append(cost)
            table.reason.append(_REASON_TEXT[attempt.reason])
            table.ttft_s.append(MISSING if ttft is None else ttft)
        if attempt.cancelled:
            return []
        request.in_flight = None
        return self._dispose(request, attempt, event)

    def _timer(self, event: TimerFired) -> list[Decision]:
        request = self._requests.get(event.request_id)
        if request is None or not request.waiting:
            return []
        request.waiting = False
        return self._next_attempt(request, event.at, Reason.RETRY)

    def _cancelled(self, event: RequestCancelled) -> list[Decision]:
        request = self._requests.get(event.request_id)
        if request is None:
            return []
        decisions: list[Decision] = []
        attempt = request.in_flight
        if attempt is not None:
            attempt.cancelled = True
            self._release_probes(attempt)
            decisions.append(CancelAttempt(attempt.id))
        request.held = None
        decisions.extend(self._fail(request, event.at, Reason.CLIENT_CANCELLED))
        return decisions

    # -- health -----------------------------------------------------------------

    def _record_health(
        self, attempt: AttemptState, event: AttemptFinished, ttft: float | None
    ) -> None:
        at = event.at
        index = attempt.candidate.index
        outcome = event.outcome
        breaker = self.breakers[index]
        if breaker is not None:
            slow = ttft is not None and ttft > self._slow_call_s
            breaker.record(at, outcome in BREAKER_FAILURES, slow, attempt.breaker_epoch)
            if outcome is Outcome.MODEL_GONE:
                breaker.force_open(at, self._model_gone_s)
        if self.domains is not None:
            self.domains.record(at, index, outcome in DOMAIN_FAILURES, attempt.domain_probe)
        throttle = self._throttles[index]
        if throttle is not None:
            throttle.record(at, outcome not in _REFUSALS)
        if ttft is not None and outcome is Outcome.OK:
            self.latency.observe(index, ttft)
        retry_after = event.retry_after_s
        if retry_after and outcome in _REFUSALS and self._retries.cooldown_on_retry_after:
            self._cooldown[index] = max(self._cooldown[index], at + retry_after)

    def _release_probes(self, attempt: AttemptState) -> None:
        index = attempt.candidate.index
        breaker = self.breakers[index]
        if breaker is not None and attempt.breaker_epoch is not None:
            breaker.release_probe(attempt.breaker_epoch)
            attempt.breaker_epoch = None
        if attempt.domain_probe and self.domains is not None:
            self.domains.release_probe(index)
            attempt.domain_probe = False

    # -- choosing where to send -----------------------------------------------------

    def _next_attempt(
        self, request: RequestState, now: float, reason: Reason | None
    ) -> list[Decision]:
        if now >= request.deadline:
            return self._fail(request, now, Reason.DEADLINE_EXCEEDED)
        skipped: Reason | None = None
        order = request.order
        while True:
            if request.pos >= len(order):
                if not request.deferred:
                    return self._fail(
                        request, now, skipped or request.last_reason or Reason.NO_HEALTHY_DEPLOYMENT
                    )
                order.extend(request.deferred)
                request.deferred = []
                request.ignore_domains = True
            candidate = order[request.pos]
            index = candidate.index
            if index in request.excluded or candidate.context_window <= request.larger_than:
                request.pos += 1
                continue
            verdict = self._admit(request, candidate, now)
            if isinstance(verdict, Reason):
                self.reasons[verdict] += 1
                skipped = skipped or verdict
                if verdict is Reason.DOMAIN_SUSPECT:
                    request.deferred.append(candidate)
                request.pos += 1
                continue
            return self._send(request, candidate, now, skipped or reason, verdict)

    def _admit(
        self, request: RequestState, candidate: Candidate, now: float
    ) -> AttemptState | Reason:
        """Every spend, health and limit check for one candidate; holds are undone on a no.

        A candidate whose estimated cost would take the tenant past its hard cap is
        skipped (`tenant_cap`), so a cheaper fallback may still serve the request.
        """
        index = candidate.index
        if self._cooldown[index] > now:
            return Reason.COOLING_DOWN
        tenant = request.tenant_policy
        if tenant is not None and tenant.spend is not None and tenant.spend.hard_usd is not None:
            estimate = candidate.cost(request.input_tokens, request.output_estimate)
            if self.ledger.committed(now, request.tenant) + estimate > tenant.spend.hard_usd:
                return Reason.TENANT_CAP
        self._next_attempt_id += 1
        attempt = AttemptState(self._next_attempt_id, request, candidate, now, None)
        if self.domains is not None and not request.ignore_domains:
            verdict = self.domains.admit(now, index)
            if verdict == DomainVerdict.SKIP:
                return Reason.DOMAIN_SUSPECT
            attempt.domain_probe = verdict == DomainVerdict.PROBE
        breaker = self.breakers[index]
        if breaker is not None:
            admission = breaker.admit(now)
            if admission is Admission.PROBE:
                attempt.breaker_epoch = breaker.epoch
            elif admission is not Admission.ALLOW:
                self._release_probes(attempt)
                return Reason.BREAKER_OPEN
        tokens = request.input_tokens + request.output_estimate
        limiter = self._limiters[index]
        if limiter is not None and not limiter.try_acquire(now, tokens):
            self._release_probes(attempt)
            return Reason.DEPLOYMENT_RATE_LIMITED
        throttle = self._throttles[index]
        if throttle is not None and not throttle.admit(now, self._rng):
            if limiter is not None:
                limiter.refund(tokens)
            self._release_probes(attempt)
            return Reason.THROTTLED
        return attempt

    def _send(
        self,
        request: RequestState,
        candidate: Candidate,
        now: float,
        reason: Reason | None,
        attempt: AttemptState,
    ) -> list[Decision]:
        tenant = request.tenant_policy
        if tenant is not None:
            if tenant.spend is not None and tenant.spend.hard_usd is not None:
                attempt.reserved = candidate.cost(request.input_tokens, request.output_estimate)
                self.ledger.reserve(request.tenant, attempt.reserved)
            if not permits(tenant, candidate, frozenset()):
                request.compliant = False
        request.attempts += 1
        if candidate.index == request.current:
            request.attempts_here += 1
        else:
            request.current = candidate.index
            request.attempts_here = 1
            request.backoff_prev = 0.0
        attempt.number = request.attempts
        attempt.reason = reason
        if reason is not None and reason is not Reason.DEGRADED:
            self.reasons[reason] += 1
        request.in_flight = attempt
        self._attempts[attempt.id] = attempt
        timeouts = self._timeouts
        deadline = request.deadline
        return [
            _new_send(
                (
                    request.id,
                    attempt.id,
                    attempt.number,
                    candidate.id,
                    min(now + timeouts.connect_s, deadline),
                    min(now + timeouts.first_token_s, deadline),
                    timeouts.stream_idle_s,
                    deadline,
                    request.delivered,
                    reason,
                )
            )
        ]

    # -- what an outcome leads to ---------------------------------------------------

    def _dispose(
        self, request: RequestState, attempt: AttemptState, event: AttemptFinished
    ) -> list[Decision]:
        at = event.at
        outcome = event.outcome
        disposition = DISPOSITIONS[outcome]
        if disposition is Disposition.DONE:
            if request.cascade is not None and event.signals & request.cascade:
                request.held = (attempt, event)
                request.excluded.add(attempt.candidate.index)
                request.pos += 1
                return self._next_attempt(request, at, Reason.ESCALATED)
            return self._complete(request, attempt, event)
        if request.first_failure is None:
            request.first_failure = (outcome, event.http_status, event.detail)
        request.delivered += event.delivered_tokens
        if request.delivered and (
            self._after_first_byte == "error"
            or disposition is Disposition.FAIL_FAST  # a fallback refused the continuation
            or UNRESUMABLE in event.signals
        ):
            return self._fail(request, at, Reason.STREAM_INTERRUPTED)
        if disposition is Disposition.FAIL_FAST:
            return self._fail(request, at, Reason.CLIENT_ERROR)
        index = attempt.candidate.index
        if disposition is Disposition.RETRY_SAME:
            return self._retry_or_fail_over(request, attempt, event)
        request.excluded.add(index)
        if disposition is Disposition.FILTERED:
            if not self._filter_failover:
                return self._fail(request, at, Reason.CONTENT_FILTERED)
        elif disposition is Disposition.LARGER_CONTEXT:
            request.larger_than = max(request.larger_than, attempt.candidate.context_window)
            request.last_reason = Reason.NO_LARGER_CONTEXT
        return self._fail_over(request, at)

    def _retry_or_fail_over(
        self, request: RequestState, attempt: AttemptState, event: AttemptFinished
    ) -> list[Decision]:
        at = event.at
        retries = self._retries
        if request.attempts_here >= retries.max_attempts_per_deployment:
            request.last_reason = Reason.ATTEMPTS_EXHAUSTED
            return self._fail_over(request, at)
        retry_after = event.retry_after_s or 0.0
        if retry_after > retries.max_retry_after_s or at + retry_after >= request.deadline:
            self.reasons[Reason.RETRY_AFTER_TOO_LONG] += 1
            request.last_reason = Reason.RETRY_AFTER_TOO_LONG
            return self._fail_over(request, at)
        if not self.budget.try_withdraw(at):
            self.reasons[Reason.BUDGET_EXHAUSTED] += 1
            request.last_reason = Reason.BUDGET_EXHAUSTED
            return self._fail_over(request, at)
        delay = self._backoff.delay(request.attempts_here - 1, request.backoff_prev, self._rng)
        request.backoff_prev = delay
        until = at + max(delay, retry_after)
        if until >= request.deadline:
            request.last_reason = Reason.DEADLINE_EXCEEDED
            return self._fail_over(request, at)
        request.waiting = True
        return [Wait(request.id, until)]

    def _fail_over(self, request: RequestState, now: float) -> list[Decision]:
        request.pos += 1
        request.failovers += 1
        if request.failovers > self._retries.max_failovers:
            return self._fail(request, now, Reason.ATTEMPTS_EXHAUSTED)
        reason = Reason.CONTINUATION if request.delivered else Reason.FAILOVER
        return self._next_attempt(request, now, reason)

    # -- endings --------------------------------------------------------------------

    def _complete(
        self, request: RequestState, attempt: AttemptState, event: AttemptFinished
    ) -> list[Decision]:
        del self._requests[request.id]
        served_by = attempt.candidate.id
        self._request_row(request, event.at, "ok", served_by, "")
        return [
            _new_complete(
                (
                    request.id,
                    attempt.id,
                    served_by,
                    event.input_tokens,
                    event.output_tokens,
                    request.attempts,
                    request.cost,
                )
            )
        ]

    def _fail(self, request: RequestState, now: float, reason: Reason) -> list[Decision]:
        if request.held is not None:
            attempt, event = request.held
            return self._complete(request, attempt, event)
        del self._requests[request.id]
        self.reasons[reason] += 1
        if request.attempts == 0:
            self._request_row(request, now, "rejected", "", reason.value)
            return [
                RejectRequest(
                    request_id=request.id, reason=reason, http_status=status_for(None, reason)
                )
            ]
        outcome, status, detail = request.first_failure or (None, None, "")
        self._request_row(request, now, "error", "", reason.value)
        return [
            FailRequest(
                request_id=request.id,
                reason=reason,
                outcome=outcome,
                http_status=status_for(outcome, reason, status),
                attempts=request.attempts,
                in_band=request.delivered > 0,
                detail=detail,
            )
        ]

    def _reject(self, event: RequestArrived, tenant: str, reason: Reason) -> list[Decision]:
        self.reasons[reason] += 1
        if self._trace is not None:
            self._trace.add_request(
                RequestRow(
                    request_id=event.request_id,
                    tenant=tenant,
                    route=event.route,
                    task=event.task or "",
                    arrival_s=event.at,
                    done_s=event.at,
                    final="rejected",
                    served_by="",
                    attempts=0,
                    cost_usd=0.0,
                    complete=False,
                    compliant=True,
                    reason=reason.value,
                    client_attempt=event.client_attempt,
                )
            )
        return [
            RejectRequest(
                request_id=event.request_id, reason=reason, http_status=status_for(None, reason)
            )
        ]

    def _request_row(
        self,
        request: RequestState,
        now: float,
        final: Literal["ok", "error", "rejected"],
        served_by: str,
        reason: str,
    ) -> None:
        if self._trace is None:
            return
        table = self._trace.request_columns
        table.request_id.append(request.id)
        table.tenant.append(request.tenant)
        table.route.append(request.route)
        table.task.append(request.task)
        table.arrival_s.append(request.arrival)
        table.done_s.append(now)
        table.final.append(final)
        table.served_by.append(served_by)
        table.attempts.append(request.attempts)
        table.cost_usd.append(request.cost)
        table.complete.append(final == "ok")
        table.compliant.append(request.compliant)
        table.reason.append(reason)
        table.client_attempt.append(request.client_attempt)
