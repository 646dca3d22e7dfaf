"""The SimPy driver: the real router core, simulated providers and clients, virtual time.

Theory of operation
-------------------
This is the second of the core's two drivers (the aiohttp gateway is the other).
It feeds `router.core.Engine` the same events the gateway does, with
`at = env.now`, and carries out the same decisions — no routing rule lives here.

- **Clients** (the agentic layer above the router) arrive from `TrafficPlan`,
  call the router, give up after their own timeout (`RequestCancelled`), and
  retry failures with their own backoff; a retry reuses the request id with
  `client_attempt` + 1, so both retry layers appear in one trace.
- **Providers** are `fakes.model.ProviderModel`s plus what only a driver can
  hold: busy slots and a FIFO queue per deployment. `gate` answers before a slot
  (429s, DNS, outages, black holes); `plan` decides an attempt's timeline once a
  slot is free. A provider finishes work whose caller already gave up — wasted
  capacity is how retry storms go metastable.
- **Deadlines** of each `SendAttempt` (first token, stream idle, total) are
  enforced here as the gateway's timers would, turning a slow plan into the
  `timeout` or `stream_stall` the engine is told about.

Everything is callback-driven (`env.timeout(d).callbacks.append(fn)`), not a
process per request: SimPy's process machinery would cost several times more per
request (reference/resilience.md §4.2).
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import pandas as pd
import simpy

from fakes.model import AttemptPlan, ProviderModel
from router.core import (
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    AttemptFinished,
    Backoff,
    CancelAttempt,
    CompleteRequest,
    Engine,
    FailRequest,
    Outcome,
    RejectRequest,
    RequestArrived,
    RequestCancelled,
    SendAttempt,
    TimerFired,
    TraceRecorder,
    Wait,
)
from router.core.decisions import Decision
from router.core.reasons import Reason
from scenarios.scenario_files import LoadedScenario
from simulator.traffic import TrafficPlan

__all__ = ["SimulationResult", "simulate"]

_RETRYABLE_REJECTIONS = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The trace of one run, and the engine's own counts."""

    attempts: pd.DataFrame
    requests: pd.DataFrame
    reasons: dict[str, int]
    duration: float
    wall_s: float = 0.0
    providers: dict[str, dict[str, float]] = field(default_factory=dict)


class _Call:
    """One logical client call across its client-side attempts."""

    __slots__ = (
        "attempt",
        "done",
        "ended",
        "id",
        "input_tokens",
        "max_output",
        "needs",
        "output_tokens",
        "prev_backoff",
        "route",
        "stream",
        "task",
        "tenant",
        "timed_out",
    )

    def __init__(self, request_id: str) -> None:
        self.id = request_id
        self.attempt = 0
        self.done = False
        self.ended = False
        self.timed_out = False
        self.prev_backoff = 0.0
        self.tenant = ""
        self.task = ""
        self.route = ""
        self.input_tokens = 0
        self.output_tokens = 0
        self.max_output = 0
        self.needs: frozenset[str] = frozenset()
        self.stream = True


class _Verdict(NamedTuple):
    """What the router will be told about one attempt, and when."""

    attempt_id: int
    at: float
    outcome: Outcome
    status: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    delivered: int = 0
    retry_after: float | None = None
    first_token_at: float | None = None


class _Provider:
    """A deployment's busy slots and queue (the parts of a provider a pure model cannot hold)."""

    __slots__ = (
        "busy",
        "busy_s",
        "model",
        "overloaded",
        "peak_queue",
        "queue",
        "queued",
        "served",
        "wait_s",
    )

    def __init__(self, model: ProviderModel) -> None:
        self.model = model
        self.busy = 0
        self.queue: deque[tuple[SendAttempt, _Call, float]] = deque()
        self.busy_s = 0.0
        self.wait_s = 0.0
        self.served = 0
        self.queued = 0
        self.overloaded = 0
        self.peak_queue = 0

    def stats(self, duration: float) -> dict[str, float]:
        """Load against capacity over the run: slot-seconds busy, seconds waited in the queue,
        attempts served, queued and refused as overloaded."""
        capacity = self.model.capacity(0.0)
        return {
            "busy_s": self.busy_s,
            "wait_s": self.wait_s,
            "served": self.served,
            "queued": self.queued,
            "overloaded": self.overloaded,
            "peak_queue": self.peak_queue,
            "utilisation": self.busy_s / (capacity * duration) if capacity and duration else 0.0,
        }


