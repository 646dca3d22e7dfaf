"""Traffic generation: the arrival processes, the mix, token sizes and reproducibility.

The simulator's every number rests on these draws, so each process is checked
against its definition with statistical tolerances (a few standard deviations,
fixed seeds so the tests cannot flake), and the batching is checked to be a pure
slicing: the same seed yields the same calls whatever window the driver uses.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router.core.errors import ConfigError
from scenarios.schema import Traffic
from simulator.traffic import ArrivalBatch, TrafficPlan


def make_plan(
    arrivals: dict[str, Any],
    *,
    duration: float,
    seed: int = 1,
    base_dir: Path = Path("."),
    **traffic: Any,
) -> TrafficPlan:
    spec = Traffic.model_validate({"arrivals": arrivals, **traffic})
    return TrafficPlan(spec, duration=duration, seed=seed, base_dir=base_dir)


def collect(plan: TrafficPlan, window_s: float = 60.0) -> ArrivalBatch:
    return ArrivalBatch.concat(list(plan.batches(window_s)))


def within_sigmas(observed: float, expected: float, sigmas: float = 5.0) -> bool:
    """A Poisson count within `sigmas` standard deviations of its mean."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected)


# -- arrival processes -------------------------------------------------------------------


def test_poisson_count_and_exponential_gaps() -> None:
    rate, duration = 50.0, 2000.0
    plan = make_plan({"kind": "poisson", "rate": rate}, duration=duration)
    times = collect(plan).times
    assert within_sigmas(len(times), rate * duration)
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)  # exponential: CV = 1
    # Memoryless: P(gap > mean) = e^-1.
    assert np.mean(gaps > 1 / rate) == pytest.approx(math.exp(-1), abs=0.01)


def test_diurnal_follows_the_cosine() -> None:
    mean_rate, r, period, peak_at = 20.0, 3.0, 1000.0, 250.0
    periods = 10
    duration = periods * period
    plan = make_plan(
        {
            "kind": "diurnal",
            "mean_rate": mean_rate,
            "peak_to_trough": r,
            "peak_at": peak_at,
            "period": period,
        },
        duration=duration,
    )
    times = collect(plan).times
    assert within_sigmas(len(times), mean_rate * duration)
    assert plan.expected_requests() == pytest.approx(mean_rate * duration)

    bins = 20
    phase = ((times - peak_at) % period) / period  # 0 = the peak, 0.5 = the trough
    counts = np.bincount(np.minimum((phase * bins).astype(int), bins - 1), minlength=bins)
    # Expected per phase bin: the integral of the rate over it, once per period.
    a = (r - 1) / (r + 1)
    edges = np.arange(bins + 1) / bins * 2 * np.pi
    width = period / bins
    expected = periods * mean_rate * (width + a * period / (2 * np.pi) * np.diff(np.sin(edges)))
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected))
    # The bins either side of the peak against those either side of the trough.
    peak = counts[0] + counts[-1]
    trough = counts[bins // 2 - 1] + counts[bins // 2]
    assert peak / trough == pytest.approx(r, rel=0.1)


def test_bursts_add_arrivals_only_inside_their_windows() -> None:
    duration = 1000.0
    plan = make_plan(
        {
            "kind": "bursts",
            "rate": 2.0,
            "bursts": [
                {"start": 200, "duration": 100, "rate": 100.0},
                {"start": 600, "duration": 50, "rate": 40.0},
                {"start": 620, "duration": 10, "rate": 60.0},  # overlapping bursts add up
            ],
        },
        duration=duration,
    )
    times = collect(plan).times
    inside_first = (times >= 200) & (times < 300)
    inside_second = (times >= 600) & (times < 650)
    overlap = (times >= 620) & (times < 630)
    outside = ~(inside_first | inside_second)
    assert within_sigmas(outside.sum(), 2.0 * 850)
    assert within_sigmas(inside_first.sum(), 102.0 * 100)
    assert within_sigmas((inside_second & ~overlap).sum(), 42.0 * 40)
    assert within_sigmas(overlap.sum(), 102.0 * 10)
    assert plan.expected_requests() == pytest.approx(2.0 * 1000 + 100 * 100 + 40 * 50 + 60 * 10)


def test_pinned_burst_pins_tenant_and_task() -> None:
    plan = make_plan(
        {
            "kind": "bursts",
            "rate": 5.0,
            "bursts": [
                {"start": 100, "duration": 50, "rate": 200.0, "tenant": "runaway", "task": "agent"},
                {"start": 300, "duration": 50, "rate": 200.0, "task": "agent"},
            ],
        },
        duration=500.0,
        # The pinned tenant and task are (almost) never drawn by share.
        tenants={"main": 1.0, "runaway": 1e-12},
        tasks=[{"name": "chat"}, {"name": "agent", "share": 1e-12}],
    )
    runaway, agent = plan.tenants.index("runaway"), 1
    batch = collect(plan)
    pinned = (batch.tenant == runaway) & (batch.task == agent)
    in_first = (batch.times >= 100) & (batch.times < 150)
    assert np.all(in_first[batch.tenant == runaway])
    assert within_sigmas(pinned.sum(), 200.0 * 50)
    # The second burst pins only the task; its tenants still follow the shares.
    in_second = (batch.times >= 300) & (batch.times < 350)
    assert np.all((in_first | in_second)[batch.task == agent])
    assert within_sigmas((in_second & (batch.task == agent)).sum(), 200.0 * 50)
    assert np.all(batch.tenant[in_second] == plan.tenants.index("main"))


def test_burst_is_clipped_to_the_run() -> None:
    plan = make_plan(
        {"kind": "bursts", "rate": 1.0, "bursts": [{"start": 900, "duration": 500, "rate": 50.0}]},
        duration=1000.0,
    )
    assert plan.expected_requests() == pytest.approx(1000.0 + 50.0 * 100)
    times = collect(plan).times
    assert times.max() < 1000.0
    assert within_sigmas((times >= 900).sum(), 51.0 * 100)


def test_burst_pinned_to_an_unknown_tenant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"bursts\[0\]\.tenant.*nobody"):
        make_plan(
            {
                "kind": "bursts",
                "rate": 1.0,
                "bursts": [{"start": 0, "duration": 1, "rate": 1.0, "tenant": "nobody"}],
            },
            duration=10.0,
        )


