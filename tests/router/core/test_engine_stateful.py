"""The engine as a whole, driven by Hypothesis through arbitrary interleavings.

Whatever providers answer and in whatever order, three promises hold: every
request ends in exactly one terminal decision; no attempt ever goes where the
tenant's data may not; no attempt starts at or after its request's deadline.
The spend ledger also always equals the sum of billed attempts, and a hard cap
is never exceeded.
"""

from __future__ import annotations

import math
import random

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from router.core import (
    AttemptFinished,
    CancelAttempt,
    CompleteRequest,
    Engine,
    FailRequest,
    FirstTokenReceived,
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
from tests.router.core.harness import make_policy

HARD_CAP_USD = 0.05
POLICY = make_policy(
    routes=[
        {
            "name": "default",
            "strategy": "ordered",
            "targets": ["a@one", "b@two", "c@three", "d@four"],
        },
        {
            "name": "cheap",
            "strategy": "cheapest",
            "targets": ["a@one", "c@three"],
            "fallbacks": ["d@four"],
        },
    ],
    tenants={
        "bank": {"residency": ["eu"], "spend": {"hard_usd": HARD_CAP_USD}},
        "anyone": {},
    },
    resilience={
        "timeouts": {"total_s": 20.0, "first_token_s": 5.0},
        "breaker": {"consecutive_failures": 3, "open_s": 5.0, "half_open_probes": 2},
        "streaming": {"after_first_byte": "continue"},
        "retries": {"backoff": {"kind": "decorrelated", "base_s": 0.2, "cap_s": 3.0}},
    },
)
EU = {c.id for c in Engine(POLICY, rng=random.Random(0)).candidates if c.residency == "eu"}


class EngineMachine(RuleBasedStateMachine):
    """Drives one engine; keeps just enough bookkeeping to check its promises."""

    def __init__(self) -> None:
        super().__init__()
        self.trace = TraceRecorder()
        self.engine = Engine(POLICY, rng=random.Random(7), trace=self.trace)
        self.now = 0.0
        self.count = 0
        self.tenant_of: dict[str, str] = {}
        self.limits: dict[str, tuple[int, int]] = {}
        self.ended: dict[str, Decision] = {}
        self.pending: dict[int, SendAttempt] = {}
        self.timers: dict[str, float] = {}
        self.billed_usd = 0.0

    def feed(self, event: object) -> None:
        for decision in self.engine.handle(event):  # type: ignore[arg-type]
            self.check(decision)

    def check(self, decision: Decision) -> None:
        if isinstance(decision, SendAttempt):
            assert self.now < decision.deadline, "attempt sent at or after the deadline"
            if self.tenant_of[decision.request_id] == "bank":
                assert decision.deployment in EU, f"bank data sent to {decision.deployment}"
            assert decision.request_id not in self.ended
            self.pending[decision.attempt_id] = decision
        elif isinstance(decision, Wait):
            assert decision.until >= self.now
            self.timers[decision.request_id] = decision.until
        elif isinstance(decision, CompleteRequest | FailRequest | RejectRequest):
            assert decision.request_id not in self.ended, "second terminal decision"
            self.ended[decision.request_id] = decision
        else:
            assert isinstance(decision, CancelAttempt)
            assert decision.attempt_id in self.pending

    @rule(
        tenant=st.sampled_from(["bank", "anyone"]),
        route=st.sampled_from(["default", "cheap"]),
        input_tokens=st.integers(1, 9000),
        max_output=st.integers(1, 2000),
        dt=st.floats(0, 3),
    )
    def arrive(
        self, tenant: str, route: str, input_tokens: int, max_output: int, dt: float
    ) -> None:
        self.now += dt
        self.count += 1
        request_id = f"r{self.count}"
        self.tenant_of[request_id] = tenant
        self.limits[request_id] = (input_tokens, max_output)
        self.feed(
            RequestArrived(
                at=self.now,
                request_id=request_id,
                route=route,
                tenant=tenant,
                input_tokens=input_tokens,
                max_output_tokens=max_output,
                stream=True,
            )
        )

    @precondition(lambda self: self.pending)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(list(Outcome)),
        retry_after=st.none() | st.floats(0, 40),
        delivered=st.sampled_from([0, 0, 3]),
        dt=st.floats(0, 6),
    )
    def finish(
        self,
        data: st.DataObject,
        outcome: Outcome,
        retry_after: float | None,
        delivered: int,
        dt: float,
    ) -> None:
        attempt_id = data.draw(st.sampled_from(sorted(self.pending)))
        send = self.pending.pop(attempt_id)
        self.now += dt
        input_limit, output_limit = self.limits[send.request_id]
        billed = outcome is Outcome.OK or delivered > 0
        input_tokens = input_limit if billed else 0
        output_tokens = data.draw(st.integers(0, output_limit)) if billed else 0
        self.billed_usd += self._price(send.deployment, input_tokens, output_tokens)
        self.feed(
            AttemptFinished(
                at=self.now,
                attempt_id=attempt_id,
                outcome=outcome,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                delivered_tokens=delivered if outcome is not Outcome.OK else 0,
                retry_after_s=retry_after,
            )
        )

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def first_token(self, data: st.DataObject) -> None:
        attempt_id = data.draw(st.sampled_from(sorted(self.pending)))
        self.feed(FirstTokenReceived(at=self.now, attempt_id=attempt_id))

    @precondition(lambda self: self.timers)
    @rule(data=st.data())
    def fire(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(sorted(self.timers)))
        self.now = max(self.now, self.timers.pop(request_id))
        self.feed(TimerFired(at=self.now, request_id=request_id))

    @precondition(lambda self: len(self.ended) < self.count)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        live = sorted(set(self.tenant_of) - set(self.ended))
        request_id = data.draw(st.sampled_from(live))
        self.timers.pop(request_id, None)
        self.feed(RequestCancelled(at=self.now, request_id=request_id))

    def _price(self, deployment: str, input_tokens: int, output_tokens: int) -> float:
        spec = POLICY.deployment(deployment).price
        return (input_tokens * spec.input_per_mtok + output_tokens * spec.output_per_mtok) / 1e6

    @invariant()
    def every_live_request_is_accounted_for(self) -> None:
        assert self.engine.live_requests == self.count - len(self.ended)
        assert self.engine.attempts_in_flight == len(self.pending)

    @invariant()
    def the_ledger_is_the_sum_of_billed_attempts(self) -> None:
        ledger = self.engine.ledger
        assert math.isclose(ledger.total_usd, self.billed_usd, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(
            ledger.total_usd, sum(row.cost_usd for row in self.trace.attempts), abs_tol=1e-12
        )
        assert ledger.by_tenant.get("bank", 0.0) <= HARD_CAP_USD + 1e-12

    @invariant()
    def nothing_is_ever_non_compliant(self) -> None:
        assert all(row.compliant for row in self.trace.requests)

    def teardown(self) -> None:
        """Answer everything still open; every request must then have ended exactly once."""
        for _ in range(10_000):
            if self.pending:
                attempt_id = min(self.pending)
                send = self.pending.pop(attempt_id)
                self.now += 0.1
                self.feed(AttemptFinished(at=self.now, attempt_id=attempt_id, outcome=Outcome.OK))
                del send
            elif self.timers:
                request_id = min(self.timers, key=self.timers.__getitem__)
                self.now = max(self.now, self.timers.pop(request_id))
                self.feed(TimerFired(at=self.now, request_id=request_id))
            else:
                break
        assert set(self.ended) == set(self.tenant_of)
        assert self.engine.live_requests == 0
        assert len(self.trace.requests) == self.count


TestEngineMachine = EngineMachine.TestCase