class _Simulation:
    def __init__(self, loaded: LoadedScenario, seed: int) -> None:
        scenario, policy = loaded.scenario, loaded.policy
        self.env = simpy.Environment()
        self.duration = scenario.duration
        self.trace = TraceRecorder()
        self.engine = Engine(policy, rng=random.Random(seed * 7919 + 1), trace=self.trace)
        self.rng = random.Random(seed * 104729 + 2)
        faults = list(scenario.faults)
        self.providers = {
            d.id: _Provider(
                ProviderModel(d, scenario.world.for_deployment(d.id), faults, seed=seed)
            )
            for d in policy.deployments
        }
        self.traffic = TrafficPlan(
            scenario.traffic, duration=scenario.duration, seed=seed, base_dir=loaded.path.parent
        )
        routes = {route.name for route in policy.routes}
        self.task_routes = [task.route_in(routes) or task.route[0] for task in self.traffic.tasks]
        client = scenario.traffic.client
        self.client_timeout = client.timeout
        self.client_retries = client.retries
        self.abandon = client.abandon_probability
        self.client_backoff = Backoff(
            client.backoff.kind, base_s=client.backoff.base, cap_s=client.backoff.cap
        )
        self.task_needs = [frozenset(task.needs) for task in self.traffic.tasks]
        self.timeouts: deque[tuple[float, _Call, int]] = deque()
        self.timeout_armed = False
        self.batches = self.traffic.batches(60.0)
        self.calls: dict[str, _Call] = {}
        self.pending: dict[int, _Call] = {}
        self.queued: set[int] = set()
        self.count = 0

    # -- scheduling ---------------------------------------------------------------

    def at(self, when: float, callback: Callable[[Any], None]) -> None:
        self.env.timeout(max(0.0, when - self.env.now)).callbacks.append(callback)

    def feed(self, event: Any) -> None:
        for decision in self.engine.handle(event):
            self.carry_out(decision)

    def carry_out(self, decision: Decision) -> None:
        if isinstance(decision, SendAttempt):
            self.send(decision)
        elif isinstance(decision, Wait):
            request_id = decision.request_id
            self.at(
                decision.until,
                lambda _: self.feed(TimerFired(at=self.env.now, request_id=request_id)),
            )
        elif isinstance(decision, CompleteRequest | FailRequest | RejectRequest):
            self.ended(decision)
        elif isinstance(decision, CancelAttempt):
            pass  # the provider works on; its result is still reported (and billed)

    # -- clients ------------------------------------------------------------------

    def load_next(self, _: object = None) -> None:
        """Schedule the next batch of arrivals; reload at its last arrival (batches are ordered)."""
        for batch in self.batches:
            if not len(batch.times):
                continue
            traffic = self.traffic
            tasks = traffic.tasks
            tenants = traffic.tenants
            routes = self.task_routes
            times = batch.times.tolist()
            task_ids = batch.task.tolist()
            for when, tenant, task_id, inputs, outputs in zip(
                times,
                batch.tenant.tolist(),
                task_ids,
                batch.input_tokens.tolist(),
                batch.output_tokens.tolist(),
                strict=True,
            ):
                self.count += 1
                call = _Call(f"r{self.count}")
                task = tasks[task_id]
                call.tenant = tenants[tenant]
                call.task = task.name
                call.route = routes[task_id]
                call.input_tokens = inputs
                call.output_tokens = outputs
                call.max_output = task.max_output_tokens or outputs
                call.needs = self.task_needs[task_id]
                call.stream = task.stream
                self.at(when, partial(self.call, call))
            self.at(times[-1], self.load_next)
            return

    def call(self, call: _Call, _: object = None) -> None:
        self.calls[call.id] = call
        call.ended = False
        now = self.env.now
        attempt = call.attempt
        self.timeouts.append((now + self.client_timeout, call, attempt))
        if not self.timeout_armed:
            self.timeout_armed = True
            self.at(now + self.client_timeout, self.check_timeouts)
        self.feed(
            RequestArrived(
                at=now,
                request_id=call.id,
                route=call.route,
                tenant=call.tenant,
                input_tokens=call.input_tokens,
                max_output_tokens=call.max_output,
                task=call.task,
                needs=call.needs,
                stream=call.stream,
                client_attempt=attempt,
            )
        )

    def check_timeouts(self, _: object = None) -> None:
        """Client timeouts, one event for many: the timeout is fixed, so deadlines are FIFO."""
        now = self.env.now
        queue = self.timeouts
        while queue:
            deadline, call, attempt = queue[0]
            if call.done or call.attempt != attempt or call.ended:
                queue.popleft()
            elif deadline <= now:
                queue.popleft()
                call.timed_out = True
                self.feed(RequestCancelled(at=now, request_id=call.id))
            else:
                break
        self.timeout_armed = bool(queue)
        if queue:
            self.at(queue[0][0], self.check_timeouts)

    def ended(self, decision: CompleteRequest | FailRequest | RejectRequest) -> None:
        call = self.calls[decision.request_id]
        call.ended = True
        timed_out, call.timed_out = call.timed_out, False
        if isinstance(decision, CompleteRequest):
            self.finish(call)
            return
        status = decision.http_status
        retryable = timed_out or (
            status in _RETRYABLE_REJECTIONS
            if isinstance(decision, RejectRequest)
            else status >= 500 or status == 429
        )
        if decision.reason is Reason.CLIENT_CANCELLED and not timed_out:
            retryable = False
        if (
            not retryable
            or call.attempt >= self.client_retries
            or (self.abandon and self.rng.random() < self.abandon)
        ):
            self.finish(call)
            return
        delay = self.client_backoff.delay(call.attempt, call.prev_backoff, self.rng)
        call.prev_backoff = delay
        call.attempt += 1
        self.at(self.env.now + delay, partial(self.call, call))

    def finish(self, call: _Call) -> None:
        call.done = True
        del self.calls[call.id]

    # -- providers ----------------------------------------------------------------

    def send(self, send: SendAttempt) -> None:
        call = self.calls[send.request_id]
        provider = self.providers[send.deployment]
        model = provider.model
        now = self.env.now
        plan = model.gate(
            now,
            input_tokens=call.input_tokens,
            max_output_tokens=call.max_output,
            task=call.task,
            rng=self.rng,
        )
        self.pending[send.attempt_id] = call
        if plan is not None:
            self.follow(send, call, plan, now, None)
        elif provider.busy < model.capacity(now):
            self.start(provider, send, call)
        elif len(provider.queue) < model.queue_limit:
            provider.queue.append((send, call, now))
            provider.queued += 1
            provider.peak_queue = max(provider.peak_queue, len(provider.queue))
            attempt_id = send.attempt_id
            self.queued.add(attempt_id)
            self.at(send.first_token_by, lambda _: self.queue_deadline(attempt_id))
        else:
            provider.overloaded += 1
            self.follow(send, call, model.overload_plan(now), now, None)

    def queue_deadline(self, attempt_id: int) -> None:
        """Still queued at its first-token deadline: the router gives up; the provider does not."""
        if attempt_id in self.queued:
            self.report(_Verdict(attempt_id, self.env.now, Outcome.TIMEOUT))

    def start(self, provider: _Provider, send: SendAttempt, call: _Call) -> None:
        now = self.env.now
        provider.busy += 1
        provider.busy_s -= now
        provider.served += 1
        self.queued.discard(send.attempt_id)
        plan = provider.model.plan(
            now,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            stream=call.stream,
            rng=self.rng,
        )
        self.follow(send, call, plan, now, provider)

    def release(self, provider: _Provider, _: object = None) -> None:
        now = self.env.now
        provider.busy -= 1
        provider.busy_s += now
        queue = provider.queue
        model = provider.model
        while queue and provider.busy < model.capacity(now):
            send, call, since = queue.popleft()
            provider.wait_s += now - since
            self.start(provider, send, call)

    def follow(
        self,
        send: SendAttempt,
        call: _Call,
        plan: AttemptPlan,
        start: float,
        provider: _Provider | None,
    ) -> None:
        """Turn a provider's plan into what the router sees, under the attempt's deadlines.

        One event per attempt where possible: the result is reported and the slot
        freed together, and the first token's time rides on the result.
        """
        verdict = self.verdict(send, call, plan, start)
        release_at = None
        if provider is not None and plan.uses_slot:
            release_at = start + plan.end_s
            if plan.outcome is Outcome.STREAM_STALL and plan.stall_s > send.idle_s:
                release_at = verdict.at
        if provider is None or release_at is None:
            self.at(verdict.at, partial(self.report, verdict))
        elif release_at == verdict.at:
            self.at(verdict.at, partial(self.settle, provider, verdict))
        else:
            self.at(verdict.at, partial(self.report, verdict))
            if math.isfinite(release_at):
                self.at(release_at, partial(self.release, provider))

    @staticmethod
    def verdict(send: SendAttempt, call: _Call, plan: AttemptPlan, start: float) -> _Verdict:
        """When the router learns how the attempt went, and what it learns."""
        end = start + plan.end_s
        ttft = plan.ttft_s
        if ttft is None:
            if end <= send.first_token_by:
                return _Verdict(
                    send.attempt_id,
                    end,
                    plan.outcome,
                    plan.http_status,
                    retry_after=plan.retry_after_s,
                )
            return _Verdict(send.attempt_id, send.first_token_by, Outcome.TIMEOUT)
        first = start + ttft
        if first > send.first_token_by:
            return _Verdict(send.attempt_id, send.first_token_by, Outcome.TIMEOUT)
        outcome = plan.outcome
        tokens = plan.output_tokens
        stream = call.stream
        if outcome is Outcome.STREAM_STALL:
            if plan.stall_s > send.idle_s:
                at = min(end + send.idle_s, send.deadline)
                return _Verdict(
                    send.attempt_id,
                    at,
                    outcome,
                    200,
                    call.input_tokens,
                    tokens,
                    tokens if stream else 0,
                    first_token_at=first,
                )
            rest = max(0, call.output_tokens - tokens)
            end += plan.stall_s + rest * plan.per_token_s
            outcome, tokens = Outcome.OK, call.output_tokens
        if end > send.deadline:
            produced = min(tokens, 1 + int((send.deadline - first) / max(plan.per_token_s, 1e-9)))
            return _Verdict(
                send.attempt_id,
                send.deadline,
                Outcome.TIMEOUT,
                None,
                call.input_tokens,
                produced,
                produced if stream else 0,
                first_token_at=first,
            )
        delivered = tokens if stream and outcome is not Outcome.OK else 0
        return _Verdict(
            send.attempt_id,
            end,
            outcome,
            plan.http_status,
            call.input_tokens,
            tokens,
            delivered,
            first_token_at=first,
        )

    def settle(self, provider: _Provider, verdict: _Verdict, _: object = None) -> None:
        self.release(provider)
        self.report(verdict)

    def report(self, verdict: _Verdict, _: object = None) -> None:
        if self.pending.pop(verdict.attempt_id, None) is None:
            return
        self.feed(
            AttemptFinished(
                at=self.env.now,
                attempt_id=verdict.attempt_id,
                outcome=verdict.outcome,
                http_status=verdict.status,
                input_tokens=verdict.input_tokens,
                output_tokens=verdict.output_tokens,
                delivered_tokens=verdict.delivered,
                retry_after_s=verdict.retry_after,
                first_token_at=verdict.first_token_at,
            )
        )

    # -- the run ------------------------------------------------------------------

    def run(self, progress: Callable[[float], None] | None) -> None:
        self.load_next()
        env = self.env
        if progress is not None:
            step = max(60.0, self.duration / 200)
            horizon = self.duration

            def tick(_: object) -> None:
                progress(min(env.now, horizon))
                if env.now < horizon:
                    self.at(env.now + step, tick)

            self.at(0.0, tick)
        env.run()
        if self.engine.live_requests or self.pending:
            raise RuntimeError(
                f"simulation ended with {self.engine.live_requests} live requests and "
                f"{len(self.pending)} unreported attempts: a driver bug"
            )


def _frame(rows: list[Any], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=list(columns))


def simulate(
    loaded: LoadedScenario,
    *,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Run one scenario with its policy and seed; the same inputs give the same trace."""
    started = time.perf_counter()
    simulation = _Simulation(loaded, seed)
    # Millions of long-lived trace rows make every cyclic-GC pass slower as the run grows;
    # the run creates no reference cycles worth collecting, so the collector waits.
    collecting = gc.isenabled()
    gc.disable()
    try:
        simulation.run(progress)
    finally:
        if collecting:
            gc.enable()
    trace = simulation.trace
    return SimulationResult(
        attempts=_frame(trace.attempts, ATTEMPT_COLUMNS),
        requests=_frame(trace.requests, REQUEST_COLUMNS),
        reasons={reason.value: n for reason, n in sorted(simulation.engine.reasons.items())},
        duration=loaded.scenario.duration,
        wall_s=time.perf_counter() - started,
        providers={
            name: provider.stats(loaded.scenario.duration)
            for name, provider in simulation.providers.items()
        },
    )
