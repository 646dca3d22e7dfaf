"""Retry budgets: fleet-wide, retries stay under a ratio of requests.

Finagle's `RetryBudget` (ttl 10 s, 10 retries/s floor, 20 %), Envoy's retry
budget and the SRE book's 10 % per-client rule all express one idea: whether a
retry may be sent depends on the whole fleet's recent traffic, not on one
request's bad luck. In an outage this turns "every request ×3" into "requests ×
1.2", so a failover never multiplies load on the survivor.

Accounting is exact in integer milli-retries: each request deposits `ratio`, each
retry withdraws 1, and a reserve of `min_retries_per_s × ttl_s` lets a quiet
service still retry. Deposits and withdrawals expire after `ttl_s`.
"""

from __future__ import annotations

from typing import Protocol

from router.core.window import SlicedWindow

__all__ = ["EMPTY", "UNLIMITED", "Budget", "RetryBudget"]

_SCALE = 1000


class Budget(Protocol):
    """What the engine needs of any budget (real, empty or unlimited)."""

    def deposit(self, now: float) -> None: ...

    def try_withdraw(self, now: float) -> bool: ...

    def balance(self, now: float) -> float: ...


class RetryBudget:
    """Retries allowed ≤ ratio × requests + min_retries_per_s × ttl_s, over any ttl window."""

    __slots__ = ("_deposit", "_reserve", "_window", "min_retries_per_s", "ratio", "ttl_s")

    def __init__(self, *, ratio: float, min_retries_per_s: float, ttl_s: float) -> None:
        if not 0 <= ratio <= 10:
            raise ValueError(f"retry budget ratio must be in [0, 10], got {ratio}")
        if not 0 <= min_retries_per_s < float("inf"):  # NaN and inf cannot be scaled
            raise ValueError(
                f"retry budget min_retries_per_s must be finite and ≥ 0, got {min_retries_per_s}"
            )
        if not 1 <= ttl_s <= 60:
            raise ValueError(f"retry budget ttl_s must be in [1, 60] seconds, got {ttl_s}")
        self.ratio = ratio
        self.min_retries_per_s = min_retries_per_s
        self.ttl_s = ttl_s
        self._deposit = round(ratio * _SCALE)
        self._reserve = round(min_retries_per_s * ttl_s * _SCALE)
        self._window = SlicedWindow(ttl_s, slices=10, width=1)

    def deposit(self, now: float) -> None:
        """A request was admitted: it earns `ratio` of a retry."""
        if self._deposit:
            self._window.add(now, 0, self._deposit)

    def try_withdraw(self, now: float) -> bool:
        """Spend one retry if the budget holds one; False means `budget_exhausted`."""
        if self._reserve + self._window.totals(now)[0] < _SCALE:
            return False
        self._window.add(now, 0, -_SCALE)
        return True

    def balance(self, now: float) -> float:
        """Retries that could be sent right now."""
        return (self._reserve + self._window.totals(now)[0]) / _SCALE


class _Empty:
    """A budget that never allows a retry (what-if: no retries at all)."""

    __slots__ = ()

    def deposit(self, now: float) -> None:
        return None

    def try_withdraw(self, now: float) -> bool:
        return False

    def balance(self, now: float) -> float:
        return 0.0


class _Unlimited:
    """A budget that always allows a retry (the naive policy, and what-if runs)."""

    __slots__ = ()

    def deposit(self, now: float) -> None:
        return None

    def try_withdraw(self, now: float) -> bool:
        return True

    def balance(self, now: float) -> float:
        return float("inf")


EMPTY: Budget = _Empty()
UNLIMITED: Budget = _Unlimited()
