"""Plots over a trace and over tables of results: pure functions that return PNG bytes.

Why PNG bytes and no files: `reports` never touches the disk (DESIGN.md), so the
same picture can go into a run directory, be embedded in `report.html` as a data
URI, or land in an evidence pack — the caller decides where the bytes go.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas directly,
never through `pyplot`: no global figure registry to leak memory across a long
sweep, no interactive backend picked up from the environment, safe in worker
processes. PNG metadata is dropped (`Software` carries the matplotlib version),
so one trace gives the same bytes on every run of the same installation.

* `timeline_png` — one scenario run over time, in 60 s buckets (`reports.metrics.windowed`):
  success rate, attempts/s per deployment (stacked), cost rate, p99 latency, with
  the fault windows shaded on every panel.
* `heatmap_png` — a scenario × policy table of scores (a gate run).
* `sweep_png` — a metric against a swept parameter, one line per `hue` value.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from reports.metrics import RunContext, windowed

__all__ = ["BUCKET_S", "heatmap_png", "sweep_png", "timeline_png"]

BUCKET_S = 60.0
"""Timeline bucket width: the same 60 s as `amplification_peak`, so a spike on the
plot is the bucket the metric reports."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DPI = 100
_FAULT_COLOUR = "#d62728"
_FAULT_ALPHA = 0.13
_NO_DATA = "no data"


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes, rendered by Agg, without the version-dependent metadata."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _no_data(ax: Axes, text: str = _NO_DATA) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#777777",
        fontsize=10,
    )


