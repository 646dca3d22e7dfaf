"""Token buckets and the RPM/TPM limiter enforced before an attempt is sent.

The refill arithmetic is checked by table; the conformance property (nothing
takes more than capacity + rate × elapsed) by Hypothesis.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.limits import RateLimiter, TokenBucket
from router.core.policy import RateLimits


@pytest.mark.parametrize(
    ("capacity", "refill_per_s", "shown"),
    [
        (0.0, 1.0, "0.0"),
        (-5.0, 1.0, "-5.0"),
        (10.0, 0.0, "0.0"),
        (10.0, -1.0, "-1.0"),
        (math.nan, 1.0, "nan"),
        (10.0, math.nan, "nan"),
    ],
)
def test_constructor_rejects_bad_values_and_names_them(
    capacity: float, refill_per_s: float, shown: str
) -> None:
    with pytest.raises(ValueError, match="token bucket") as error:
        TokenBucket(capacity=capacity, refill_per_s=refill_per_s)
    assert shown in str(error.value)


@pytest.mark.parametrize(
    ("now", "level"),
    [(0.0, 0.0), (0.5, 1.0), (1.0, 2.0), (2.5, 5.0), (4.999, 9.998), (5.0, 10.0), (100.0, 10.0)],
)
def test_refill_is_linear_and_capped(now: float, level: float) -> None:
    bucket = TokenBucket(capacity=10.0, refill_per_s=2.0)
    assert bucket.try_take(0.0, 10.0)
    assert bucket.level(now) == pytest.approx(level)


def test_a_new_bucket_starts_full_whenever_it_is_first_used() -> None:
    bucket = TokenBucket(capacity=5.0, refill_per_s=1.0)
    assert bucket.level(1e6) == 5.0


def test_a_refused_take_leaves_the_bucket_untouched() -> None:
    bucket = TokenBucket(capacity=10.0, refill_per_s=1.0)
    assert bucket.try_take(0.0, 7.0)
    assert not bucket.try_take(0.0, 4.0)
    assert bucket.level(0.0) == 3.0
    assert bucket.try_take(1.0, 4.0)
    assert bucket.level(1.0) == 0.0


def test_give_back_never_overfills() -> None:
    bucket = TokenBucket(capacity=10.0, refill_per_s=1.0)
    assert bucket.try_take(0.0, 3.0)
    bucket.give_back(100.0)
    assert bucket.level(0.0) == 10.0


def test_time_going_backwards_does_not_refill() -> None:
    bucket = TokenBucket(capacity=10.0, refill_per_s=1.0)
    assert bucket.try_take(10.0, 10.0)
    assert bucket.level(5.0) == 0.0
    assert bucket.level(10.0) == 0.0
    assert bucket.level(11.0) == 1.0


@given(
    capacity=st.integers(1, 100),
    refill_per_s=st.sampled_from([0.5, 1.0, 2.0, 10.0]),
    ops=st.lists(
        st.tuples(st.floats(0.0, 3.0), st.integers(0, 30), st.integers(0, 5)), max_size=60
    ),
)
def test_takes_never_exceed_capacity_plus_refill(
    capacity: int, refill_per_s: float, ops: list[tuple[float, int, int]]
) -> None:
    """Over any span, tokens taken ≤ capacity + rate × span + tokens given back."""
    bucket = TokenBucket(capacity=float(capacity), refill_per_s=refill_per_s)
    now = 0.0
    log: list[tuple[float, int, int]] = []  # (at, taken, given back)
    for step, amount, back in ops:
        now += step
        taken = amount if bucket.try_take(now, float(amount)) else 0
        bucket.give_back(float(back))
        log.append((now, taken, back))
        assert -1e-9 <= bucket.level(now) <= capacity
    for i, (start, _, _) in enumerate(log):
        taken = sum(t for _, t, _ in log[i:])
        given = sum(g for _, _, g in log[i:-1])
        assert taken <= capacity + refill_per_s * (now - start) + given + 1e-6


# -- RPM and TPM together --------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "unlimited"),
    [(RateLimits(), True), (RateLimits(rpm=10), False), (RateLimits(tpm=1000), False)],
)
def test_unlimited_only_without_any_limit(limits: RateLimits, unlimited: bool) -> None:
    limiter = RateLimiter(limits)
    assert limiter.unlimited is unlimited
    if unlimited:
        assert all(limiter.try_acquire(0.0, 10**9) for _ in range(100))


def test_rpm_allows_a_minute_of_requests_then_one_per_interval() -> None:
    limiter = RateLimiter(RateLimits(rpm=60))
    assert all(limiter.try_acquire(0.0, 1) for _ in range(60))
    assert not limiter.try_acquire(0.0, 1)
    assert not limiter.try_acquire(0.5, 1)
    assert limiter.try_acquire(1.0, 1)
    assert not limiter.try_acquire(1.0, 1)


def test_tpm_counts_tokens() -> None:
    limiter = RateLimiter(RateLimits(tpm=6000))
    assert limiter.try_acquire(0.0, 5000)
    assert not limiter.try_acquire(0.0, 1001)
    assert limiter.try_acquire(0.0, 1000)
    assert limiter.try_acquire(1.0, 100)  # 6000 / 60 = 100 tokens per second


def test_a_request_larger_than_tpm_is_never_admitted() -> None:
    limiter = RateLimiter(RateLimits(tpm=1000))
    assert not limiter.try_acquire(1e6, 1001)


def test_both_must_admit_or_neither_is_charged() -> None:
    limiter = RateLimiter(RateLimits(rpm=2, tpm=100))
    assert not limiter.try_acquire(0.0, 500)  # TPM refuses: the RPM token is given back
    assert limiter.try_acquire(0.0, 50)
    assert limiter.try_acquire(0.0, 50)
    assert not limiter.try_acquire(0.0, 0)  # now RPM refuses


def test_refund_undoes_an_acquire() -> None:
    limiter = RateLimiter(RateLimits(rpm=1, tpm=100))
    assert limiter.try_acquire(0.0, 100)
    assert not limiter.try_acquire(0.0, 1)
    limiter.refund(100)
    assert limiter.try_acquire(0.0, 100)
