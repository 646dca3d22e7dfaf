"""Circuit breaker: the TRANSITIONS table, the trip rules, probes, and a stateful model check.

The breaker decides when the router stops paying for failed attempts and when it
goes back to the primary, so its table is tested row by row, and a
`RuleBasedStateMachine` drives admissions, results and forced openings through
time against a small reference model of the documented behaviour.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from router.core.breaker import (
    TRANSITIONS,
    Admission,
    BreakerSignal,
    BreakerState,
    CircuitBreaker,
    mermaid_diagram,
)
from router.core.errors import BlastRadiusError, IllegalTransition
from router.core.policy import BreakerSettings

S, G, A = BreakerState, BreakerSignal, Admission


def settings(**overrides: Any) -> BreakerSettings:
    base: dict[str, Any] = {
        "window_size": 10,
        "min_calls": 4,
        "failure_rate": 0.5,
        "consecutive_failures": 3,
        "slow_call_s": 5.0,
        "slow_call_rate": 1.0,
        "open_s": 10.0,
        "open_backoff": 2.0,
        "max_open_s": 60.0,
        "half_open_probes": 2,
    }
    base.update(overrides)
    return BreakerSettings(**base)


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read fresh (keeps type checkers from narrowing across calls)."""
    return breaker.state


def in_state(state: BreakerState, **overrides: Any) -> CircuitBreaker:
    """A breaker brought to `state` through its public API (open_s = 10)."""
    breaker = CircuitBreaker(settings(**overrides))
    if state is not S.CLOSED:
        breaker.force_open(0.0, 10.0)
    if state is S.HALF_OPEN:
        assert breaker.admit(10.0) is A.PROBE
    assert state_of(breaker) is state
    return breaker


# -- the table ----------------------------------------------------------------------

ROWS = [
    (state, signal, target) for state, row in TRANSITIONS.items() for signal, target in row.items()
]
ILLEGAL = [(state, signal) for state in S for signal in G if signal not in TRANSITIONS[state]]


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(
    ("state", "signal", "target"),
    [
        (S.CLOSED, G.TRIP, S.OPEN),
        (S.CLOSED, G.FORCE_OPEN, S.OPEN),
        (S.OPEN, G.COOLDOWN_ELAPSED, S.HALF_OPEN),
        (S.OPEN, G.FORCE_OPEN, S.OPEN),
        (S.HALF_OPEN, G.PROBES_PASSED, S.CLOSED),
        (S.HALF_OPEN, G.PROBE_FAILED, S.OPEN),
        (S.HALF_OPEN, G.FORCE_OPEN, S.OPEN),
    ],
)
def test_the_table_is_the_documented_diagram(
    state: BreakerState, signal: BreakerSignal, target: BreakerState
) -> None:
    assert TRANSITIONS[state][signal] is target
    assert len(ROWS) == 7


@pytest.mark.parametrize(("state", "signal", "target"), ROWS)
def test_every_row_moves_and_is_recorded(
    state: BreakerState, signal: BreakerSignal, target: BreakerState
) -> None:
    breaker = in_state(state)
    before = len(breaker.transitions)
    breaker._move(50.0, signal)
    assert state_of(breaker) is target
    assert breaker.transitions[before:] == [(50.0, state, target)]


@pytest.mark.parametrize(("state", "signal"), ILLEGAL)
def test_an_illegal_transition_raises_naming_state_and_signal(
    state: BreakerState, signal: BreakerSignal
) -> None:
    breaker = in_state(state)
    before = list(breaker.transitions)
    with pytest.raises(IllegalTransition) as error:
        breaker._move(50.0, signal)
    assert isinstance(error.value, BlastRadiusError)
    assert (error.value.state, error.value.signal) == (state.value, signal.value)
    assert repr(state.value) in str(error.value) and repr(signal.value) in str(error.value)
    assert state_of(breaker) is state and breaker.transitions == before