# -- CSV replay --------------------------------------------------------------------------


def test_csv_replay_filters_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "replay.csv").write_text(
        "id,at\n1,5.5\n2,-1\n3,0\n4,2.25\n5,100\n6,99.999\n7,2.25\n"
    )
    plan = make_plan(
        {"kind": "csv", "file": "replay.csv", "column": "at"}, duration=100.0, base_dir=tmp_path
    )
    batch = collect(plan, window_s=10.0)
    np.testing.assert_array_equal(batch.times, [0.0, 2.25, 2.25, 5.5, 99.999])
    assert plan.expected_requests() == 5
    assert np.all(batch.input_tokens >= 1)


def test_csv_default_column(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("arrival_s\n3\n1\n2\n")
    plan = make_plan({"kind": "csv", "file": "a.csv"}, duration=10.0, base_dir=tmp_path)
    np.testing.assert_array_equal(collect(plan).times, [1.0, 2.0, 3.0])


def test_csv_missing_column_names_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("when,who\n1,a\n")
    with pytest.raises(ConfigError) as caught:
        make_plan({"kind": "csv", "file": "bad.csv"}, duration=10.0, base_dir=tmp_path)
    (issue,) = caught.value.issues
    assert issue.file.endswith("bad.csv")
    assert issue.field == "arrival_s"
    assert "bad.csv" in str(caught.value) and "arrival_s" in str(caught.value)
    assert "when, who" in issue.message


def test_csv_non_numeric_value_names_file_column_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("arrival_s\n1\n2\n\nsoon\n4\n")
    with pytest.raises(ConfigError) as caught:
        make_plan({"kind": "csv", "file": "bad.csv"}, duration=10.0, base_dir=tmp_path)
    (issue,) = caught.value.issues
    assert issue.file.endswith("bad.csv") and issue.field == "arrival_s"
    assert issue.line == 5
    assert "'soon'" in issue.message


def test_csv_empty_value_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "gap.csv").write_text("arrival_s,x\n1,a\n,b\n")
    with pytest.raises(ConfigError, match=r"gap\.csv:3: arrival_s"):
        make_plan({"kind": "csv", "file": "gap.csv"}, duration=10.0, base_dir=tmp_path)


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.csv.*arrival_s"):
        make_plan({"kind": "csv", "file": "nowhere.csv"}, duration=10.0, base_dir=tmp_path)


# -- the mix and token sizes -------------------------------------------------------------


