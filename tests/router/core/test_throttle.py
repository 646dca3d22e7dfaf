"""Adaptive throttling: the SRE book's formula, counted the way the book counts it.

P(reject) = max(0, (requests − K·accepts) / (requests + 1)) over the window;
locally refused requests still count as requests, or throttling could never end.
"""

from __future__ import annotations

import math
from random import Random

import pytest

from router.core.throttle import AdaptiveThrottle


@pytest.mark.parametrize(
    ("k", "window_s", "shown"),
    [(0.5, 120.0, "0.5"), (0.0, 120.0, "0.0"), (math.nan, 120.0, "nan"), (2.0, 0.0, "0.0")],
)
def test_constructor_rejects_bad_values_and_names_them(
    k: float, window_s: float, shown: str
) -> None:
    with pytest.raises(ValueError) as error:
        AdaptiveThrottle(k=k, window_s=window_s)
    assert shown in str(error.value)


def fill(throttle: AdaptiveThrottle, now: float, requests: int, accepts: int) -> None:
    rng = Random(0)
    for _ in range(requests):
        throttle.admit(now, rng)
    for _ in range(accepts):
        throttle.record(now, accepted=True)


@pytest.mark.parametrize(
    ("k", "requests", "accepts", "expected"),
    [
        (2.0, 0, 0, 0.0),
        (2.0, 10, 10, 0.0),  # healthy: accepts × K far above requests
        (2.0, 10, 5, 0.0),  # exactly K·accepts = requests
        (2.0, 10, 4, 2 / 11),
        (2.0, 100, 0, 100 / 101),
        (1.1, 100, 50, (100 - 55) / 101),
        (1.0, 9, 0, 9 / 10),
    ],
)
def test_reject_probability_follows_the_sre_formula(
    k: float, requests: int, accepts: int, expected: float
) -> None:
    throttle = AdaptiveThrottle(k=k, window_s=120.0)
    fill(throttle, 1.0, requests, accepts)
    assert throttle.reject_probability(1.0) == pytest.approx(expected)


def test_refusals_are_not_accepts() -> None:
    throttle = AdaptiveThrottle(k=2.0, window_s=120.0)
    fill(throttle, 0.0, 10, 0)
    for _ in range(10):
        throttle.record(0.0, accepted=False)
    assert throttle.reject_probability(0.0) == pytest.approx(10 / 11)


def test_locally_rejected_requests_still_count() -> None:
    """Every admit call counts a request, sent or not (the book's "requests")."""
    throttle = AdaptiveThrottle(k=2.0, window_s=120.0)
    rng = Random(5)
    sent = sum(throttle.admit(0.0, rng) for _ in range(1000))
    assert throttle.reject_probability(0.0) == pytest.approx(1000 / 1001)
    assert 0 < sent < 100  # after the first few, almost everything is refused locally


def test_a_healthy_backend_is_never_throttled() -> None:
    throttle = AdaptiveThrottle(k=2.0, window_s=120.0)
    rng = Random(1)
    for i in range(500):
        assert throttle.admit(i * 0.1, rng)
        throttle.record(i * 0.1, accepted=True)


def test_throttling_ends_once_the_window_forgets_the_outage() -> None:
    throttle = AdaptiveThrottle(k=2.0, window_s=120.0)
    fill(throttle, 0.0, 100, 0)
    assert throttle.reject_probability(60.0) > 0.9
    assert throttle.reject_probability(131.0) == 0.0


def test_rejection_rate_matches_the_probability() -> None:
    """Over many draws at a fixed state, the refused share is close to P(reject)."""
    rng = Random(11)
    refused = 0
    draws = 4000
    for _ in range(draws):
        throttle = AdaptiveThrottle(k=2.0, window_s=120.0)
        fill(throttle, 0.0, 10, 3)  # P = (10 − 6) / 11
        refused += not throttle.admit(0.0, rng)
    assert refused / draws == pytest.approx(4 / 11, abs=0.03)
