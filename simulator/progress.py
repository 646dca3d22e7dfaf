"""A one-line progress bar for long runs: simulated time against wall time, TTY only."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from scenarios.durations import format_duration

__all__ = ["Progress"]


class Progress:
    """Call with the simulated time reached; prints at most a few times a second, to a TTY."""

    def __init__(self, label: str, total_s: float, stream: TextIO | None = None) -> None:
        self.label = label
        self.total_s = total_s
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.perf_counter()
        self._last = 0.0

    def __call__(self, simulated_s: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and simulated_s < self.total_s:
            return
        self._last = now
        fraction = min(1.0, simulated_s / self.total_s) if self.total_s else 1.0
        bar = "#" * int(fraction * 30)
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {format_duration(round(simulated_s))} of "
            f"{format_duration(self.total_s)} simulated, {now - self.started:.1f} s wall"
        )
        self.stream.flush()

    def close(self) -> None:
        """End the line (only if anything was drawn)."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
