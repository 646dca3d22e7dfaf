"""SlicedWindow: the "how many in the last T seconds" that budgets, throttles and caps rely on.

The promise that matters is one-sided: a sum may count up to one extra slice of
old events, never fewer than the events inside the window, so a cap or budget
built on it can only err towards caution.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.window import SlicedWindow


@pytest.mark.parametrize(
    ("span_s", "slices", "width", "shown"),
    [
        (0.0, 10, 1, "0.0"),
        (-5.0, 10, 1, "-5.0"),
        (math.nan, 10, 1, "nan"),
        (10.0, 0, 1, ", 0,"),
        (10.0, 10, 0, ", 0"),
    ],
)
def test_constructor_rejects_bad_values_and_names_them(
    span_s: float, slices: int, width: int, shown: str
) -> None:
    with pytest.raises(ValueError, match="window needs") as error:
        SlicedWindow(span_s, slices=slices, width=width)
    assert shown in str(error.value)


def test_events_inside_the_span_are_summed_per_column() -> None:
    window = SlicedWindow(10.0, slices=10, width=2)
    window.add(0.5, 0, 1.0)
    window.add(3.2, 0, 2.0)
    window.add(9.9, 1, 5.0)
    assert window.totals(9.9) == [3.0, 5.0]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (10.9, 1.0),  # the slice [0, 1) still ends inside (0.9, 10.9]
        (10.99, 1.0),
        (11.0, 0.0),  # its end left the window: dropped
        (25.0, 0.0),
    ],
)
def test_a_slice_leaves_only_once_its_end_has_left(now: float, expected: float) -> None:
    window = SlicedWindow(10.0, slices=10)
    window.add(0.5, 0, 1.0)
    assert window.totals(now) == [expected]


def test_earlier_times_count_in_the_current_slice() -> None:
    """A late report is not lost: it is counted now, and expires with the current slice."""
    window = SlicedWindow(10.0, slices=10)
    window.add(5.0, 0, 1.0)
    window.add(1.0, 0, 1.0)
    assert window.totals(5.0) == [2.0]
    assert window.totals(15.9) == [2.0]
    assert window.totals(16.0) == [0.0]


def test_a_jump_longer_than_the_span_clears_everything() -> None:
    window = SlicedWindow(1.0, slices=4, width=3)
    for i in range(8):
        window.add(i * 0.1, i % 3, 1.0)
    assert window.totals(1000.0) == [0.0, 0.0, 0.0]
    window.add(1000.0, 2, 4.0)
    assert window.totals(1000.0) == [0.0, 0.0, 4.0]


EPS = 1e-9


@given(
    span_s=st.sampled_from([1.0, 2.5, 10.0, 60.0]),
    slices=st.integers(1, 12),
    events=st.lists(
        st.tuples(st.floats(0.0, 5.0), st.integers(0, 5)),
        max_size=40,
    ),
    query_gap=st.floats(0.0, 5.0),
)
def test_sum_never_undercounts_and_overcounts_at_most_one_slice(
    span_s: float, slices: int, events: list[tuple[float, int]], query_gap: float
) -> None:
    """Exact sums over (t − span, t] ≤ window ≤ exact sums over (t − span − slice, t]."""
    window = SlicedWindow(span_s, slices=slices)
    now = 0.0
    seen: list[tuple[float, int]] = []
    for step, amount in events:
        now += step
        window.add(now, 0, float(amount))
        seen.append((now, amount))
    now += query_gap
    total = window.totals(now)[0]
    inside = sum(a for at, a in seen if at > now - span_s + EPS)
    with_one_slice = sum(a for at, a in seen if at > now - span_s - span_s / slices - EPS)
    assert inside <= total <= with_one_slice
