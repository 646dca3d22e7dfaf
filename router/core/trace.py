"""The trace schema shared by the simulator and the gateway (DESIGN.md "Trace").

One row per attempt and one per request, with times in seconds from scenario
start. Reports read only these rows, never a driver, which is what makes a
simulated run and a live run of the same scenario comparable.

The recorder keeps each table as columns, not rows: a 24-hour simulation writes
millions of rows, and a row tuple with its own float and int objects costs several
times the memory of a slot in a typed `array`, and as much again to walk when the
driver builds its DataFrames. Rows (`AttemptRow`, `RequestRow`) are built on demand.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal, NamedTuple

__all__ = [
    "ATTEMPT_COLUMNS",
    "MISSING",
    "REQUEST_COLUMNS",
    "AttemptColumns",
    "AttemptRow",
    "RequestColumns",
    "RequestRow",
    "TraceRecorder",
]


class AttemptRow(NamedTuple):
    """One upstream call. `origin` is `client` for the first attempt of a client call;
    `ttft_s` is its time to first token (None when no token came).

    The recorder stores these fields as `AttemptColumns`; a row is built when asked for.
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


MISSING = float("nan")
"""What a nullable float column (`http_status`, `ttft_s`) holds for None."""


def _nullable(value: float) -> float | None:
    return None if value != value else value


class _Table:
    """What both tables share: columns named like their row's fields, appended row-wise.

    A subclass declares `FIELDS` (its row's field order), the columns as attributes (the
    engine appends to them directly on its hot path) and `rows()`.
    """

    __slots__ = ()

    FIELDS: ClassVar[tuple[str, ...]] = ()
    NULLABLE: ClassVar[tuple[str, ...]] = ()
    """Columns that hold `MISSING` for None."""
    NULLABLE_INTS: ClassVar[tuple[str, ...]] = ()
    """Nullable columns whose values, when present, are ints."""

    def __len__(self) -> int:
        return len(getattr(self, self.FIELDS[0]))

    def columns(self) -> dict[str, list[str] | array[float] | array[int]]:
        """Every column by name, in `FIELDS` order (the recorder's own storage)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def append(self, row: tuple[Any, ...]) -> None:
        """Add one row (the engine appends to the columns directly)."""
        nullable = self.NULLABLE
        for name, value in zip(self.FIELDS, row, strict=True):
            getattr(self, name).append(MISSING if value is None and name in nullable else value)

    def clear(self) -> None:
        """Drop every row."""
        for name in self.FIELDS:
            del getattr(self, name)[:]

    def _row_values(self) -> Iterator[tuple[Any, ...]]:
        """Each row's values in `FIELDS` order: None back for `MISSING`, flags as bools."""
        columns: list[Iterable[Any]] = []
        for name in self.FIELDS:
            column = getattr(self, name)
            if name in self.NULLABLE_INTS:
                column = [None if value != value else int(value) for value in column]
            elif name in self.NULLABLE:
                column = [_nullable(value) for value in column]
            elif isinstance(column, array) and column.typecode == "b":
                column = map(bool, column)
            columns.append(column)
        return zip(*columns, strict=True)


class AttemptColumns(_Table):
    """The attempt table, one column per `AttemptRow` field, in the same order.

    Times and costs are `array("d")`, counts `array("q")`, text a list (the engine's
    strings are shared objects). `http_status` and `ttft_s` are `array("d")` holding
    `MISSING` for None. The engine appends one value to every column per attempt.
    """

    __slots__ = (
        "arrival_s",
        "attempt",
        "cost_usd",
        "deployment",
        "end_s",
        "http_status",
        "input_tokens",
        "origin",
        "outcome",
        "output_tokens",
        "reason",
        "request_id",
        "route",
        "start_s",
        "task",
        "tenant",
        "ttft_s",
    )

    FIELDS = ATTEMPT_COLUMNS
    NULLABLE = ("http_status", "ttft_s")
    NULLABLE_INTS = ("http_status",)

    def __init__(self) -> None:
        self.request_id: list[str] = []
        self.tenant: list[str] = []
        self.route: list[str] = []
        self.task: list[str] = []
        self.arrival_s = array("d")
        self.attempt = array("q")
        self.origin: list[str] = []
        self.deployment: list[str] = []
        self.start_s = array("d")
        self.end_s = array("d")
        self.outcome: list[str] = []
        self.http_status = array("d")
        self.input_tokens = array("q")
        self.output_tokens = array("q")
        self.cost_usd = array("d")
        self.reason: list[str] = []
        self.ttft_s = array("d")

    def rows(self) -> list[AttemptRow]:
        """The table as rows, None back in place of `MISSING`."""
        return [AttemptRow._make(values) for values in self._row_values()]


class RequestColumns(_Table):
    """The request table, one column per `RequestRow` field, in the same order.

    Times and costs are `array("d")`, counts `array("q")`, the two flags `array("b")`,
    text a list.
    """

    __slots__ = (
        "arrival_s",
        "attempts",
        "client_attempt",
        "complete",
        "compliant",
        "cost_usd",
        "done_s",
        "final",
        "reason",
        "request_id",
        "route",
        "served_by",
        "task",
        "tenant",
    )

    FIELDS = REQUEST_COLUMNS

    def __init__(self) -> None:
        self.request_id: list[str] = []
        self.tenant: list[str] = []
        self.route: list[str] = []
        self.task: list[str] = []
        self.arrival_s = array("d")
        self.done_s = array("d")
        self.final: list[str] = []
        self.served_by: list[str] = []
        self.attempts = array("q")
        self.cost_usd = array("d")
        self.complete = array("b")
        self.compliant = array("b")
        self.reason: list[str] = []
        self.client_attempt = array("q")

    def rows(self) -> list[RequestRow]:
        """The table as rows."""
        return [RequestRow._make(values) for values in self._row_values()]


class TraceRecorder:
    """Collects the two tables in memory; drivers drain them (the core does no I/O)."""

    __slots__ = ("attempt_columns", "request_columns")

    def __init__(self) -> None:
        self.attempt_columns = AttemptColumns()
        self.request_columns = RequestColumns()

    @property
    def attempts(self) -> tuple[AttemptRow, ...]:
        """The attempt rows so far, built on demand (record with `add_attempt`)."""
        return tuple(self.attempt_columns.rows())

    @property
    def requests(self) -> tuple[RequestRow, ...]:
        """The request rows so far, built on demand (record with `add_request`)."""
        return tuple(self.request_columns.rows())

    def add_attempt(self, row: AttemptRow) -> None:
        """Record one attempt row."""
        self.attempt_columns.append(row)

    def add_request(self, row: RequestRow) -> None:
        """Record one request row."""
        self.request_columns.append(row)

    def drain(self) -> tuple[list[AttemptRow], list[RequestRow]]:
        """Every row recorded so far, which the recorder then forgets."""
        attempts, requests = self.attempt_columns.rows(), self.request_columns.rows()
        self.clear()
        return attempts, requests

    def clear(self) -> None:
        """Forget every row."""
        self.attempt_columns.clear()
        self.request_columns.clear()

    def attempt_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts, ready for `pandas.DataFrame`."""
        return [row._asdict() for row in self.attempt_columns.rows()]

    def request_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts, ready for `pandas.DataFrame`."""
        return [row._asdict() for row in self.request_columns.rows()]
