"""The real-time driver: router.core's `Engine` carried out with asyncio and real HTTP.

Theory of operation
-------------------
This is the simulator's twin (`simulator/driver.py`) on a real clock: it feeds the
engine the same events with `at = time.monotonic() - t0` and carries out the same
decisions. No routing rule lives here — which deployment, whether to retry, how long
to wait, when to give up are all the engine's answers.

- `RequestArrived` → decisions, carried out at once:
- `SendAttempt` → an asyncio task runs the upstream call (`router.server.attempt`)
  under the decision's deadlines and reports `AttemptFinished`, with the outcome,
  Retry-After, tokens billed and delivered, and when the first token came (in the
  event, as the simulator does, rather than as a `FirstTokenReceived` of its own: the
  engine only notes the time, so one event per attempt is saved).
  With `resilience.streaming.plain_clients: whole` a non-streaming client's attempts
  are read as whole answers, and the response headers are the first token.
- `Wait` → `loop.call_at` → `TimerFired`.
  A `SendAttempt` with `resume_after_tokens` carries on an answer that broke after
  reaching the client (`after_first_byte: continue`): the fallback is asked to continue
  from the text the client has (`Adapter.continued`), and its pieces follow on the same
  response. An answer that broke inside a tool call reports `UNRESUMABLE`, so the
  engine ends it in-band instead.
- `CancelAttempt` → the task is cancelled; it still reports `AttemptFinished` (billed).
- `CompleteRequest` / `FailRequest` / `RejectRequest` → the client's future resolves
  and the HTTP handler answers (`router.server.app`).

The engine is never called re-entrantly: decisions only schedule work (tasks, timers,
futures), and every event is fed from its own loop callback or task step.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from random import Random

from router.core.decisions import (
    CancelAttempt,
    CompleteRequest,
    Decision,
    FailRequest,
    RejectRequest,
    SendAttempt,
    Wait,
)
from router.core.engine import ANONYMOUS, Engine
from router.core.events import (
    UNRESUMABLE,
    AttemptFinished,
    Event,
    RequestArrived,
    RequestCancelled,
    TimerFired,
)
from router.core.outcomes import Outcome
from router.core.policy import Deployment, Policy
from router.core.trace import TraceRecorder
from router.server.adapters import Adapter, adapter_for
from router.server.adapters.base import UpstreamError, Usage
from router.server.attempt import AttemptResult, run_attempt
from router.server.client_context import ClientContext
from router.server.errors import ClientError, for_client
from router.server.ingress import ChatRequest
from router.server.pools import Pools
from router.server.stream import ClientStream

__all__ = ["Call", "Driver", "Terminal"]

Terminal = CompleteRequest | FailRequest | RejectRequest

_FINAL = {CompleteRequest: "ok", FailRequest: "error", RejectRequest: "rejected"}
"""The `final` label of the request counter, by terminal decision."""

_NO_SIGNALS: frozenset[str] = frozenset()
_UNRESUMABLE = frozenset({UNRESUMABLE})


@dataclass(eq=False, slots=True)
class Call:
    """One client request in flight: what it asked, and what its attempts produced."""

    id: str
    chat: ChatRequest
    tenant: str
    created: int
    done: asyncio.Future[Terminal]
    sink: ClientStream | None = None
    results: dict[int, AttemptResult] = field(default_factory=dict)
    deployments: dict[int, str] = field(default_factory=dict)
    first_error: tuple[str, UpstreamError] | None = None
    failed: bool = False
    task: str | None = None
    client_attempt: int = 0

    @property
    def completion_id(self) -> str:
        """The `chatcmpl-` id the client sees, stable across failovers."""
        return f"chatcmpl-{self.id}"

    def answer_usage(self, attempt_id: int) -> Usage:
        """What the client's streamed answer was billed: the serving attempt's usage, plus
        that of every earlier attempt whose tokens reached the client (an answer carried
        on by a fallback is paid for on both deployments)."""
        usage = self.results[attempt_id].usage
        if len(self.results) == 1:
            return usage
        input_tokens, output_tokens = usage
        for other, result in self.results.items():
            if other != attempt_id and result.delivered:
                input_tokens += result.usage.input_tokens
                output_tokens += result.usage.output_tokens
        return Usage(input_tokens, output_tokens)


class Driver:
    """Feeds one `Engine` from real time and real HTTP; one per gateway process.

    Counters (`attempt_counts`, `request_counts`, `spend_usd`) are plain dicts bumped
    once per attempt or request; `router.server.metrics` reads them at scrape time.
    `carries_on` says whether the policy continues a stream broken after its first byte
    on a fallback (so client streams must keep their text); `hold_tokens`, how many
    tokens a client stream holds back before its first byte.
    """

    def __init__(
        self,
        policy: Policy,
        pools: Pools,
        *,
        rng: Random | None = None,
        trace: TraceRecorder | None = None,
    ) -> None:
        self.policy = policy
        self.engine = Engine(policy, rng=rng or Random(), trace=trace)
        self.trace = trace
        self.attempt_counts: Counter[tuple[str, str]] = Counter()
        self.request_counts: Counter[tuple[str, str]] = Counter()
        self.spend_usd: dict[str, float] = {}
        self._pools = pools
        self._deployments: dict[str, Deployment] = {d.id: d for d in policy.deployments}
        self._candidates = {c.id: c for c in self.engine.candidates}
        self._adapters: dict[str, Adapter] = {
            d.id: adapter_for(d.protocol) for d in policy.deployments
        }
        self._whole = policy.resilience.streaming.plain_clients == "whole"
        self.carries_on = policy.resilience.streaming.after_first_byte == "continue"
        self.hold_tokens = policy.resilience.streaming.hold_tokens
        self._calls: dict[str, Call] = {}
        # Ids the gateway makes up: a random prefix per driver (unique across restarts and
        # reloads, as audit logs need) and a counter (no system call per request).
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = itertools.count()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._offset = 0.0
        self._floor = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- clock and lifecycle ------------------------------------------------------------

    def start(self, *, offset: float | None = None) -> None:
        """Bind to the running loop; engine time 0 is now, or at `offset` (loop time) when
        this driver takes over from another (a policy reload), so engine time runs on."""
        self._loop = asyncio.get_running_loop()
        self._offset = self._loop.time() if offset is None else offset

    @property
    def offset(self) -> float:
        """The loop time of engine time 0."""
        return self._offset

    def now(self) -> float:
        """Engine time: seconds since `start`, on the monotonic clock.

        `time.monotonic()` is the clock asyncio's loop keeps; uvloop's `loop.time()` reads
        the same clock in whole milliseconds, too coarse for a local time to first token,
        so the driver reads it directly and uses the loop's clock only to schedule.
        Never earlier than a timer already reported as fired (`_wait`), so engine time
        only moves forward.
        """
        assert self._loop is not None, "Driver.start() was not called"
        now = time.monotonic() - self._offset
        return now if now > self._floor else self._floor

    @property
    def in_flight(self) -> int:
        """Client requests not yet answered."""
        return len(self._calls)

    async def stop(self) -> None:
        """Cancel timers and attempts still running (after the server stopped accepting)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- requests -----------------------------------------------------------------------

    def open(
        self, chat: ChatRequest, *, tenant: str = "", context: ClientContext | None = None
    ) -> Call:
        """A new call for `chat` (not yet sent to the engine).

        The client's `x-request-id` becomes the call's id unless a call with that id is
        still in flight here (ids must be unique to the engine): then it is a 409.
        """
        assert self._loop is not None, "Driver.start() was not called"
        context = context or ClientContext()
        request_id = context.request_id or f"{self._id_prefix}{next(self._id_counter):012x}"
        if request_id in self._calls:
            raise ClientError(
                f"a request with id {request_id!r} is already in flight",
                status=409,
                param="x-request-id",
                code="duplicate_request_id",
            )
        call = Call(request_id, chat, tenant, int(time.time()), self._loop.create_future())
        call.task, call.client_attempt = context.task, context.client_attempt
        return call

    async def run(self, call: Call) -> Terminal:
        """Hand the call to the engine and wait for its terminal decision.

        If the handler is cancelled (the client went away), the engine hears
        `RequestCancelled`, so it stops paying for attempts nobody will read; the
        call's future is then cancelled too, and its terminal decision, when the
        engine gives one, finds it done and is dropped.
        """
        self._calls[call.id] = call
        chat = call.chat
        self._feed(
            RequestArrived(
                at=self.now(),
                request_id=call.id,
                route=chat.route,
                input_tokens=chat.input_tokens,
                tenant=call.tenant,
                max_output_tokens=chat.max_output_tokens,
                needs=chat.needs,
                stream=chat.stream,
                task=call.task,
                client_attempt=call.client_attempt,
            )
        )
        try:
            return await call.done
        except asyncio.CancelledError:
            self.cancel(call)
            raise

    def cancel(self, call: Call) -> None:
        """The client gave up on `call`."""
        if self._calls.get(call.id) is call:
            self._feed(RequestCancelled(at=self.now(), request_id=call.id))

    # -- events in, decisions out ---------------------------------------------------------

    def _feed(self, event: Event) -> None:
        for decision in self.engine.handle(event):
            self._carry_out(decision)

    def _carry_out(self, decision: Decision) -> None:
        if isinstance(decision, SendAttempt):
            call = self._calls[decision.request_id]
            call.deployments[decision.attempt_id] = decision.deployment
            self._tasks[decision.attempt_id] = asyncio.get_running_loop().create_task(
                self._attempt(decision, call), name=f"attempt-{decision.attempt_id}"
            )
        elif isinstance(decision, Wait):
            self._wait(decision)
        elif isinstance(decision, CancelAttempt):
            task = self._tasks.get(decision.attempt_id)
            if task is not None:
                task.cancel()
        else:
            call = self._calls.pop(decision.request_id)
            self.request_counts[(call.chat.route, _FINAL[type(decision)])] += 1
            if not call.done.done():
                call.done.set_result(decision)

    def _wait(self, wait: Wait) -> None:
        assert self._loop is not None

        def fire() -> None:
            # A loop may fire a timer a little before its time: uvloop's clock and timers
            # count whole milliseconds. The engine decides as of the time it asked for, or
            # it would find a Retry-After not yet over and give up on the deployment.
            self._timers.discard(handle)
            self._floor = max(self.now(), wait.until)
            self._feed(TimerFired(at=self._floor, request_id=wait.request_id))

        handle = self._loop.call_at(wait.until + self._offset, fire)
        self._timers.add(handle)

    async def _attempt(self, send: SendAttempt, call: Call) -> None:
        """Run one attempt and report it, whatever happens (cancellation included)."""
        deployment = self._deployments[send.deployment]
        adapter = self._adapters[deployment.id]
        chat, sink = call.chat, call.sink
        if send.resume_after_tokens and sink is not None:
            body = adapter.continued(chat.body, sink.carry_on(), send.resume_after_tokens)
            chat = chat._replace(body=body)
        first_token_at: float | None = None

        def first_token() -> None:
            nonlocal first_token_at
            first_token_at = self.now()

        try:
            result = await run_attempt(
                send,
                deployment=deployment,
                adapter=adapter,
                session=self._pools.session(deployment.id),
                chat=chat,
                offset=self._offset,
                sink=sink,
                on_first_token=first_token,
                completion_id=call.completion_id,
                created=call.created,
                whole=self._whole,
            )
        except asyncio.CancelledError:
            result = AttemptResult(Outcome.TIMEOUT, detail="cancelled")
        except Exception as problem:  # a bug in an adapter must not leave the engine waiting
            result = AttemptResult(Outcome.SERVER, detail=f"gateway error: {problem!r}")
        finally:
            self._tasks.pop(send.attempt_id, None)
        call.results[send.attempt_id] = result
        signals = _NO_SIGNALS
        if result.outcome is not Outcome.OK:
            if not call.failed:
                # The engine surfaces its *first* failure; its body must be this attempt's.
                call.failed = True
                if result.error is not None:
                    call.first_error = (deployment.id, for_client(result.error, deployment.id))
            if sink is not None and sink.delivered and not sink.resumable:
                signals = _UNRESUMABLE
        usage = result.usage
        self.attempt_counts[(deployment.id, result.outcome.value)] += 1
        cost = self._candidates[deployment.id].cost(usage.input_tokens, usage.output_tokens)
        tenant = call.tenant or ANONYMOUS
        self.spend_usd[tenant] = self.spend_usd.get(tenant, 0.0) + cost
        self._feed(
            AttemptFinished(
                at=self.now(),
                attempt_id=send.attempt_id,
                outcome=result.outcome,
                http_status=result.http_status,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                delivered_tokens=result.delivered,
                retry_after_s=result.retry_after_s,
                signals=signals,
                detail=result.detail,
                first_token_at=first_token_at,
            )
        )