def test_tenant_and_task_fractions_follow_shares() -> None:
    plan = make_plan(
        {"kind": "poisson", "rate": 100.0},
        duration=1000.0,
        tenants={"a": 1.0, "b": 3.0},
        tasks=[{"name": "x", "share": 2}, {"name": "y", "share": 1}, {"name": "z", "share": 1}],
    )
    assert plan.tenants == ("a", "b")
    assert [task.name for task in plan.tasks] == ["x", "y", "z"]
    batch = collect(plan)
    tenant_fractions = np.bincount(batch.tenant, minlength=2) / len(batch)
    task_fractions = np.bincount(batch.task, minlength=3) / len(batch)
    np.testing.assert_allclose(tenant_fractions, [0.25, 0.75], atol=0.01)
    np.testing.assert_allclose(task_fractions, [0.5, 0.25, 0.25], atol=0.01)


def test_token_medians_p99_and_output_cap() -> None:
    plan = make_plan(
        {"kind": "poisson", "rate": 200.0},
        duration=1000.0,
        tasks=[
            {
                "name": "chat",
                "input_tokens": {"median": 800, "p99": 6000},
                "output_tokens": {"median": 300, "p99": 1500},
            },
            {
                "name": "capped",
                "output_tokens": {"median": 400, "p99": 4000},
                "max_output_tokens": 1000,
            },
            {
                "name": "tiny",
                "input_tokens": {"median": 1, "p99": 40},
                "output_tokens": {"median": 5, "p99": 5},
            },
        ],
    )
    batch = collect(plan)
    assert batch.input_tokens.dtype == np.int64 and batch.output_tokens.dtype == np.int64
    chat, capped, tiny = (batch.task == i for i in range(3))
    assert np.median(batch.input_tokens[chat]) == pytest.approx(800, rel=0.03)
    assert np.percentile(batch.input_tokens[chat], 99) == pytest.approx(6000, rel=0.05)
    assert np.median(batch.output_tokens[chat]) == pytest.approx(300, rel=0.03)
    assert np.percentile(batch.output_tokens[chat], 99) == pytest.approx(1500, rel=0.05)
    # Capped at max_output_tokens (about 18 % of this distribution lies above it).
    assert batch.output_tokens[capped].max() == 1000
    assert np.mean(batch.output_tokens[capped] == 1000) == pytest.approx(0.18, abs=0.02)
    assert np.median(batch.output_tokens[capped]) == pytest.approx(400, rel=0.03)
    # Never below one token; median == p99 means a constant.
    assert batch.input_tokens[tiny].min() == 1
    assert np.all(batch.input_tokens >= 1) and np.all(batch.output_tokens >= 1)
    assert np.all(batch.output_tokens[tiny] == 5)


def test_anonymous_tenant_when_none_named() -> None:
    plan = make_plan({"kind": "poisson", "rate": 10.0}, duration=100.0)
    assert plan.tenants == ("",)
    assert [task.name for task in plan.tasks] == ["default"]
    batch = collect(plan)
    assert len(batch) > 0
    assert np.all(batch.tenant == 0) and np.all(batch.task == 0)


# -- reproducibility and batching --------------------------------------------------------

KINDS: list[dict[str, Any]] = [
    {"kind": "poisson", "rate": 30.0},
    {"kind": "diurnal", "mean_rate": 30.0, "period": 600, "peak_at": 100},
    {
        "kind": "bursts",
        "rate": 5.0,
        "bursts": [{"start": 100, "duration": 200, "rate": 50.0, "task": "b"}],
    },
]
MIX: dict[str, Any] = {"tenants": {"t1": 1, "t2": 2}, "tasks": [{"name": "a"}, {"name": "b"}]}


def same(one: ArrivalBatch, other: ArrivalBatch) -> bool:
    return all(
        np.array_equal(getattr(one, name), getattr(other, name))
        for name in ("times", "tenant", "task", "input_tokens", "output_tokens")
    )


@pytest.mark.parametrize("arrivals", KINDS, ids=lambda a: a["kind"])
def test_same_seed_same_calls_other_seed_other_calls(arrivals: dict[str, Any]) -> None:
    first = collect(make_plan(arrivals, duration=1000.0, seed=7, **MIX))
    again = collect(make_plan(arrivals, duration=1000.0, seed=7, **MIX))
    other = collect(make_plan(arrivals, duration=1000.0, seed=8, **MIX))
    negative = collect(make_plan(arrivals, duration=1000.0, seed=-7, **MIX))
    assert same(first, again)
    assert not np.array_equal(first.times[:100], other.times[:100])
    assert not np.array_equal(first.times[:100], negative.times[:100])


