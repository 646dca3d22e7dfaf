"""The simulator's frames: built from the trace's columns, equal to pandas' own from rows."""

from __future__ import annotations

import pandas as pd
import pytest

from router.core.trace import (
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    AttemptRow,
    RequestRow,
    TraceRecorder,
)
from simulator.driver import _frame


def attempt(status: int | None, ttft: float | None, cost: float = 0.0) -> AttemptRow:
    return AttemptRow("r1", "t", "default", "chat", 0.5, 1, "client", "a@one", 0.5, 0.75,
                      "ok", status, 10, 0, cost, "", ttft)  # fmt: skip


def request(compliant: bool) -> RequestRow:
    return RequestRow("r1", "t", "default", "chat", 0.5, 0.75, "ok", "a@one", 1, 0.0, True,
                      compliant, "", 0)  # fmt: skip


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [attempt(200, 0.25), attempt(503, 0.5, 0.01)],
        [attempt(None, None), attempt(200, 0.25)],
        [attempt(None, 0.25), attempt(None, None)],
        [attempt(None, None)],
        [attempt(200, None)],
    ],
)
def test_attempt_frames_match_from_records(rows: list[AttemptRow]) -> None:
    trace = TraceRecorder()
    for row in rows:
        trace.add_attempt(row)
    expected = pd.DataFrame.from_records(rows, columns=list(ATTEMPT_COLUMNS))
    frame = _frame(trace.attempt_columns)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame.to_csv(index=False) == expected.to_csv(index=False)


@pytest.mark.parametrize("rows", [[], [request(True), request(False)]])
def test_request_frames_match_from_records(rows: list[RequestRow]) -> None:
    trace = TraceRecorder()
    for row in rows:
        trace.add_request(row)
    expected = pd.DataFrame.from_records(rows, columns=list(REQUEST_COLUMNS))
    frame = _frame(trace.request_columns)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame.to_csv(index=False) == expected.to_csv(index=False)