def _steps(edges: np.ndarray, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Bucket values as a post-step series over the bucket edges (the last value repeated),
    so each bucket is drawn as the flat segment it is rather than a point."""
    y = values.to_numpy(dtype=float)
    return edges, np.append(y, y[-1]) if y.size else y


def _palette(n: int) -> list[tuple[float, float, float, float]]:
    """Distinct colours for n deployments: tab10 while it lasts, then tab20."""
    cmap: Colormap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --------------------------------------------------------------------------- timeline


def timeline_png(
    attempts: pd.DataFrame | None,
    requests: pd.DataFrame | None,
    context: RunContext,
    *,
    title: str,
) -> bytes:
    """One run over time, per 60 s bucket, four panels sharing an x axis in hours.

    1. success rate: ok ÷ logical requests arriving in the bucket (`availability`);
    2. attempts/s per deployment, stacked — where the load went and how much the
       retries added on top of the arrivals;
    3. cost rate in USD/min (attempts started in the bucket, failed ones included);
    4. p99 latency of the ok requests arriving in the bucket.

    Fault windows (`context.faults`) are shaded on every panel, so cause and effect
    line up by eye. An empty trace gives the same panels marked "no data".
    """
    table = windowed(attempts, requests, BUCKET_S, duration=context.duration)
    fig = Figure(figsize=(11.0, 9.0), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1.0, 1.5, 0.9, 0.9])
    fig.suptitle(title, fontsize=11, fontweight="bold")
    end_h = max(context.duration, float(table["end_s"].max()) if len(table) else 0.0) / 3600.0
    edges = np.append(table["start_s"].to_numpy(dtype=float), table["end_s"].iloc[-1:]) / 3600.0

    success, load, cost, latency = axes
    if len(table) and table["arrivals"].sum() > 0:
        x, y = _steps(edges, table["availability"])
        success.step(x, y * 100.0, where="post", color="#2ca02c", linewidth=1.2)
    else:
        _no_data(success, "no requests")
    success.set_ylim(-3.0, 103.0)
    success.yaxis.set_major_formatter(PercentFormatter(100.0, decimals=0))
    success.set_ylabel("success rate")

    per_deployment = [c for c in table.columns if c.startswith("attempts:")]
    if per_deployment and table["attempts"].sum() > 0:
        colours = _palette(len(per_deployment))
        stacked = [_steps(edges, table[c] / BUCKET_S)[1] for c in per_deployment]
        load.stackplot(
            edges,
            *stacked,
            labels=[c.split(":", 1)[1] for c in per_deployment],
            colors=colours,
            step="post",
            linewidth=0.0,
        )
        x, arrivals = _steps(edges, table["arrivals"] / BUCKET_S)
        load.step(x, arrivals, where="post", color="black", linewidth=0.9, label="client arrivals")
        load.legend(
            loc="upper left",
            bbox_to_anchor=(1.005, 1.0),
            fontsize=7.5,
            frameon=False,
            title="deployment",
            title_fontsize=8,
        )
    else:
        _no_data(load, "no attempts")
    load.set_ylabel("attempts/s")
    load.set_ylim(bottom=0.0)

    if len(table):
        x, y = _steps(edges, table["cost_usd"] / (BUCKET_S / 60.0))
        cost.step(x, y, where="post", color="#9467bd", linewidth=1.1)
    else:
        _no_data(cost)
    cost.set_ylabel("cost USD/min")
    cost.set_ylim(bottom=0.0)

    if len(table) and table["latency_p99_s"].notna().any():
        x, y = _steps(edges, table["latency_p99_s"])
        latency.step(x, y, where="post", color="#1f77b4", linewidth=1.1)
        latency.set_ylim(bottom=0.0)
    else:
        _no_data(latency, "no successful requests")
    latency.set_ylabel("p99 latency s")
    latency.set_xlabel("hours since scenario start")

    for ax in axes:
        for fault in context.faults:
            ax.axvspan(
                fault.start / 3600.0,
                fault.end / 3600.0,
                color=_FAULT_COLOUR,
                alpha=_FAULT_ALPHA,
                linewidth=0.0,
                hatch="//" if fault.open_ended else None,
                zorder=0,  # behind the data, so the deployment colours stay true
            )
        ax.grid(True, axis="y", linewidth=0.4, alpha=0.5)
        ax.set_xlim(0.0, end_h if end_h > 0 else 1.0)
    if context.faults:
        success.legend(
            handles=[Patch(color=_FAULT_COLOUR, alpha=_FAULT_ALPHA * 2, label="fault window")],
            loc="upper left",
            bbox_to_anchor=(1.005, 1.0),
            fontsize=7.5,
            frameon=False,
        )
    return _png(fig)


# --------------------------------------------------------------------------- heatmap


def heatmap_png(table: pd.DataFrame, *, title: str) -> bytes:
    """Scores of a gate run: rows are scenarios, columns policies, each cell annotated.

    Colours run red (0) to green (100) on a fixed scale, so two heatmaps compare by
    eye; a missing cell (NaN, the pair was not run) stays blank and reads "—".
    """
    values = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    rows, cols = values.shape
    fig = Figure(
        figsize=(max(4.5, 1.4 * cols + 3.0), max(2.5, 0.45 * rows + 1.6)), layout="constrained"
    )
    ax = fig.subplots()
    ax.set_title(title, fontsize=11, fontweight="bold")
    if values.size == 0:
        ax.set_axis_off()
        _no_data(ax)
        return _png(fig)
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap="RdYlGn", vmin=0.0, vmax=100.0, aspect="auto"
    )
    ax.set_xticks(range(cols), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(rows), [str(r) for r in table.index])
    for i in range(rows):
        for j in range(cols):
            value = values[i, j]
            text = "—" if math.isnan(value) else f"{value:.1f}"
            dark = not math.isnan(value) and (value < 20.0 or value > 85.0)
            ax.text(
                j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    fig.colorbar(image, ax=ax, label="score", shrink=0.9)
    return _png(fig)


# --------------------------------------------------------------------------- sweep


def sweep_png(
    table: pd.DataFrame,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    title: str | None = None,
) -> bytes:
    """A metric (`y`) against a swept parameter (`x`), one line per value of `hue`.

    Numeric parameters are placed on a numeric axis (sorted); anything else is
    categorical, in order of first appearance. Booleans (`recovered`) plot as 0/1.
    Raises ValueError naming a column the table lacks (a caller's mistake).
    """
    for column in (x, y, *((hue,) if hue else ())):
        if column not in table.columns:
            raise ValueError(f"sweep table has no column {column!r}: {', '.join(table.columns)}")
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.set_title(title or f"{y} vs {x}", fontsize=11, fontweight="bold")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    if table.empty:
        _no_data(ax)
        return _png(fig)
    numeric_x = pd.to_numeric(table[x], errors="coerce")
    categorical = bool(numeric_x.isna().any())
    categories: Sequence[str] = list(dict.fromkeys(table[x].astype(str)))
    position = (
        table[x].astype(str).map({c: i for i, c in enumerate(categories)}).astype(float)
        if categorical
        else numeric_x.astype(float)
    )
    metric = pd.to_numeric(
        table[y].map(lambda v: float(v) if isinstance(v, bool) else v), errors="coerce"
    )
    frame = pd.DataFrame({"x": position, "y": metric})
    groups = (
        [(None, frame)] if hue is None else list(frame.groupby(table[hue].astype(str), sort=False))
    )
    for key, group in groups:
        ordered = group.sort_values("x", kind="stable")
        label = None if key is None else f"{hue}={key}"
        ax.plot(ordered["x"], ordered["y"], marker="o", linewidth=1.3, markersize=4, label=label)
    if categorical:
        ax.set_xticks(range(len(categories)), categories)
    if hue is not None:
        ax.legend(fontsize=8, frameon=False)
    return _png(fig)
