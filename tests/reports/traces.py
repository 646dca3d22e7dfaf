"""Hand-built traces for the reports tests: rows made with the trace schema's own dataclasses."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports.metrics import FaultWindow, RunContext
from router.core.trace import ATTEMPT_COLUMNS, REQUEST_COLUMNS, AttemptRow, RequestRow


def attempt(
    request_id: str,
    deployment: str,
    start: float,
    end: float | None = None,
    *,
    outcome: str = "ok",
    reason: str = "",
    cost: float = 0.0,
    output_tokens: int = 0,
    number: int = 1,
) -> dict[str, Any]:
    """One attempt row as a dict."""
    return (
        AttemptRow(
            request_id=request_id,
            tenant="t",
            route="default",
            task="chat",
            arrival_s=start,
            attempt=number,
            origin="client" if number == 1 else "router",
            deployment=deployment,
            start_s=start,
            end_s=start + 1.0 if end is None else end,
            outcome=outcome,
            http_status=200 if outcome == "ok" else 503,
            input_tokens=10,
            output_tokens=output_tokens,
            cost_usd=cost,
            reason=reason,
        )
    )._asdict()


def request(
    request_id: str,
    arrival: float,
    done: float | None = None,
    *,
    final: str = "ok",
    served_by: str = "a",
    complete: bool | None = None,
    compliant: bool = True,
    reason: str = "",
    client_attempt: int = 0,
    attempts: int = 1,
) -> dict[str, Any]:
    """One request row as a dict (`complete` defaults to final == ok, as the engine writes it)."""
    return (
        RequestRow(
            request_id=request_id,
            tenant="t",
            route="default",
            task="chat",
            arrival_s=arrival,
            done_s=arrival + 1.0 if done is None else done,
            final=final,  # type: ignore[arg-type]
            served_by=served_by if final == "ok" else "",
            attempts=attempts,
            cost_usd=0.0,
            complete=(final == "ok") if complete is None else complete,
            compliant=compliant,
            reason=reason,
            client_attempt=client_attempt,
        )
    )._asdict()


def attempts_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Attempt rows with exactly the trace's columns."""
    return pd.DataFrame(rows, columns=list(ATTEMPT_COLUMNS))


def requests_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Request rows with exactly the trace's columns."""
    return pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))


def context(
    *faults: FaultWindow,
    duration: float = 1000.0,
    recovery_window: float = 300.0,
    primaries: frozenset[str] = frozenset({"a"}),
) -> RunContext:
    """A run context with sensible defaults."""
    return RunContext(
        duration=duration, faults=faults, recovery_window=recovery_window, primaries=primaries
    )


def fault(start: float, end: float, *targets: str, open_ended: bool = False) -> FaultWindow:
    """A fault window hitting `targets` (default: deployment `a`)."""
    return FaultWindow(
        start=start, end=end, targets=frozenset(targets or ("a",)), open_ended=open_ended
    )
