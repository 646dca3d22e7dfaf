"""Exponential backoff with jitter, drawn from the injected RNG.

Formulas from Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog,
2015; reference/resilience.md §2.2). Jitter matters because un-jittered backoff
still synchronises clients; full and decorrelated jitter spread them out.
"""

from __future__ import annotations

from random import Random
from typing import Literal

__all__ = ["Backoff", "BackoffKind"]

BackoffKind = Literal["full", "equal", "decorrelated", "none"]


class Backoff:
    """Wait before retry number `retry` (0 for the first retry), capped at `cap_s`."""

    __slots__ = ("base_s", "cap_s", "kind")

    def __init__(self, kind: BackoffKind, *, base_s: float, cap_s: float) -> None:
        if not (base_s > 0 and cap_s > 0):  # also refuses NaN, which compares False
            raise ValueError(f"backoff base_s and cap_s must be > 0, got {base_s} and {cap_s}")
        if kind not in ("full", "equal", "decorrelated", "none"):
            raise ValueError(f"unknown backoff kind {kind!r}")
        self.kind: BackoffKind = kind
        self.base_s = base_s
        self.cap_s = cap_s

    def delay(self, retry: int, previous_s: float, rng: Random) -> float:
        """Seconds to wait; `previous_s` (the last delay, 0 at first) feeds decorrelated jitter."""
        if self.kind == "decorrelated":
            low = self.base_s
            high = max(low, (previous_s or self.base_s) * 3.0)
            return min(self.cap_s, rng.uniform(low, high))
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(retry, 62))
        if self.kind == "full":
            return rng.uniform(0.0, ceiling)
        if self.kind == "equal":
            return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)
        return ceiling
