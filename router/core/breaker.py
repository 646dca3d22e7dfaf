"""Per-deployment circuit breaker: stop paying for failed attempts during an outage.

Rule 1 (after h11's `_state.py`): everything that changes a breaker's state lives
in this file, and every move is a row of `TRANSITIONS`. A move the table does not
list raises `IllegalTransition` naming state and signal.

    CLOSED ──TRIP──▶ OPEN ──COOLDOWN_ELAPSED──▶ HALF_OPEN ──PROBES_PASSED──▶ CLOSED
                      ▲                             │
                      └────────PROBE_FAILED─────────┘          (FORCE_OPEN from any state)

CLOSED trips when, after `min_calls` recorded calls, the failure rate or the slow
rate (time to first token above `slow_call_s`) reaches its threshold over the
window (the last `window_size` calls, or the last `window_size` seconds), or when
`consecutive_failures` fail in a row (Envoy's consecutive-5xx rule, which reacts
within seconds at any traffic level). OPEN lasts `open_s`, multiplied by
`open_backoff` for each re-opening without a full recovery, capped at
`max_open_s`. HALF_OPEN admits at most `half_open_probes` probes; that many
successes close it, one failure re-opens it. `force_open` is for verdicts that
need no statistics, such as a withdrawn model.
"""

from __future__ import annotations

from enum import StrEnum

from router.core.errors import IllegalTransition
from router.core.policy import BreakerSettings
from router.core.window import SlicedWindow

__all__ = [
    "TRANSITIONS",
    "Admission",
    "BreakerSignal",
    "BreakerState",
    "CircuitBreaker",
    "mermaid_diagram",
]


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerSignal(StrEnum):
    """What can move a breaker."""

    TRIP = "trip"
    COOLDOWN_ELAPSED = "cooldown_elapsed"
    PROBES_PASSED = "probes_passed"
    PROBE_FAILED = "probe_failed"
    FORCE_OPEN = "force_open"


class Admission(StrEnum):
    """A breaker's answer to "may I send an attempt now?"."""

    ALLOW = "allow"
    PROBE = "probe"
    REJECT_OPEN = "reject_open"
    REJECT_PROBES_BUSY = "reject_probes_busy"


_S, _G = BreakerState, BreakerSignal
TRANSITIONS: dict[BreakerState, dict[BreakerSignal, BreakerState]] = {
    _S.CLOSED: {_G.TRIP: _S.OPEN, _G.FORCE_OPEN: _S.OPEN},
    _S.OPEN: {_G.COOLDOWN_ELAPSED: _S.HALF_OPEN, _G.FORCE_OPEN: _S.OPEN},
    _S.HALF_OPEN: {_G.PROBES_PASSED: _S.CLOSED, _G.PROBE_FAILED: _S.OPEN, _G.FORCE_OPEN: _S.OPEN},
}


def mermaid_diagram() -> str:
    """The transition table as a Mermaid state diagram, so the docs cannot drift from it."""
    lines = ["stateDiagram-v2", "    [*] --> closed"]
    for state, moves in TRANSITIONS.items():
        for signal, target in moves.items():
            lines.append(f"    {state.value} --> {target.value}: {signal.value}")
    return "\n".join(lines)


