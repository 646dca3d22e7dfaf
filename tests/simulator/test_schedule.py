"""`simulator.schedule`: callbacks on SimPy's own queue, in exactly SimPy's order."""

from __future__ import annotations

from typing import Any

from simulator.schedule import Environment


def test_callbacks_fire_in_time_then_scheduling_order_and_the_past_is_now() -> None:
    env = Environment(initial_time=10.0)
    fired: list[tuple[float, Any]] = []
    record = [lambda due: fired.append((env.now, due.arg))]
    env.at(12.0, record, "late")
    env.at(11.0, record, "first at 11")
    env.at(11.0, record, "second at 11")
    env.at(3.0, record, "already past")
    env.run()
    assert fired == [
        (10.0, "already past"),
        (11.0, "first at 11"),
        (11.0, "second at 11"),
        (12.0, "late"),
    ]


def test_a_due_event_takes_the_place_a_timeout_would() -> None:
    """Mixed with SimPy's own timeouts, the order is the one SimPy alone would give."""
    env = Environment()
    fired: list[str] = []
    env.timeout(1.0).callbacks.append(lambda _: fired.append("timeout a"))
    env.at(1.0, [lambda due: fired.append(due.arg)], "due b")
    env.timeout(1.0).callbacks.append(lambda _: fired.append("timeout c"))

    def process(env: Environment) -> Any:
        yield env.timeout(0.5)
        fired.append("process at 0.5")

    env.process(process(env))
    env.run()
    assert fired == ["process at 0.5", "timeout a", "due b", "timeout c"]


def test_run_until_is_simpys_own() -> None:
    env = Environment()
    fired: list[Any] = []
    env.at(5.0, [lambda due: fired.append(due.arg)], "after the stop")
    env.run(until=2.0)
    assert env.now == 2.0 and fired == []
    env.run()
    assert fired == ["after the stop"]
