"""reports.plots: every plot renders to PNG bytes, with data, with faults, and with nothing."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports.plots import PNG_SIGNATURE, heatmap_png, sweep_png, timeline_png
from tests.reports.traces import (
    attempt,
    attempts_frame,
    context,
    fault,
    request,
    requests_frame,
)


def _size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(matplotlib.image.imread(io.BytesIO(png), format="png"))


def _trace() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten minutes at one request per 10 s on `a`; `a` fails from 200 s to 400 s and `b` serves."""
    attempts, requests = [], []
    for i in range(60):
        t = 10.0 * i
        rid = f"r{i}"
        if 200.0 <= t < 400.0:
            attempts.append(attempt(rid, "a", t, t + 0.5, outcome="server", cost=0.001))
            attempts.append(attempt(rid, "b", t + 0.5, t + 2.0, cost=0.003, number=2))
            requests.append(request(rid, t, t + 2.0, served_by="b", attempts=2))
        else:
            attempts.append(attempt(rid, "a", t, t + 1.0, cost=0.002))
            requests.append(request(rid, t, t + 1.0))
    return attempts_frame(attempts), requests_frame(requests)


def test_timeline_of_a_trace_with_a_fault_is_a_png() -> None:
    attempts, requests = _trace()
    png = timeline_png(attempts, requests, context(fault(200, 400), duration=600), title="t")
    assert png.startswith(PNG_SIGNATURE)
    assert _size(png) == (1100, 900)


def test_timeline_shades_the_fault_window() -> None:
    attempts, requests = _trace()
    with_fault = timeline_png(attempts, requests, context(fault(200, 400), duration=600), title="")
    without = timeline_png(attempts, requests, context(duration=600), title="")
    assert with_fault != without

    # The shading is reddish: more pixels with red clearly above blue in the faulted picture.
    def reddish(png: bytes) -> int:
        rgb = _pixels(png)[..., :3]
        return int(((rgb[..., 0] - rgb[..., 2]) > 0.05).sum())

    assert reddish(with_fault) > reddish(without)


def test_timeline_is_deterministic() -> None:
    attempts, requests = _trace()
    ctx = context(fault(200, 400), duration=600)
    assert timeline_png(attempts, requests, ctx, title="x") == timeline_png(
        attempts, requests, ctx, title="x"
    )


@pytest.mark.parametrize(
    ("attempts", "requests", "duration"),
    [
        (attempts_frame([]), requests_frame([]), 600.0),
        (attempts_frame([]), requests_frame([]), 0.0),
        (None, None, 0.0),
        (attempts_frame([]), requests_frame([request("r1", 5.0, final="rejected")]), 60.0),
    ],
)
def test_timeline_of_an_empty_trace_does_not_crash(
    attempts: pd.DataFrame | None, requests: pd.DataFrame | None, duration: float
) -> None:
    ctx = context(fault(0, duration, open_ended=True), duration=duration)
    png = timeline_png(attempts, requests, ctx, title="nothing happened")
    assert png.startswith(PNG_SIGNATURE)


def test_timeline_with_many_deployments_and_an_open_ended_fault() -> None:
    rows = [attempt(f"r{i}", f"dep-{i % 14}", 30.0 * i) for i in range(100)]
    reqs = [request(f"r{i}", 30.0 * i, served_by=f"dep-{i % 14}") for i in range(100)]
    ctx = context(fault(1200, 3000, "dep-1", open_ended=True), duration=3000)
    png = timeline_png(attempts_frame(rows), requests_frame(reqs), ctx, title="t")
    assert png.startswith(PNG_SIGNATURE)


def test_heatmap_annotates_scores_and_tolerates_missing_cells() -> None:
    table = pd.DataFrame(
        {"naive": [12.5, 0.0], "domain-aware": [95.2, float("nan")]},
        index=pd.Index(["cloudflare", "failover-saturation"], name="scenario"),
    )
    png = heatmap_png(table, title="scores")
    assert png.startswith(PNG_SIGNATURE)
    assert heatmap_png(pd.DataFrame(), title="empty").startswith(PNG_SIGNATURE)


def test_sweep_plots_numeric_categorical_and_boolean_metrics() -> None:
    table = pd.DataFrame(
        {
            "retries": [1, 2, 4, 1, 2, 4],
            "client": [0, 0, 0, 3, 3, 3],
            "amplification_peak": [1.1, 1.9, 3.5, 2.0, 4.1, 9.0],
            "recovered": [True, True, False, True, False, False],
            "strategy": ["ordered", "cheapest", "quality"] * 2,
        }
    )
    for png in (
        sweep_png(table, "retries", "amplification_peak", hue="client"),
        sweep_png(table, "retries", "recovered"),
        sweep_png(table, "strategy", "amplification_peak", hue="client", title="by strategy"),
        sweep_png(table.iloc[0:0], "retries", "amplification_peak"),
    ):
        assert png.startswith(PNG_SIGNATURE)


def test_sweep_names_a_missing_column() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        sweep_png(pd.DataFrame({"a": [1]}), "a", "nope")
