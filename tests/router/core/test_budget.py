"""Retry budgets: retries stay under ratio × requests + a small reserve, over any ttl window.

This is what keeps a failover from multiplying load on the survivor, so besides
the table tests a stateful test drives random deposits and withdrawals through
time and checks Finagle's bound against an exact log of what happened.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from router.core.budget import EMPTY, UNLIMITED, Budget, RetryBudget


@pytest.mark.parametrize(
    ("ratio", "min_retries_per_s", "ttl_s", "field", "shown"),
    [
        (-0.1, 10.0, 10.0, "ratio", "-0.1"),
        (10.5, 10.0, 10.0, "ratio", "10.5"),
        (math.nan, 10.0, 10.0, "ratio", "nan"),
        (0.2, -1.0, 10.0, "min_retries_per_s", "-1.0"),
        (0.2, math.nan, 10.0, "min_retries_per_s", "nan"),
        (0.2, math.inf, 10.0, "min_retries_per_s", "inf"),
        (0.2, 10.0, 0.5, "ttl_s", "0.5"),
        (0.2, 10.0, 61.0, "ttl_s", "61.0"),
        (0.2, 10.0, math.nan, "ttl_s", "nan"),
    ],
)
def test_constructor_rejects_bad_values_and_names_them(
    ratio: float, min_retries_per_s: float, ttl_s: float, field: str, shown: str
) -> None:
    with pytest.raises(ValueError, match=field) as error:
        RetryBudget(ratio=ratio, min_retries_per_s=min_retries_per_s, ttl_s=ttl_s)
    assert shown in str(error.value)


@pytest.mark.parametrize(
    ("ratio", "min_retries_per_s", "ttl_s"),
    [(0.0, 0.0, 1.0), (10.0, 0.0, 60.0), (0.2, 10.0, 10.0), (0.1, 0.5, 1.0)],
)
def test_constructor_accepts_the_edges(
    ratio: float, min_retries_per_s: float, ttl_s: float
) -> None:
    budget = RetryBudget(ratio=ratio, min_retries_per_s=min_retries_per_s, ttl_s=ttl_s)
    assert budget.balance(0.0) == pytest.approx(min_retries_per_s * ttl_s)


@pytest.mark.parametrize(
    ("ratio", "deposits", "allowed"),
    [
        (0.2, 0, 0),
        (0.2, 4, 0),
        (0.2, 5, 1),
        (0.2, 14, 2),
        (0.2, 15, 3),
        (0.1, 100, 10),
        (1.0, 3, 3),
        (2.5, 2, 5),
        (0.0, 1000, 0),
    ],
)
def test_retries_are_a_ratio_of_requests(ratio: float, deposits: int, allowed: int) -> None:
    """With no reserve, `deposits` requests earn exactly floor(ratio × deposits) retries."""
    budget = RetryBudget(ratio=ratio, min_retries_per_s=0.0, ttl_s=10.0)
    for _ in range(deposits):
        budget.deposit(1.0)
    granted = 0
    while budget.try_withdraw(1.0):
        granted += 1
        assert granted <= allowed
    assert granted == allowed
    assert budget.balance(1.0) < 1.0


def test_the_reserve_lets_a_quiet_service_retry() -> None:
    """min_retries_per_s × ttl_s retries need no requests at all."""
    budget = RetryBudget(ratio=0.2, min_retries_per_s=0.5, ttl_s=10.0)
    assert [budget.try_withdraw(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert budget.balance(0.0) == 0.0


def test_withdrawals_and_deposits_expire_after_ttl() -> None:
    budget = RetryBudget(ratio=1.0, min_retries_per_s=0.0, ttl_s=10.0)
    budget.deposit(0.0)
    budget.deposit(0.0)
    assert budget.try_withdraw(0.5)
    assert budget.balance(0.5) == 1.0
    # both deposits and the withdrawal leave together once their slice has left the window
    assert budget.balance(10.9) == 1.0
    assert budget.balance(11.0) == 0.0
    assert not budget.try_withdraw(11.0)


def test_an_exhausted_budget_refills_as_old_retries_expire() -> None:
    budget = RetryBudget(ratio=0.0, min_retries_per_s=1.0, ttl_s=2.0)
    assert budget.try_withdraw(0.0) and budget.try_withdraw(0.0)
    assert not budget.try_withdraw(1.0)
    assert budget.try_withdraw(2.2)


@pytest.mark.parametrize(
    ("budget", "allows", "balance"),
    [(EMPTY, False, 0.0), (UNLIMITED, True, math.inf)],
    ids=["EMPTY", "UNLIMITED"],
)
def test_stand_ins_for_what_if_runs(budget: Budget, allows: bool, balance: float) -> None:
    """EMPTY never allows a retry, UNLIMITED always does, whatever was deposited."""
    for t in range(50):
        budget.deposit(float(t))
        assert budget.try_withdraw(float(t)) is allows
        assert budget.balance(float(t)) == balance


# -- stateful: Finagle's bound against an exact log ------------------------------------

EPS = 1e-9


class RetryBudgetMachine(RuleBasedStateMachine):
    """Random deposits and withdrawals through time, checked against an exact event log.

    Bound (reference/resilience.md §2.5): for every granted retry at time t,
    retries granted in (t − ttl, t] ≤ ratio × requests in (t − ttl − ttl/10, t]
    + min_retries_per_s × ttl. The extra tenth is the one window slice the budget
    may still count; EPS absorbs float error at slice edges.
    """

    budget: RetryBudget

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.deposits: list[float] = []
        self.withdrawals: list[float] = []

    @initialize(
        ratio_milli=st.integers(0, 3000),
        min_retries_per_s=st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0]),
        ttl_s=st.sampled_from([1.0, 2.0, 5.0, 10.0, 60.0]),
    )
    def make_budget(self, ratio_milli: int, min_retries_per_s: float, ttl_s: float) -> None:
        self.budget = RetryBudget(
            ratio=ratio_milli / 1000, min_retries_per_s=min_retries_per_s, ttl_s=ttl_s
        )

    @rule(step=st.floats(0.0, 3.0) | st.just(0.0) | st.floats(10.0, 70.0))
    def advance(self, step: float) -> None:
        self.now += step

    @rule(count=st.integers(1, 20))
    def deposit(self, count: int) -> None:
        for _ in range(count):
            self.budget.deposit(self.now)
            self.deposits.append(self.now)

    @rule(count=st.integers(1, 5))
    def try_withdraw(self, count: int) -> None:
        for _ in range(count):
            balance = self.budget.balance(self.now)
            granted = self.budget.try_withdraw(self.now)
            assert granted == (balance >= 1.0), (balance, granted)
            if granted:
                self.withdrawals.append(self.now)

    @invariant()
    def retries_stay_within_the_bound(self) -> None:
        if not self.withdrawals:
            return
        b = self.budget
        for t in set(self.withdrawals):
            granted = sum(1 for w in self.withdrawals if t - b.ttl_s + EPS < w <= t)
            requests = sum(1 for d in self.deposits if t - b.ttl_s * 1.1 - EPS < d <= t)
            bound = b.ratio * requests + b.min_retries_per_s * b.ttl_s
            assert granted <= bound + 1e-6, (t, granted, requests, bound)


TestRetryBudgetMachine = RetryBudgetMachine.TestCase
