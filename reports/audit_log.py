"""Reading a live gateway's audit log (JSON lines) as the simulator's two trace tables.

`blastradius serve --audit-log FILE` writes one JSON object per trace row, with a
`kind` of `attempt` or `request` (`router.server.audit`). This reader returns the
same DataFrames, with the same columns in the same order, that the simulator writes
to attempts.csv and requests.csv, so every function in `reports/` reads a live run
as it reads a simulated one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from router.core.trace import ATTEMPT_COLUMNS, REQUEST_COLUMNS

__all__ = ["read_audit_log"]


def read_audit_log(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(attempts, requests) from an audit log; a torn last line (a crash) is skipped.

    Raises ValueError naming the file and line for any other line that is not a row.
    """
    path = Path(path)
    rows: dict[str, list[list[Any]]] = {"attempt": [], "request": []}
    columns = {"attempt": ATTEMPT_COLUMNS, "request": REQUEST_COLUMNS}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the writer died mid-line; everything before it is whole
            raise ValueError(f"{path}:{number}: not a JSON line") from None
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in rows:
            raise ValueError(f"{path}:{number}: kind must be 'attempt' or 'request', got {kind!r}")
        rows[kind].append([record.get(name) for name in columns[kind]])
    return (
        pd.DataFrame.from_records(rows["attempt"], columns=list(ATTEMPT_COLUMNS)),
        pd.DataFrame.from_records(rows["request"], columns=list(REQUEST_COLUMNS)),
    )