@pytest.mark.parametrize("arrivals", KINDS, ids=lambda a: a["kind"])
def test_calls_do_not_depend_on_the_window(arrivals: dict[str, Any]) -> None:
    plan = make_plan(arrivals, duration=1000.0, seed=3, **MIX)
    reference = collect(plan, 60.0)
    for window in (0.37, 7.3, 250.0, 1e9):
        assert same(collect(plan, window), reference), window


def test_csv_attributes_do_not_depend_on_the_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = "\n".join(f"{t:.3f}" for t in rng.uniform(0, 500, 2000))
    (tmp_path / "t.csv").write_text("arrival_s\n" + values + "\n")
    plan = make_plan({"kind": "csv", "file": "t.csv"}, duration=500.0, base_dir=tmp_path, **MIX)
    assert same(collect(plan, 1.0), collect(plan, 77.0))


@pytest.mark.parametrize("arrivals", KINDS, ids=lambda a: a["kind"])
def test_batches_are_sorted_and_inside_their_windows(arrivals: dict[str, Any]) -> None:
    duration, window = 1000.0, 45.0  # the last window is short: [990, 1000)
    batches = list(make_plan(arrivals, duration=duration, **MIX).batches(window))
    assert len(batches) == math.ceil(duration / window)
    for k, batch in enumerate(batches):
        assert np.all(np.diff(batch.times) >= 0)
        if len(batch):
            assert batch.times[0] >= k * window
            assert batch.times[-1] < min((k + 1) * window, duration)
        assert len({len(getattr(batch, name)) for name in ArrivalBatch.__slots__}) == 1
    times = np.concatenate([batch.times for batch in batches])
    assert np.all(np.diff(times) >= 0)


def test_sparse_traffic_yields_every_window_even_empty() -> None:
    plan = make_plan({"kind": "poisson", "rate": 0.01}, duration=100.0)
    batches = list(plan.batches(1.0))
    assert len(batches) == 100
    assert sum(len(b) == 0 for b in batches) >= 90


def test_high_rate_spans_many_epochs() -> None:
    # At 200 000/s an epoch is a fraction of a second; windows straddle many of them.
    plan = make_plan({"kind": "poisson", "rate": 200_000.0}, duration=3.0)
    batches = list(plan.batches(1.0))
    times = np.concatenate([b.times for b in batches])
    assert within_sigmas(len(times), 600_000)
    assert np.all(np.diff(times) >= 0)
    assert same(ArrivalBatch.concat(batches), collect(plan, 0.01))


@pytest.mark.parametrize("window", [0.0, -1.0, math.inf, math.nan])
def test_bad_window_is_refused(window: float) -> None:
    plan = make_plan({"kind": "poisson", "rate": 1.0}, duration=10.0)
    with pytest.raises(ValueError, match="window_s"):
        next(plan.batches(window))


# -- expected_requests -------------------------------------------------------------------


def test_expected_requests_poisson() -> None:
    plan = make_plan({"kind": "poisson", "rate": 12.5}, duration=400.0)
    assert plan.expected_requests() == pytest.approx(5000.0)


def test_expected_requests_diurnal_partial_period() -> None:
    arrivals = {
        "kind": "diurnal",
        "mean_rate": 4.0,
        "peak_to_trough": 5.0,
        "peak_at": 3600,
        "period": 86400,
    }
    duration = 6 * 3600.0  # a quarter day around the peak: well above the mean
    plan = make_plan(arrivals, duration=duration)
    a = (5.0 - 1) / (5.0 + 1)
    t = np.linspace(0, duration, 200_001)
    rate = 4.0 * (1 + a * np.cos(2 * np.pi * (t - 3600) / 86400))
    integral = float(np.sum((rate[1:] + rate[:-1]) / 2 * np.diff(t)))
    assert plan.expected_requests() == pytest.approx(integral, rel=1e-6)
    assert plan.expected_requests() > 4.0 * duration
    assert within_sigmas(len(collect(plan).times), integral)


def test_expected_requests_bursts_and_csv(tmp_path: Path) -> None:
    plan = make_plan(
        {
            "kind": "bursts",
            "rate": 1.0,
            "bursts": [
                {"start": 10, "duration": 20, "rate": 3.0},
                {"start": 90, "duration": 50, "rate": 2.0},  # only 10 s inside the run
            ],
        },
        duration=100.0,
    )
    assert plan.expected_requests() == pytest.approx(100.0 + 60.0 + 20.0)
    (tmp_path / "c.csv").write_text("arrival_s\n1\n2\n200\n")
    csv_plan = make_plan({"kind": "csv", "file": "c.csv"}, duration=100.0, base_dir=tmp_path)
    assert csv_plan.expected_requests() == 2.0
