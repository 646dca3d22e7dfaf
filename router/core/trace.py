"""The trace schema shared by the simulator and the gateway (DESIGN.md "Trace").

One row per attempt and one per request, with times in seconds from scenario
start. Reports read only these rows, never a driver, which is what makes a
simulated run and a live run of the same scenario comparable.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

__all__ = [
    "ATTEMPT_COLUMNS",
    "REQUEST_COLUMNS",
    "AttemptRow",
    "RequestRow",
    "TraceRecorder",
]


class AttemptRow(NamedTuple):
    """One upstream call. `origin` is `client` for the first attempt of a client call;
    `ttft_s` is its time to first token (None when no token came).

    Rows are named tuples: the engine writes two per request on the simulator's hot
    path, and a tuple costs a fraction of a dataclass to build.
    """

    request_id: str
    tenant: str
    route: str
    task: str
    arrival_s: float
    attempt: int
    origin: Literal["router", "client"]
    deployment: str
    start_s: float
    end_s: float
    outcome: str
    http_status: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    reason: str
    ttft_s: float | None = None


class RequestRow(NamedTuple):
    """One client call and how it ended; `compliant` is false if any attempt broke residency."""

    request_id: str
    tenant: str
    route: str
    task: str
    arrival_s: float
    done_s: float
    final: Literal["ok", "error", "rejected"]
    served_by: str
    attempts: int
    cost_usd: float
    complete: bool
    compliant: bool
    reason: str
    client_attempt: int


ATTEMPT_COLUMNS: tuple[str, ...] = AttemptRow._fields
REQUEST_COLUMNS: tuple[str, ...] = RequestRow._fields


class TraceRecorder:
    """Collects rows in memory; drivers drain them to CSV/Parquet (the core does no I/O)."""

    __slots__ = ("attempts", "requests")

    def __init__(self) -> None:
        self.attempts: list[AttemptRow] = []
        self.requests: list[RequestRow] = []

    def attempt_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts, ready for `pandas.DataFrame`."""
        return [row._asdict() for row in self.attempts]

    def request_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts, ready for `pandas.DataFrame`."""
        return [row._asdict() for row in self.requests]
