"""Facts a driver tells the engine, each in the past tense and carrying `at`.

`at` is seconds on the driver's clock (`loop.time()` for the gateway, `env.now`
for the simulator); the engine never reads a clock of its own and refuses to see
time go backwards.

Events are named tuples, not frozen dataclasses: the simulator builds two per
request, and a frozen dataclass pays an `object.__setattr__` per field (about
1 µs for an `AttemptFinished`) where a tuple is built in one step. They are just
as immutable; build them by keyword anywhere but on a hot path, where positional
construction (field order as declared) is several times cheaper still.
"""

from __future__ import annotations

from typing import NamedTuple

from router.core.outcomes import Outcome

__all__ = [
    "UNRESUMABLE",
    "AttemptFinished",
    "Event",
    "FirstTokenReceived",
    "RequestArrived",
    "RequestCancelled",
    "TimerFired",
]

UNRESUMABLE = "unresumable"
"""Signal: what already reached the client cannot be carried on by another provider (a
tool call was under way), so a break after it ends the request in-band even where the
policy would continue the answer on a fallback."""


class RequestArrived(NamedTuple):
    """A client call reached the router.

    `needs` are capabilities (tools, streaming, json, vision); `requires` are
    compliance labels the request itself demands on top of its tenant's;
    `client_attempt` > 0 marks a client-side retry of an earlier call (the
    agentic layer), which the trace records as `origin=client`.
    """

    at: float
    request_id: str
    route: str
    input_tokens: int
    tenant: str = ""
    max_output_tokens: int = 0
    task: str | None = None
    needs: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()
    stream: bool = False
    timeout_s: float | None = None
    client_attempt: int = 0


class FirstTokenReceived(NamedTuple):
    """An attempt's first token arrived (feeds slow-call and latency statistics)."""

    at: float
    attempt_id: int


class AttemptFinished(NamedTuple):
    """An attempt ended, one way or another.

    `input_tokens`/`output_tokens` are what the provider bills (an interrupted
    stream is billed); `delivered_tokens` counts output tokens already passed on
    to the client, so the engine knows whether a transparent failover is still
    possible. `retry_after_s` is the provider's Retry-After in any vendor form,
    already parsed. `signals` carries answer-quality hints for cascades
    (`refusal`, `truncated`, `low_confidence`, ...) and `UNRESUMABLE`. `first_token_at` lets a
    driver that did not send `FirstTokenReceived` (the simulator, to save an
    event per attempt) say when the first token came.
    """

    at: float
    attempt_id: int
    outcome: Outcome
    http_status: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    delivered_tokens: int = 0
    retry_after_s: float | None = None
    signals: frozenset[str] = frozenset()
    detail: str = ""
    first_token_at: float | None = None


class TimerFired(NamedTuple):
    """A `Wait` the engine asked for has elapsed."""

    at: float
    request_id: str


class RequestCancelled(NamedTuple):
    """The client gave up (disconnected, or its own timeout fired)."""

    at: float
    request_id: str


Event = RequestArrived | FirstTokenReceived | AttemptFinished | TimerFired | RequestCancelled
