"""The trace recorder: rows go in and come back out of its columns unchanged."""

from __future__ import annotations

from router.core.trace import (
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    AttemptRow,
    RequestRow,
    TraceRecorder,
)

ATTEMPTS = [
    AttemptRow("r1", "acme", "default", "chat", 0.5, 1, "client", "gpt@openai", 0.5, 0.7,
               "timeout", None, 12, 0, 0.0, "", None),
    AttemptRow("r1", "acme", "default", "chat", 0.5, 2, "router", "claude@anthropic", 0.75, 1.25,
               "ok", 200, 12, 30, 0.000486, "failover", 0.3),
]  # fmt: skip
REQUESTS = [
    RequestRow("r1", "acme", "default", "chat", 0.5, 1.25, "ok", "claude@anthropic", 2,
               0.000486, True, True, "", 1),
    RequestRow("r2", "acme", "nope", "", 2.0, 2.0, "rejected", "", 0, 0.0, False, False,
               "unknown_route", 0),
]  # fmt: skip


def recorded() -> TraceRecorder:
    trace = TraceRecorder()
    for attempt in ATTEMPTS:
        trace.add_attempt(attempt)
    for request in REQUESTS:
        trace.add_request(request)
    return trace


def test_rows_come_back_as_they_went_in() -> None:
    trace = recorded()
    assert trace.attempts == tuple(ATTEMPTS) and trace.requests == tuple(REQUESTS)
    assert [type(row.http_status) for row in trace.attempts] == [type(None), int]
    assert [type(row.complete) for row in trace.requests] == [bool, bool]
    assert trace.attempt_dicts() == [row._asdict() for row in ATTEMPTS]
    assert trace.request_dicts() == [row._asdict() for row in REQUESTS]


def test_columns_follow_the_schema_order() -> None:
    trace = recorded()
    assert tuple(trace.attempt_columns.columns()) == ATTEMPT_COLUMNS
    assert tuple(trace.request_columns.columns()) == REQUEST_COLUMNS
    assert list(trace.attempt_columns.columns()["attempt"]) == [1, 2]


def test_drain_hands_over_every_row_and_forgets_them() -> None:
    trace = recorded()
    assert trace.drain() == (ATTEMPTS, REQUESTS)
    assert trace.attempts == () and trace.requests == ()
    assert len(trace.attempt_columns) == 0 and len(trace.request_columns) == 0
    assert trace.drain() == ([], [])
