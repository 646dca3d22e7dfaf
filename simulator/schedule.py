"""Virtual time for the SimPy driver: callbacks scheduled straight on SimPy's queue.

The simulator schedules two callbacks per simulated request, millions a simulated day.
`env.timeout(delay)` with a `partial` appended to its callbacks would build a `Timeout`,
a callback list and a `partial` each time; `Environment.at` puts one ready `Due` event
in the very place of SimPy's queue that timeout would take (same time to the last bit,
same priority, next event id), so the run is event for event the same, for less. The
inline `run` loop steps events as `Environment.step` does, without a call per event.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, Event

__all__ = ["Callback", "Due", "Environment"]

Callback = Callable[[Any], None]
"""What a `Due` event calls, with the event itself (read `.arg` from it)."""


class Due(Event):
    """A SimPy event that is already triggered and comes due `delay` after it is scheduled.

    It does what `env.timeout(delay)` with callbacks does, minus what the simulator never
    needs: no delay check, no value, no fresh callback list (callers pass a list they
    share between events — SimPy's `step` only reads it) and no `partial` per event:
    the callback gets the event and reads its one `arg`. `Event.__init__` is skipped
    on purpose; `_ok` and `_value` are what `Environment.step` and `triggered` read.
    """

    _ok = True
    _value = None

    def __init__(self, callbacks: list[Callback], arg: Any) -> None:
        self.callbacks = callbacks
        self.arg = arg


class Environment(simpy.Environment):
    """SimPy's environment plus a cheap way to schedule a callback, and an inline run loop.

    Like `simpy.rt.RealtimeEnvironment`, it changes how events are stepped and nothing
    else: `run()` without `until` (how the simulator runs: until no event is left) does
    what `step()` does, inline, instead of one method call and one `try` per event.
    Events fire in exactly the order SimPy's own loop fires them.
    """

    def at(self, when: float, callbacks: list[Callback], arg: Any = None) -> None:
        """Run `callbacks` with a `Due` holding `arg` at `when`, or now if that has passed.

        The queue entry is the one `env.timeout(max(0, when - now))` would make: same
        time (computed the same way, to the last bit), NORMAL priority, next event id.
        """
        now = self._now
        delay = when - now
        entry = (
            now + (delay if delay > 0.0 else 0.0),
            NORMAL,
            next(self._eid),
            Due(callbacks, arg),
        )
        heappush(self._queue, entry)

    def run(self, until: float | Event | None = None) -> Any:
        if until is not None:
            return super().run(until)
        queue = self._queue
        while queue:
            self._now, _, _, event = heappop(queue)
            callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                # As `Environment.step`: a failed event nobody handled crashes the run.
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
        return None
