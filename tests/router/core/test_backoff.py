"""Backoff: every kind stays inside Brooker's bounds, and bad settings are refused loudly.

Bounds from reference/resilience.md §2.2: expo(n) = min(cap, base·2^n); full jitter
draws from [0, expo(n)], equal from [expo(n)/2, expo(n)], none is expo(n) itself;
decorrelated draws from [base, min(cap, 3·previous)] with previous = base at first.
"""

from __future__ import annotations

import math
from random import Random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.backoff import Backoff, BackoffKind


@pytest.mark.parametrize(
    ("kind", "base_s", "cap_s", "shown"),
    [
        ("full", 0.0, 10.0, "0.0"),
        ("full", -1.5, 10.0, "-1.5"),
        ("equal", 0.5, 0.0, "0.0"),
        ("decorrelated", 0.5, -3.0, "-3.0"),
        ("none", math.nan, 10.0, "nan"),
        ("full", 0.5, math.nan, "nan"),
        ("linear", 0.5, 10.0, "'linear'"),
        ("", 0.5, 10.0, "''"),
    ],
)
def test_constructor_rejects_bad_values_and_names_them(
    kind: Any, base_s: float, cap_s: float, shown: str
) -> None:
    with pytest.raises(ValueError) as error:
        Backoff(kind, base_s=base_s, cap_s=cap_s)
    assert shown in str(error.value)


def expo(base_s: float, cap_s: float, retry: int) -> float:
    """min(cap, base·2^n) without overflow for large n."""
    return min(cap_s, base_s * 2.0 ** min(retry, 62))


# (kind, lower bound, upper bound) as functions of (base, cap, retry, previous)
BOUNDS = [
    ("full", lambda b, c, n, p: 0.0, lambda b, c, n, p: expo(b, c, n)),
    ("equal", lambda b, c, n, p: expo(b, c, n) / 2, lambda b, c, n, p: expo(b, c, n)),
    ("none", lambda b, c, n, p: expo(b, c, n), lambda b, c, n, p: expo(b, c, n)),
    ("decorrelated", lambda b, c, n, p: b, lambda b, c, n, p: min(c, 3 * (p or b))),
]


@pytest.mark.parametrize(("kind", "low", "high"), BOUNDS, ids=[b[0] for b in BOUNDS])
@given(
    base_s=st.floats(0.001, 5.0),
    cap_factor=st.floats(1.0, 1000.0),
    retries=st.integers(1, 80),
    seed=st.integers(0, 2**32),
)
def test_delays_stay_within_bounds(
    kind: BackoffKind,
    low: Any,
    high: Any,
    base_s: float,
    cap_factor: float,
    retries: int,
    seed: int,
) -> None:
    """Feeding each delay back as `previous_s`, as the engine does, keeps every draw in bounds."""
    cap_s = base_s * cap_factor
    backoff = Backoff(kind, base_s=base_s, cap_s=cap_s)
    rng = Random(seed)
    previous = 0.0
    for retry in range(retries):
        delay = backoff.delay(retry, previous, rng)
        assert low(base_s, cap_s, retry, previous) <= delay <= high(base_s, cap_s, retry, previous)
        assert 0.0 <= delay <= cap_s
        previous = delay


@pytest.mark.parametrize(
    ("retry", "expected"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (5, 10.0), (1000, 10.0)],
)
def test_no_jitter_is_plain_capped_exponential(retry: int, expected: float) -> None:
    backoff = Backoff("none", base_s=0.5, cap_s=10.0)
    assert backoff.delay(retry, 0.0, Random(0)) == expected


@pytest.mark.parametrize("kind", ["full", "equal", "decorrelated", "none"])
def test_same_seed_same_delays(kind: BackoffKind) -> None:
    """Jitter comes from the injected RNG only, so a seeded run replays exactly."""
    backoff = Backoff(kind, base_s=0.1, cap_s=5.0)

    def run(seed: int) -> list[float]:
        rng, previous, out = Random(seed), 0.0, []
        for retry in range(10):
            previous = backoff.delay(retry, previous, rng)
            out.append(previous)
        return out

    assert run(7) == run(7)


def test_full_jitter_spreads_clients_out() -> None:
    """The point of jitter: many clients retrying at once do not land together."""
    backoff = Backoff("full", base_s=1.0, cap_s=60.0)
    rng = Random(3)
    delays = [backoff.delay(4, 0.0, rng) for _ in range(2000)]
    assert 6.0 < sum(delays) / len(delays) < 10.0  # mean of U(0, 16) is 8
    assert len({round(d, 3) for d in delays}) > 1500


@pytest.mark.parametrize("kind", ["full", "equal", "decorrelated", "none"])
def test_the_cap_wins_even_below_base(kind: BackoffKind) -> None:
    """min(cap, …) is the formula's last word: a cap below base still bounds every delay."""
    backoff = Backoff(kind, base_s=2.0, cap_s=0.5)
    rng, previous = Random(1), 0.0
    for retry in range(20):
        previous = backoff.delay(retry, previous, rng)
        assert 0.0 <= previous <= 0.5
