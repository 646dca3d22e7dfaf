"""A tiny virtual-time driver that pumps engine decisions into scripted providers.

Like h11's `ConnectionPair`: the engine is real, the providers are a script.
`Harness.run` feeds events in time order and records every decision, so a test
reads as "given these provider replies, this is what the router did".
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.core import (
    AttemptFinished,
    CancelAttempt,
    CompleteRequest,
    Engine,
    FailRequest,
    FirstTokenReceived,
    Outcome,
    Policy,
    RejectRequest,
    RequestArrived,
    SendAttempt,
    TimerFired,
    TraceRecorder,
    Wait,
    policy_from_data,
)
from router.core.decisions import Decision
from router.core.events import Event


@dataclass(frozen=True)
class Reply:
    """How a scripted provider answers one attempt."""

    outcome: Outcome = Outcome.OK
    latency_s: float = 0.5
    ttft_s: float | None = 0.2
    http_status: int | None = None
    retry_after_s: float | None = None
    delivered_tokens: int = 0
    input_tokens: int = 100
    output_tokens: int = 50
    signals: frozenset[str] = frozenset()
    silent: bool = False


OK = Reply()
Script = Callable[[SendAttempt], Reply]


def always(reply: Reply) -> Script:
    return lambda send: reply


def by_deployment(replies: dict[str, Reply | list[Reply]], default: Reply = OK) -> Script:
    """Per-deployment replies; a list is consumed one reply per attempt, the last repeating."""
    counters: dict[str, int] = {}

    def script(send: SendAttempt) -> Reply:
        choice = replies.get(send.deployment, default)
        if isinstance(choice, Reply):
            return choice
        n = counters.get(send.deployment, 0)
        counters[send.deployment] = n + 1
        return choice[min(n, len(choice) - 1)]

    return script


BASE_POLICY: dict[str, Any] = {
    "name": "test",
    "deployments": [
        {
            "id": "a@one",
            "protocol": "openai",
            "base_url": "http://a",
            "model": "a",
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
            "context_window": 8000,
            "capabilities": ["streaming"],
            "region": "us-east",
            "residency": "us",
            "domains": ["vendor:one", "edge:shared"],
        },
        {
            "id": "b@two",
            "protocol": "anthropic",
            "base_url": "http://b",
            "model": "b",
            "price": {"input_per_mtok": 3.0, "output_per_mtok": 6.0},
            "context_window": 8000,
            "capabilities": ["streaming", "tools"],
            "region": "us-west",
            "residency": "us",
            "domains": ["vendor:two", "edge:shared"],
        },
        {
            "id": "c@three",
            "protocol": "bedrock",
            "base_url": "http://c",
            "model": "c",
            "price": {"input_per_mtok": 2.0, "output_per_mtok": 4.0},
            "context_window": 32000,
            "capabilities": ["streaming", "tools"],
            "region": "eu-central-1",
            "residency": "eu",
            "domains": ["vendor:three", "cloud:x"],
        },
        {
            "id": "d@four",
            "protocol": "gemini",
            "base_url": "http://d",
            "model": "d",
            "price": {"input_per_mtok": 5.0, "output_per_mtok": 10.0},
            "context_window": 128000,
            "capabilities": ["streaming", "tools"],
            "region": "europe-west4",
            "residency": "eu",
            "domains": ["vendor:four", "cloud:y"],
        },
    ],
    "routes": [
        {
            "name": "default",
            "strategy": "ordered",
            "targets": ["a@one", "b@two", "c@three", "d@four"],
        },
        {"name": "cheap", "strategy": "ordered", "targets": ["a@one"]},
    ],
    "resilience": {"retries": {"backoff": {"kind": "full", "base_s": 0.1, "cap_s": 1.0}}},
}


def make_policy(**overrides: Any) -> Policy:
    """BASE_POLICY with top-level keys replaced and `resilience` sections merged."""
    data = {**BASE_POLICY}
    resilience = {**BASE_POLICY["resilience"], **overrides.pop("resilience", {})}
    data.update(overrides)
    data["resilience"] = resilience
    return policy_from_data(data, source="test", env={})


@dataclass
class Outcomes:
    """What happened to every request in a harness run."""

    terminal: dict[str, Decision] = field(default_factory=dict)
    sends: list[tuple[float, SendAttempt]] = field(default_factory=list)
    waits: list[tuple[float, Wait]] = field(default_factory=list)
    log: list[tuple[float, Decision]] = field(default_factory=list)

    def of(self, request_id: str) -> Decision:
        return self.terminal[request_id]

    def deployments(self, request_id: str) -> list[str]:
        return [s.deployment for _, s in self.sends if s.request_id == request_id]


class Harness:
    """Runs an engine against a script in virtual time."""

    def __init__(self, policy: Policy, script: Script, *, seed: int = 1) -> None:
        self.trace = TraceRecorder()
        self.engine = Engine(policy, rng=random.Random(seed), trace=self.trace)
        self.script = script
        self.now = 0.0
        self.result = Outcomes()
        self._queue: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()

    def push(self, event: Event) -> None:
        heapq.heappush(self._queue, (event.at, next(self._seq), event))

    def request(self, at: float, request_id: str, **fields: Any) -> None:
        fields.setdefault("route", "default")
        fields.setdefault("input_tokens", 100)
        fields.setdefault("max_output_tokens", 50)
        self.push(RequestArrived(at=at, request_id=request_id, **fields))

    def run(self, until: float = float("inf")) -> Outcomes:
        while self._queue and self._queue[0][0] <= until:
            at, _, event = heapq.heappop(self._queue)
            self.now = at
            for decision in self.engine.handle(event):
                self._carry_out(at, decision)
        return self.result

    def _carry_out(self, at: float, decision: Decision) -> None:
        self.result.log.append((at, decision))
        if isinstance(decision, SendAttempt):
            self.result.sends.append((at, decision))
            reply = self.script(decision)
            if reply.silent:
                self.push(
                    AttemptFinished(
                        at=decision.first_token_by,
                        attempt_id=decision.attempt_id,
                        outcome=Outcome.TIMEOUT,
                    )
                )
                return
            if reply.ttft_s is not None and reply.outcome is Outcome.OK:
                self.push(FirstTokenReceived(at=at + reply.ttft_s, attempt_id=decision.attempt_id))
            billed = reply.outcome is Outcome.OK or reply.delivered_tokens > 0
            self.push(
                AttemptFinished(
                    at=at + reply.latency_s,
                    attempt_id=decision.attempt_id,
                    outcome=reply.outcome,
                    http_status=reply.http_status,
                    input_tokens=reply.input_tokens if billed else 0,
                    output_tokens=reply.output_tokens if billed else 0,
                    delivered_tokens=reply.delivered_tokens,
                    retry_after_s=reply.retry_after_s,
                    signals=reply.signals,
                )
            )
        elif isinstance(decision, Wait):
            self.result.waits.append((at, decision))
            self.push(TimerFired(at=decision.until, request_id=decision.request_id))
        elif isinstance(decision, CompleteRequest | FailRequest | RejectRequest):
            assert decision.request_id not in self.result.terminal, "two terminal decisions"
            self.result.terminal[decision.request_id] = decision
        elif isinstance(decision, CancelAttempt):
            pass