def test_the_diagram_is_generated_from_the_table() -> None:
    """The docs' diagram cannot drift: one edge per row, nothing else."""
    lines = mermaid_diagram().splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    [*] --> closed"]
    edges = {line.strip() for line in lines[2:]}
    assert edges == {f"{a.value} --> {b.value}: {g.value}" for a, g, b in ROWS}
    assert len(lines) == 2 + len(ROWS)


# -- tripping -----------------------------------------------------------------------


def test_consecutive_failures_trip_even_below_min_calls() -> None:
    breaker = CircuitBreaker(settings(consecutive_failures=3, min_calls=100))
    for t in (1.0, 2.0):
        breaker.record(t, failure=True, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.CLOSED
    breaker.record(3.0, failure=True, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.OPEN
    assert breaker.open_until == 13.0
    assert breaker.transitions == [(3.0, S.CLOSED, S.OPEN)]


def test_a_success_breaks_the_streak() -> None:
    breaker = CircuitBreaker(settings(consecutive_failures=3, min_calls=100))
    for failure in (True, True, False, True, True):
        breaker.record(1.0, failure=failure, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.CLOSED


@pytest.mark.parametrize(
    ("calls", "trips"),
    [
        ("FFSS", True),  # 2 of 4 = 50 %: the threshold is "≥", as in resilience4j
        ("FSFS", True),
        ("SSSF", False),  # 1 of 4
        ("SSFSSF", False),  # never 50 % once min_calls = 4 is reached
        ("SSFSFF", True),  # 3 of 6
        ("FSF", False),  # below min_calls, and no streak of 3
    ],
)
def test_failure_rate_trips_after_min_calls(calls: str, trips: bool) -> None:
    breaker = CircuitBreaker(settings(consecutive_failures=3, min_calls=4, failure_rate=0.5))
    for i, call in enumerate(calls):
        breaker.record(float(i), failure=call == "F", slow=False, probe_epoch=None)
    assert (state_of(breaker) is S.OPEN) is trips


def test_the_count_window_forgets_old_calls() -> None:
    breaker = CircuitBreaker(settings(window_size=4, min_calls=4, consecutive_failures=99))
    for call in "FSSSSSSF":  # the first F has left the 4-call window by the last F
        breaker.record(1.0, failure=call == "F", slow=False, probe_epoch=None)
    assert state_of(breaker) is S.CLOSED


def test_slow_calls_trip_at_the_slow_rate() -> None:
    breaker = CircuitBreaker(settings(min_calls=4, slow_call_rate=0.75, consecutive_failures=99))
    for slow in (True, True, False):
        breaker.record(1.0, failure=False, slow=slow, probe_epoch=None)
    assert state_of(breaker) is S.CLOSED
    breaker.record(1.0, failure=False, slow=True, probe_epoch=None)
    assert state_of(breaker) is S.OPEN


def test_the_time_window_forgets_old_failures() -> None:
    breaker = CircuitBreaker(
        settings(
            window="time", window_size=10, min_calls=2, failure_rate=1.0, consecutive_failures=99
        )
    )
    breaker.record(0.0, failure=True, slow=False, probe_epoch=None)
    breaker.record(5.0, failure=False, slow=False, probe_epoch=None)
    breaker.record(30.0, failure=True, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.CLOSED  # only 1 call in the window at t = 30
    breaker.record(31.0, failure=True, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.OPEN


def test_results_outside_closed_do_not_count() -> None:
    """While open, stragglers of allowed attempts neither trip nor close anything."""
    breaker = in_state(S.OPEN)
    for _ in range(20):
        breaker.record(1.0, failure=True, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.OPEN and len(breaker.transitions) == 1


# -- open, half-open, probes ----------------------------------------------------------


def trip(breaker: CircuitBreaker, now: float) -> None:
    for _ in range(breaker._settings.consecutive_failures):
        breaker.record(now, failure=True, slow=False, probe_epoch=None)
    assert state_of(breaker) is S.OPEN


def test_admission_while_open_then_probes() -> None:
    breaker = CircuitBreaker(settings(half_open_probes=2))
    trip(breaker, 0.0)
    assert breaker.admit(0.0) is A.REJECT_OPEN
    assert breaker.admit(9.999) is A.REJECT_OPEN
    assert breaker.admit(10.0) is A.PROBE
    assert state_of(breaker) is S.HALF_OPEN and breaker.epoch == 1
    assert breaker.admit(10.0) is A.PROBE
    assert breaker.admit(10.0) is A.REJECT_PROBES_BUSY
    breaker.record(11.0, failure=False, slow=False, probe_epoch=1)
    assert state_of(breaker) is S.HALF_OPEN
    assert breaker.admit(11.0) is A.REJECT_PROBES_BUSY  # a success still holds its slot
    breaker.record(12.0, failure=False, slow=False, probe_epoch=1)
    assert state_of(breaker) is S.CLOSED
    assert breaker.admit(12.0) is A.ALLOW


def test_one_failed_probe_reopens_for_longer() -> None:
    breaker = CircuitBreaker(settings(open_s=10.0, open_backoff=2.0, max_open_s=35.0))
    trip(breaker, 0.0)
    expected_open = [10.0, 20.0, 35.0, 35.0]
    now = 0.0
    for duration in expected_open:
        assert breaker.open_until == now + duration
        now = breaker.open_until
        assert breaker.admit(now) is A.PROBE
        breaker.record(now, failure=True, slow=False, probe_epoch=breaker.epoch)
        assert state_of(breaker) is S.OPEN


def test_closing_resets_the_open_backoff() -> None:
    breaker = CircuitBreaker(settings(open_s=10.0, open_backoff=3.0, half_open_probes=1))
    trip(breaker, 0.0)
    assert breaker.admit(10.0) is A.PROBE
    breaker.record(10.0, failure=True, slow=False, probe_epoch=1)
    assert breaker.open_until == 40.0
    assert breaker.admit(40.0) is A.PROBE
    breaker.record(40.0, failure=False, slow=False, probe_epoch=2)
    assert state_of(breaker) is S.CLOSED
    trip(breaker, 50.0)
    assert breaker.open_until == 60.0


def test_a_late_probe_from_an_earlier_half_open_period_is_ignored() -> None:
    breaker = CircuitBreaker(settings(half_open_probes=2))
    trip(breaker, 0.0)
    assert breaker.admit(10.0) is A.PROBE
    old_epoch = breaker.epoch
    breaker.force_open(10.0, 5.0)
    assert breaker.admit(15.0) is A.PROBE
    assert breaker.epoch == old_epoch + 1
    breaker.record(16.0, failure=True, slow=False, probe_epoch=old_epoch)
    breaker.record(16.0, failure=False, slow=False, probe_epoch=old_epoch)
    assert state_of(breaker) is S.HALF_OPEN and breaker.probe_successes == 0


def test_a_released_probe_frees_its_slot() -> None:
    breaker = CircuitBreaker(settings(half_open_probes=1))
    trip(breaker, 0.0)
    assert breaker.admit(10.0) is A.PROBE
    assert breaker.admit(10.0) is A.REJECT_PROBES_BUSY
    breaker.release_probe(breaker.epoch)
    assert breaker.admit(10.0) is A.PROBE


def test_force_open_never_shortens_an_opening() -> None:
    breaker = CircuitBreaker(settings())
    breaker.force_open(0.0, 86400.0)
    breaker.force_open(1.0, 5.0)
    assert state_of(breaker) is S.OPEN and breaker.open_until == 86400.0
    assert breaker.admit(1000.0) is A.REJECT_OPEN


def test_force_open_from_every_state() -> None:
    for state in S:
        breaker = in_state(state)
        breaker.force_open(100.0, 7.0)
        assert state_of(breaker) is S.OPEN
        assert breaker.open_until == 107.0


def test_a_breaker_that_flaps_for_days_keeps_working() -> None:
    """Thousands of re-openings in one long outage must not overflow the open backoff."""
    breaker = CircuitBreaker(settings(open_s=1.0, open_backoff=2.0, max_open_s=300.0))
    trip(breaker, 0.0)
    for _ in range(1500):
        now = breaker.open_until
        assert breaker.admit(now) is A.PROBE
        breaker.record(now, failure=True, slow=False, probe_epoch=breaker.epoch)
        assert breaker.open_until - now == 300.0 or breaker.epoch < 10


# -- stateful ---------------------------------------------------------------------------


class Model:
    """The documented behaviour, independently and naively (count window only trips here)."""

    def __init__(self, s: BreakerSettings) -> None:
        self.s = s
        self.calls: list[tuple[bool, bool]] = []
        self.streak = 0
        self.reopenings = 0

    def closed(self) -> None:
        self.calls, self.streak, self.reopenings = [], 0, 0

    def should_trip(self, failure: bool, slow: bool) -> bool:
        self.calls = [*self.calls, (failure, slow)][-self.s.window_size :]
        self.streak = self.streak + 1 if failure else 0
        n = len(self.calls)
        failures = sum(f for f, _ in self.calls)
        slows = sum(s for _, s in self.calls)
        rate_trip = n >= self.s.min_calls and (
            failures >= self.s.failure_rate * n or slows >= self.s.slow_call_rate * n
        )
        return self.streak >= self.s.consecutive_failures or rate_trip

    def open_duration(self) -> float:
        duration = min(self.s.max_open_s, self.s.open_s * self.s.open_backoff**self.reopenings)
        self.reopenings += 1
        return duration


class BreakerMachine(RuleBasedStateMachine):
    """Admissions, results and forced openings through time, checked against `Model`."""

    breaker: CircuitBreaker
    model: Model

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.pending: list[int | None] = []  # probe epoch per admitted attempt in flight
        self.probes: Counter[int] = Counter()  # PROBE admissions per half-open epoch
        self.released: Counter[int] = Counter()
        self.successes: Counter[int] = Counter()
        self.max_forced = 0.0

    @initialize(
        window=st.sampled_from(["count", "time"]),
        window_size=st.integers(1, 10),
        min_calls=st.integers(1, 6),
        failure_rate=st.sampled_from([0.2, 0.5, 1.0]),
        consecutive_failures=st.integers(1, 5),
        slow_call_rate=st.sampled_from([0.5, 1.0]),
        open_s=st.floats(0.5, 20.0),
        open_backoff=st.sampled_from([1.0, 1.5, 2.0, 10.0]),
        max_open_s=st.floats(1.0, 100.0),
        half_open_probes=st.integers(1, 3),
    )
    def make(self, **fields: Any) -> None:
        self.settings = BreakerSettings(**fields)
        self.breaker = CircuitBreaker(self.settings)
        self.model = Model(self.settings)

    def _check_new_transitions(self, before: int) -> None:
        for _, _, target in self.breaker.transitions[before:]:
            if target is S.CLOSED:
                self.model.closed()

    @rule(step=st.floats(0.0, 5.0) | st.floats(5.0, 200.0))
    def advance(self, step: float) -> None:
        self.now += step

    @rule()
    def admit(self) -> None:
        b = self.breaker
        state, open_until, epoch = b.state, b.open_until, b.epoch
        busy = b.probes_in_flight + b.probe_successes >= self.settings.half_open_probes
        admission = b.admit(self.now)
        if state is S.CLOSED:
            assert admission is A.ALLOW
        elif state is S.OPEN and self.now < open_until:
            assert admission is A.REJECT_OPEN
            assert b.state is S.OPEN
        elif state is S.OPEN:
            assert b.state is S.HALF_OPEN and b.epoch == epoch + 1
            assert admission is A.PROBE
            assert b.transitions[-1] == (self.now, S.OPEN, S.HALF_OPEN)
        else:
            assert admission is (A.REJECT_PROBES_BUSY if busy else A.PROBE)
        if admission is A.REJECT_OPEN:
            assert self.now < b.open_until
        if admission is A.ALLOW:
            self.pending.append(None)
        elif admission is A.PROBE:
            self.pending.append(b.epoch)
            self.probes[b.epoch] += 1

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), result=st.sampled_from(["success", "failure", "slow"]))
    def record(self, data: st.DataObject, result: str) -> None:
        b, model = self.breaker, self.model
        epoch = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        failure, slow = result == "failure", result == "slow"
        state, current_epoch, open_until = b.state, b.epoch, b.open_until
        before = len(b.transitions)
        expected_until: float | None = None
        if epoch is not None and state is S.HALF_OPEN and epoch == current_epoch:
            if failure:
                expected_until = max(open_until, self.now + model.open_duration())
            else:
                self.successes[epoch] += 1
        elif epoch is None and state is S.CLOSED:
            tripped = model.should_trip(failure, slow)
            if tripped and self.settings.window == "count":  # the model only knows count windows
                expected_until = max(open_until, self.now + model.open_duration())
        b.record(self.now, failure=failure, slow=slow, probe_epoch=epoch)
        self._check_new_transitions(before)

        if epoch is not None and state is S.HALF_OPEN and epoch == current_epoch:
            if failure:
                assert b.state is S.OPEN and b.open_until == expected_until
            elif self.successes[epoch] >= self.settings.half_open_probes:
                assert b.state is S.CLOSED
            else:
                assert b.state is S.HALF_OPEN
        elif epoch is None and state is S.CLOSED and self.settings.window == "count":
            if expected_until is None:
                assert b.state is S.CLOSED
            else:
                assert b.state is S.OPEN and b.open_until == expected_until
        elif epoch is None and state is S.CLOSED:
            if b.state is S.OPEN:  # time window tripped; keep the model's reopen count in step
                model.reopenings = b.open_count
        else:
            assert len(b.transitions) == before, "a stale result moved the breaker"

    @precondition(lambda self: any(e is not None for e in self.pending))
    @rule(data=st.data())
    def release_probe(self, data: st.DataObject) -> None:
        probes = [i for i, e in enumerate(self.pending) if e is not None]
        epoch = self.pending.pop(data.draw(st.sampled_from(probes)))
        assert epoch is not None
        if self.breaker.state is S.HALF_OPEN and epoch == self.breaker.epoch:
            self.released[epoch] += 1
        self.breaker.release_probe(epoch)

    @rule(duration=st.floats(0.1, 1000.0))
    def force_open(self, duration: float) -> None:
        b = self.breaker
        open_until = b.open_until
        self.max_forced = max(self.max_forced, duration)
        b.force_open(self.now, duration)
        assert b.state is S.OPEN
        assert b.open_until == max(open_until, self.now + duration)
        assert b.transitions[-1][0] == self.now and b.transitions[-1][2] is S.OPEN

    @invariant()
    def state_and_transitions_follow_the_table(self) -> None:
        assert self.breaker.state in TRANSITIONS
        for _, source, target in self.breaker.transitions:
            assert target in TRANSITIONS[source].values(), (source, target)

    @invariant()
    def transitions_are_in_time_order_and_chain(self) -> None:
        transitions = self.breaker.transitions
        for (t0, _, target), (t1, source, _) in pairwise(transitions):
            assert t0 <= t1 and target is source
        if transitions:
            assert transitions[-1][2] is self.breaker.state

    @invariant()
    def probes_never_exceed_the_limit_in_one_half_open_period(self) -> None:
        limit = self.settings.half_open_probes
        for epoch, admitted in self.probes.items():
            assert admitted - self.released[epoch] <= limit, (epoch, admitted)

    @invariant()
    def opening_is_bounded(self) -> None:
        b = self.breaker
        if b.state is not S.OPEN:
            return
        opened_at = b.transitions[-1][0]
        bound = max(self.settings.max_open_s, self.max_forced)
        assert b.open_until - opened_at <= bound + 1e-9


TestBreakerMachine = BreakerMachine.TestCase
