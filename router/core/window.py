"""A sliding window of counters kept in fixed time slices.

Budgets, throttles and breakers all ask "how many X in the last T seconds"; this
answers it in O(1) memory per window (Finagle's `WindowedAdder` idea), so the
simulator can run millions of requests without the window growing. A slice is
dropped only once its *end* has left the window, so sums err on the side of
counting a little more, never less.
"""

from __future__ import annotations

__all__ = ["SlicedWindow"]


class SlicedWindow:
    """Sums of `width` counters over the last `span_s` seconds, in `slices` slices."""

    __slots__ = ("_current", "_slice_s", "_slices", "_values", "sums", "width")

    def __init__(self, span_s: float, *, slices: int = 10, width: int = 1) -> None:
        if not span_s > 0 or slices < 1 or width < 1:  # `not >` refuses NaN too
            raise ValueError(
                f"window needs span_s > 0, slices ≥ 1, width ≥ 1; got {span_s}, {slices}, {width}"
            )
        self._slice_s = span_s / slices
        self._slices = slices + 1
        self._values = [[0.0] * width for _ in range(self._slices)]
        self._current = 0
        self.width = width
        self.sums = [0.0] * width

    def _advance(self, now: float) -> int:
        index = int(now / self._slice_s)
        if index > self._current:
            steps = min(index - self._current, self._slices)
            for step in range(1, steps + 1):
                stale = self._values[(self._current + step) % self._slices]
                for k in range(self.width):
                    self.sums[k] -= stale[k]
                    stale[k] = 0.0
            self._current = index
        return self._current % self._slices

    def add(self, now: float, column: int, amount: float) -> None:
        """Count `amount` in `column` at time `now` (earlier times count in the current slice)."""
        # Most adds land in the current slice; only a new slice needs `_advance`.
        if int(now / self._slice_s) > self._current:
            slot = self._advance(now)
        else:
            slot = self._current % self._slices
        self._values[slot][column] += amount
        self.sums[column] += amount

    def totals(self, now: float) -> list[float]:
        """Every column's sum over the window ending at `now`."""
        self._advance(now)
        return self.sums
