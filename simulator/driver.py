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

Everything is callback-driven, not a process per request: SimPy's process
machinery would cost several times more per request (reference/resilience.md
§4.2). A callback is scheduled with `Environment.at` as a `Due` event (one
shared callback list and one argument; `simulator.schedule`) rather than
`env.timeout(d).callbacks.append(partial(fn, arg))`: the same place in SimPy's queue —
time, priority and order — without a `Timeout` and a `partial` per event, twice per
simulated request.

The hot path (arrival → `SendAttempt` → plan → `AttemptFinished` → end) builds
events without keyword arguments, dispatches decisions through a dict keyed by
type, and reads `env.now` once per callback: small costs, but paid millions of times.
"""

from __future__ import annotations

import gc
import math
import random
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from fakes.model import AttemptPlan, ProviderModel
from router.core import (
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
from router.core.reasons import Reason
from router.core.trace import AttemptColumns, RequestColumns
from scenarios.scenario_files import LoadedScenario
from simulator.schedule import Callback, Due, Environment
from simulator.traffic import TrafficPlan

__all__ = ["SimulationResult", "simulate"]

_RETRYABLE_REJECTIONS = frozenset({429, 503})
_EMPTY: frozenset[str] = frozenset()  # no signals, no extra requirements

# The two events built once per request, from one tuple of every field in declared order:
# a named tuple's own constructor (a Python `__new__` behind a slot wrapper) costs about
# three times as much.
_new_arrived = partial(tuple.__new__, RequestArrived)
_new_finished = partial(tuple.__new__, AttemptFinished)


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

    def __init__(
        self,
        request_id: str,
        tenant: str,
        task: str,
        route: str,
        input_tokens: int,
        output_tokens: int,
        max_output: int,
        needs: frozenset[str],
        stream: bool,
    ) -> None:
        self.id = request_id
        self.attempt = 0
        self.done = False
        self.ended = False
        self.timed_out = False
        self.prev_backoff = 0.0
        self.tenant = tenant
        self.task = task
        self.route = route
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.max_output = max_output
        self.needs = needs
        self.stream = stream

    def carried_on(self, resume: int) -> _Call:
        """This call as a continuation attempt sees it: the `resume` tokens the client
        already has go in as a prefill (billed as input), and only the rest comes out,
        as the gateway asks of a fallback (`Adapter.continued`)."""
        return _Call(
            self.id, self.tenant, self.task, self.route, self.input_tokens + resume,
            max(1, self.output_tokens - resume), self.max_output, self.needs, self.stream,
        )  # fmt: skip


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
        self.env = Environment()
        self.at = self.env.at
        self.duration = scenario.duration
        self.trace = TraceRecorder()
        self.engine = Engine(policy, rng=random.Random(seed * 7919 + 1), trace=self.trace)
        self.handle = self.engine.handle
        self.hold = policy.resilience.streaming.hold_tokens
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
        # One callback list per kind of `Due` event, shared by all events of that kind.
        self.on_load: list[Callback] = [self.load_next]
        self.on_call: list[Callback] = [self.call]
        self.on_timeouts: list[Callback] = [self.check_timeouts]
        self.on_timer: list[Callback] = [self.timer]
        self.on_queue_deadline: list[Callback] = [self.queue_deadline]
        self.on_report: list[Callback] = [self.report_due]
        self.on_settle: list[Callback] = [self.settle]
        self.on_release: list[Callback] = [self.release_due]
        self.carry_out: dict[type, Callable[[Any], None]] = {
            SendAttempt: self.send,
            Wait: self.wait,
            CompleteRequest: self.completed,
            FailRequest: self.ended,
            RejectRequest: self.ended,
            CancelAttempt: self.cancelled,
        }

    # -- scheduling ---------------------------------------------------------------

    def feed(self, event: Any) -> None:
        carry_out = self.carry_out
        for decision in self.handle(event):
            carry_out[type(decision)](decision)

    def wait(self, decision: Wait) -> None:
        self.at(decision.until, self.on_timer, decision.request_id)

    def timer(self, due: Due) -> None:
        self.feed(TimerFired(self.env.now, due.arg))

    def cancelled(self, decision: CancelAttempt) -> None:
        """Nothing to do: the provider works on; its result is still reported (and billed)."""

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
            needs = self.task_needs
            on_call = self.on_call
            times = batch.times.tolist()
            task_ids = batch.task.tolist()
            count = self.count
            for when, tenant, task_id, inputs, outputs in zip(
                times,
                batch.tenant.tolist(),
                task_ids,
                batch.input_tokens.tolist(),
                batch.output_tokens.tolist(),
                strict=True,
            ):
                count += 1
                task = tasks[task_id]
                call = _Call(
                    f"r{count}",
                    tenants[tenant],
                    task.name,
                    routes[task_id],
                    inputs,
                    outputs,
                    task.max_output_tokens or outputs,
                    needs[task_id],
                    task.stream,
                )
                self.at(when, on_call, call)
            self.count = count
            self.at(times[-1], self.on_load)
            return

    def call(self, due: Due) -> None:
        call: _Call = due.arg
        self.calls[call.id] = call
        call.ended = False
        now = self.env.now
        attempt = call.attempt
        self.timeouts.append((now + self.client_timeout, call, attempt))
        if not self.timeout_armed:
            self.timeout_armed = True
            self.at(now + self.client_timeout, self.on_timeouts)
        arrived = _new_arrived(
            (
                now,
                call.id,
                call.route,
                call.input_tokens,
                call.tenant,
                call.max_output,
                call.task,
                call.needs,
                _EMPTY,
                call.stream,
                None,
                attempt,
            )
        )
        carry_out = self.carry_out  # `feed`, inline: this runs once per request
        for decision in self.handle(arrived):
            carry_out[type(decision)](decision)

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
                self.feed(RequestCancelled(now, call.id))
            else:
                break
        self.timeout_armed = bool(queue)
        if queue:
            self.at(queue[0][0], self.on_timeouts)

    def completed(self, decision: CompleteRequest) -> None:
        call = self.calls.pop(decision.request_id)
        call.ended = True
        call.timed_out = False
        call.done = True

    def ended(self, decision: FailRequest | RejectRequest) -> None:
        call = self.calls[decision.request_id]
        call.ended = True
        timed_out, call.timed_out = call.timed_out, False
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
            call.done = True
            del self.calls[call.id]
            return
        delay = self.client_backoff.delay(call.attempt, call.prev_backoff, self.rng)
        call.prev_backoff = delay
        call.attempt += 1
        self.at(self.env.now + delay, self.on_call, call)

    # -- providers ----------------------------------------------------------------

    def send(self, send: SendAttempt) -> None:
        call = self.calls[send.request_id]
        if send.resume_after_tokens:
            call = call.carried_on(send.resume_after_tokens)
        provider = self.providers[send.deployment]
        model = provider.model
        now = self.env.now
        plan = (
            None
            if model.open_gate
            else model.gate(now, call.input_tokens, call.max_output, call.task, self.rng)
        )
        self.pending[send.attempt_id] = call
        if plan is not None:
            self.follow(send, call, plan, now, None)
        elif provider.busy < model.capacity(now):
            self.start(provider, send, call, now)
        elif len(provider.queue) < model.queue_limit:
            provider.queue.append((send, call, now))
            provider.queued += 1
            provider.peak_queue = max(provider.peak_queue, len(provider.queue))
            attempt_id = send.attempt_id
            self.queued.add(attempt_id)
            self.at(send.first_token_by, self.on_queue_deadline, attempt_id)
        else:
            provider.overloaded += 1
            self.follow(send, call, model.overload_plan(now), now, None)

    def queue_deadline(self, due: Due) -> None:
        """Still queued at its first-token deadline: the router gives up; the provider does not."""
        attempt_id: int = due.arg
        if attempt_id in self.queued:
            self.report(AttemptFinished(self.env.now, attempt_id, Outcome.TIMEOUT))

    def start(self, provider: _Provider, send: SendAttempt, call: _Call, now: float) -> None:
        provider.busy += 1
        provider.busy_s -= now
        provider.served += 1
        plan = provider.model.plan(
            now, call.input_tokens, call.output_tokens, call.stream, self.rng
        )
        self.follow(send, call, plan, now, provider)

    def release(self, provider: _Provider, now: float) -> None:
        provider.busy -= 1
        provider.busy_s += now
        if provider.queue:
            self.dequeue(provider, now)

    def dequeue(self, provider: _Provider, now: float) -> None:
        """Start queued attempts, oldest first, while slots are free."""
        queue = provider.queue
        model = provider.model
        while queue and provider.busy < model.capacity(now):
            send, call, since = queue.popleft()
            provider.wait_s += now - since
            self.queued.discard(send.attempt_id)
            self.start(provider, send, call, now)

    def release_due(self, due: Due) -> None:
        self.release(due.arg, self.env.now)

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
            self.at(verdict.at, self.on_report, verdict)
        elif release_at == verdict.at:
            self.at(verdict.at, self.on_settle, (provider, verdict))
        else:
            self.at(verdict.at, self.on_report, verdict)
            if math.isfinite(release_at):
                self.at(release_at, self.on_release, provider)

    def verdict(
        self, send: SendAttempt, call: _Call, plan: AttemptPlan, start: float
    ) -> AttemptFinished:
        """What the router will learn about the attempt, and when (`at`).

        The event is built here, positionally, once per attempt; `report` hands it over
        as it is unless SimPy's clock, at the time it fires, says otherwise. A broken
        stream delivered its tokens to the client only if there were more of them than
        the gateway holds back (`streaming.hold_tokens`), as `ClientStream` does.
        """
        end = start + plan.end_s
        ttft = plan.ttft_s
        attempt_id = send.attempt_id
        if ttft is None:
            if end <= send.first_token_by:
                return AttemptFinished(
                    end, attempt_id, plan.outcome, plan.http_status, 0, 0, 0, plan.retry_after_s
                )
            return AttemptFinished(send.first_token_by, attempt_id, Outcome.TIMEOUT)
        first = start + ttft
        if first > send.first_token_by:
            return AttemptFinished(send.first_token_by, attempt_id, Outcome.TIMEOUT)
        outcome = plan.outcome
        tokens = plan.output_tokens
        stream = call.stream
        if outcome is Outcome.STREAM_STALL:
            if plan.stall_s > send.idle_s:
                at = min(end + send.idle_s, send.deadline)
                return AttemptFinished(
                    at,
                    attempt_id,
                    outcome,
                    200,
                    call.input_tokens,
                    tokens,
                    tokens if stream and tokens > self.hold else 0,
                    None,
                    _EMPTY,
                    "",
                    first,
                )
            rest = max(0, call.output_tokens - tokens)
            end += plan.stall_s + rest * plan.per_token_s
            outcome, tokens = Outcome.OK, call.output_tokens
        if end > send.deadline:
            produced = min(tokens, 1 + int((send.deadline - first) / max(plan.per_token_s, 1e-9)))
            return AttemptFinished(
                send.deadline,
                attempt_id,
                Outcome.TIMEOUT,
                None,
                call.input_tokens,
                produced,
                produced if stream and produced > self.hold else 0,
                None,
                _EMPTY,
                "",
                first,
            )
        delivered = tokens if stream and outcome is not Outcome.OK and tokens > self.hold else 0
        return _new_finished(
            (
                end,
                attempt_id,
                outcome,
                plan.http_status,
                call.input_tokens,
                tokens,
                delivered,
                None,
                _EMPTY,
                "",
                first,
            )
        )

    def settle(self, due: Due) -> None:
        """The common end of an attempt: its slot is freed and its result reported at once."""
        provider, verdict = due.arg
        now = self.env.now
        provider.busy -= 1  # `release`, inline
        provider.busy_s += now
        if provider.queue:
            self.dequeue(provider, now)
        self.report(verdict)

    def report_due(self, due: Due) -> None:
        self.report(due.arg)

    def report(self, verdict: AttemptFinished) -> None:
        if self.pending.pop(verdict.attempt_id, None) is None:
            return
        now = self.env.now
        if verdict.at != now:
            # The event fired at now + (at - now), which rounding may have moved by an ulp;
            # the router is told the clock's time, as a gateway would be.
            verdict = verdict._replace(at=now)
        carry_out = self.carry_out  # `feed`, inline: this runs once per attempt
        for decision in self.handle(verdict):
            carry_out[type(decision)](decision)

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
                    self.at(env.now + step, on_tick)

            on_tick: list[Callback] = [tick]
            self.at(0.0, on_tick)
        env.run()
        if self.engine.live_requests or self.pending:
            raise RuntimeError(
                f"simulation ended with {self.engine.live_requests} live requests and "
                f"{len(self.pending)} unreported attempts: a driver bug"
            )


_DTYPES = {"d": np.float64, "q": np.int64, "b": np.bool_}


def _frame(table: AttemptColumns | RequestColumns) -> pd.DataFrame:
    """The table as the frame `DataFrame.from_records` makes of its rows, dtypes included.

    Numeric columns are copied out of their arrays whole. A nullable column (`MISSING`
    for None) is int64 when nothing is missing, object (all None) when everything is,
    float64 with NaN otherwise — what pandas infers from ints or floats mixed with None.
    """
    columns = table.columns()
    if not len(table):
        return pd.DataFrame.from_records([], columns=list(columns))
    data: dict[str, Any] = {}
    for name, values in columns.items():
        if not isinstance(values, array):
            data[name] = values
            continue
        column: np.ndarray[Any, Any] = np.array(values, dtype=_DTYPES[values.typecode])
        if name in table.NULLABLE:
            missing = np.isnan(column)
            if missing.all():
                column = np.full(len(column), None, dtype=object)
            elif name in table.NULLABLE_INTS and not missing.any():
                column = column.astype(np.int64)
        data[name] = column
    return pd.DataFrame(data, copy=False)


def simulate(
    loaded: LoadedScenario,
    *,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Run one scenario with its policy and seed; the same inputs give the same trace."""
    started = time.perf_counter()
    simulation = _Simulation(loaded, seed)
    # The trace's text columns (lists of millions of entries) make every full cyclic-GC
    # pass slower as the run grows; the run creates no reference cycles worth collecting,
    # so the collector waits until the columns have gone into frames and been dropped.
    collecting = gc.isenabled()
    gc.disable()
    try:
        simulation.run(progress)
        trace = simulation.trace
        result = SimulationResult(
            attempts=_frame(trace.attempt_columns),
            requests=_frame(trace.request_columns),
            reasons={reason.value: n for reason, n in sorted(simulation.engine.reasons.items())},
            duration=loaded.scenario.duration,
            wall_s=time.perf_counter() - started,
            providers={
                name: provider.stats(loaded.scenario.duration)
                for name, provider in simulation.providers.items()
            },
        )
        # The frames hold copies of the columns now. The engine and the simulation keep
        # themselves alive in reference cycles (bound methods in their dispatch tables), so
        # without this the columns (about 1 GB for a day at 50 req/s) would wait for a full
        # collection, in whatever runs next.
        trace.clear()
    finally:
        if collecting:
            gc.enable()
    return result
