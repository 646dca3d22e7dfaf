"""Sweeps: one scenario, a grid of settings, a table of metrics per cell.

Each cell is a `RunRequest` with its overrides, run through an
`concurrent.futures.Executor` — a local process pool by default, so a dask or
Ray executor can run the same grid on a cluster. Cells are independent and
seeded, so the table does not depend on how they were scheduled.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

import pandas as pd

from router.core.errors import ConfigError, ConfigIssue
from scenarios.overrides import Override, parse_override
from simulator.runner import RunRequest, run_replications

__all__ = ["COLUMNS", "parse_grid", "run_sweep"]

COLUMNS = (
    "requests",
    "availability",
    "availability_during_faults",
    "amplification",
    "amplification_peak",
    "ttd_s",
    "ttf_s",
    "ttr_s",
    "cost_per_1k_requests_usd",
    "latency_p99_s",
    "recovered",
)


def parse_grid(specs: Sequence[str]) -> list[list[Override]]:
    """`KEY=V1,V2` specs → one list of overrides per axis."""
    axes = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        choices = [value for value in values.split(",") if value.strip()]
        if not sep or not choices:
            raise ConfigError(
                [
                    ConfigIssue(
                        file="--grid", line=None, field=spec, message="expected KEY=V1,V2,..."
                    )
                ]
            )
        axes.append([parse_override(f"{key}={value}") for value in choices])
    return axes


def _cell(request: RunRequest) -> dict[str, Any]:
    result, _, _ = run_replications(request)
    row: dict[str, Any] = dict(request.meta)
    row.update({name: result["metrics"].get(name) for name in COLUMNS})
    row["score"] = result["score"]
    row["passed"] = result["passed"]
    return row


def run_sweep(base: RunRequest, grid: Sequence[str], executor: Executor) -> pd.DataFrame:
    """Every combination of the grid's values, one row each, in grid order."""
    axes = parse_grid(grid)
    requests = []
    for combination in itertools.product(*axes):
        meta = {".".join(map(str, o.path)): o.value for o in combination}
        cell = replace(base, overrides=(*base.overrides, *combination), meta=meta)
        cell.load()  # a bad value fails the whole sweep up front, naming the field
        requests.append(cell)
    rows = list(executor.map(_cell, requests))
    return pd.DataFrame(rows)