class _CountWindow:
    """The last `size` calls in a ring; failures and slow calls kept as running sums."""

    __slots__ = ("_failed", "_next", "_slow", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self._failed = [False] * size
        self._slow = [False] * size
        self._next = 0
        self.size = size
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def add(self, now: float, failure: bool, slow: bool) -> None:
        i = self._next
        if self.calls == self.size:
            self.failures -= self._failed[i]
            self.slow -= self._slow[i]
        else:
            self.calls += 1
        self._failed[i] = failure
        self._slow[i] = slow
        self.failures += failure
        self.slow += slow
        self._next = (i + 1) % self.size

    def counts(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failures, self.slow


class _TimeWindow:
    __slots__ = ("_window",)

    def __init__(self, span_s: float) -> None:
        self._window = SlicedWindow(span_s, slices=max(1, int(span_s)), width=3)

    def add(self, now: float, failure: bool, slow: bool) -> None:
        self._window.add(now, 0, 1.0)
        if failure:
            self._window.add(now, 1, 1.0)
        if slow:
            self._window.add(now, 2, 1.0)

    def counts(self, now: float) -> tuple[int, int, int]:
        calls, failures, slow = self._window.totals(now)
        return round(calls), round(failures), round(slow)


class CircuitBreaker:
    """One deployment's breaker; time comes in as `now`, never from a clock."""

    __slots__ = (
        "_calls",
        "_settings",
        "consecutive",
        "epoch",
        "open_count",
        "open_until",
        "probe_successes",
        "probes_in_flight",
        "state",
        "transitions",
    )

    def __init__(self, settings: BreakerSettings) -> None:
        self._settings = settings
        self.state = BreakerState.CLOSED
        self.open_until = 0.0
        self.open_count = 0
        self.consecutive = 0
        self.epoch = 0
        self.probes_in_flight = 0
        self.probe_successes = 0
        self.transitions: list[tuple[float, BreakerState, BreakerState]] = []
        self._calls = self._new_window()

    def _new_window(self) -> _CountWindow | _TimeWindow:
        if self._settings.window == "count":
            return _CountWindow(self._settings.window_size)
        return _TimeWindow(float(self._settings.window_size))

    def _move(self, now: float, signal: BreakerSignal) -> None:
        target = TRANSITIONS[self.state].get(signal)
        if target is None:
            raise IllegalTransition("breaker", self.state.value, signal.value)
        self.transitions.append((now, self.state, target))
        self.state = target
        if target is BreakerState.CLOSED:
            self.open_count = 0
            self.consecutive = 0
            self._calls = self._new_window()
        elif target is BreakerState.HALF_OPEN:
            self.epoch += 1
            self.probes_in_flight = 0
            self.probe_successes = 0

    def _open(self, now: float, signal: BreakerSignal, duration_s: float | None = None) -> None:
        if duration_s is None:
            s = self._settings
            duration_s = min(s.max_open_s, s.open_s * s.open_backoff**self.open_count)
            if duration_s < s.max_open_s:  # past the cap, counting on would overflow the power
                self.open_count += 1
        self._move(now, signal)
        self.open_until = max(self.open_until, now + duration_s)

    def admit(self, now: float) -> Admission:
        """May an attempt go to this deployment now?

        On `PROBE`, the caller keeps `epoch` and hands it back to `record`, so a late
        result from an earlier half-open period cannot count against this one.
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return Admission.ALLOW
        if state is BreakerState.OPEN:
            if now < self.open_until:
                return Admission.REJECT_OPEN
            self._move(now, BreakerSignal.COOLDOWN_ELAPSED)
        if self.probes_in_flight + self.probe_successes >= self._settings.half_open_probes:
            return Admission.REJECT_PROBES_BUSY
        self.probes_in_flight += 1
        return Admission.PROBE

    def record(self, now: float, failure: bool, slow: bool, probe_epoch: int | None) -> None:
        """The result of an attempt this breaker admitted (`probe_epoch` for a probe)."""
        if probe_epoch is not None:
            if self.state is not BreakerState.HALF_OPEN or probe_epoch != self.epoch:
                return
            self.probes_in_flight -= 1
            if failure:
                self._open(now, BreakerSignal.PROBE_FAILED)
            else:
                self.probe_successes += 1
                if self.probe_successes >= self._settings.half_open_probes:
                    self._move(now, BreakerSignal.PROBES_PASSED)
            return
        if self.state is not BreakerState.CLOSED:
            return
        self.consecutive = self.consecutive + 1 if failure else 0
        calls = self._calls
        calls.add(now, failure, slow)
        if not failure and isinstance(calls, _CountWindow) and not calls.failures | calls.slow:
            return
        s = self._settings
        if self.consecutive >= s.consecutive_failures:
            self._open(now, BreakerSignal.TRIP)
            return
        seen, failures, slow_calls = calls.counts(now)
        if seen >= s.min_calls and (
            failures >= s.failure_rate * seen or slow_calls >= s.slow_call_rate * seen
        ):
            self._open(now, BreakerSignal.TRIP)

    def release_probe(self, probe_epoch: int) -> None:
        """A probe was abandoned without a result (its request was cancelled)."""
        if self.state is BreakerState.HALF_OPEN and probe_epoch == self.epoch:
            self.probes_in_flight -= 1

    def force_open(self, now: float, duration_s: float) -> None:
        """Open for a fixed time without statistics (e.g. the model was withdrawn)."""
        self._open(now, BreakerSignal.FORCE_OPEN, duration_s)
