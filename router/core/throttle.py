"""Client-side adaptive throttling (Google SRE book, ch. 21 "Handling Overload").

When a deployment keeps refusing work, the router refuses some locally instead of
sending it: P(reject) = max(0, (requests − K·accepts) / (requests + 1)) over a
window of about two minutes. With K = 2 roughly one refused request still reaches
the backend per accepted one, which is the signal that lets throttling end.
"""

from __future__ import annotations

from random import Random

from router.core.window import SlicedWindow

__all__ = ["AdaptiveThrottle"]

_REQUESTS, _ACCEPTS = 0, 1


class AdaptiveThrottle:
    """Per-deployment probabilistic local rejection, fed by accept/refuse results."""

    __slots__ = ("_window", "k")

    def __init__(self, *, k: float, window_s: float) -> None:
        if not k >= 1:  # NaN would silently disable throttling
            raise ValueError(f"adaptive throttle k must be ≥ 1, got {k}")
        self.k = k
        self._window = SlicedWindow(window_s, slices=12, width=2)

    def reject_probability(self, now: float) -> float:
        """The SRE formula over the current window."""
        requests, accepts = self._window.totals(now)
        return max(0.0, (requests - self.k * accepts) / (requests + 1.0))

    def admit(self, now: float, rng: Random) -> bool:
        """Draw whether to send; counting the request happens here, as the book says."""
        probability = self.reject_probability(now)
        self._window.add(now, _REQUESTS, 1.0)
        return probability <= 0.0 or rng.random() >= probability

    def record(self, now: float, accepted: bool) -> None:
        """The backend accepted the attempt (it was not refused as overloaded or limited)."""
        if accepted:
            self._window.add(now, _ACCEPTS, 1.0)
