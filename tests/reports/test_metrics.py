"""Each metric's definition, checked on small hand-built traces (reports/README.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reports.metrics import (
    FaultWindow,
    compute_metrics,
    logical_requests,
    windowed,
)
from router.core.trace import ATTEMPT_COLUMNS, REQUEST_COLUMNS
from scenarios.schema import METRICS
from tests.reports.traces import (
    attempt,
    attempts_frame,
    context,
    fault,
    request,
    requests_frame,
)

# The `metrics` keys of results.json (DESIGN.md "Contracts").
CONTRACT_KEYS = {
    "requests",
    "availability",
    "availability_during_faults",
    "goodput_rps",
    "amplification",
    "amplification_peak",
    "ttd_s",
    "ttf_s",
    "ttr_s",
    "cost_usd",
    "cost_per_1k_requests_usd",
    "latency_p50_s",
    "latency_p99_s",
    "compliance_violations",
    "truncated_successes",
    "recovered",
}


def metrics(
    attempts: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    ctx: Any = None,
) -> dict[str, Any]:
    return compute_metrics(
        attempts_frame(attempts), requests_frame(requests), ctx if ctx else context()
    )


def steady(
    n: int, start: float, step: float, *, prefix: str, final: str = "ok"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`n` one-attempt requests arriving every `step` seconds from `start`."""
    attempts, requests = [], []
    for i in range(n):
        t = start + i * step
        rid = f"{prefix}{i}"
        attempts.append(attempt(rid, "a", t, t + 0.5, outcome="ok" if final == "ok" else "server"))
        requests.append(request(rid, t, t + 0.5, final=final))
    return attempts, requests


# --------------------------------------------------------------------------- contract


def test_every_contract_key_and_every_slo_metric_is_computed() -> None:
    m = metrics([attempt("r", "a", 1.0)], [request("r", 1.0)])
    assert m.keys() >= CONTRACT_KEYS
    assert set(METRICS) - {"score"} <= m.keys()
    assert "latency_p95_s" in m and "faults" in m


def test_metrics_are_plain_json() -> None:
    m = metrics(
        [attempt("r", "a", 1.0, reason="failover")],
        [request("r", 1.0)],
        context(fault(0.5, 5.0, "b")),
    )
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m


@pytest.mark.parametrize(
    ("attempts", "requests"),
    [
        (attempts_frame([]), requests_frame([])),
        (pd.DataFrame(), pd.DataFrame()),
    ],
    ids=["trace-columns", "no-columns"],
)
def test_empty_trace_gives_defined_or_none_metrics(
    attempts: pd.DataFrame, requests: pd.DataFrame
) -> None:
    ctx = context(fault(100.0, 200.0), fault(300.0, 1000.0, "b", open_ended=True))
    m = compute_metrics(attempts, requests, ctx)
    json.dumps(m, allow_nan=False)
    assert m["requests"] == 0
    assert m["cost_usd"] == 0.0
    assert m["goodput_rps"] == 0.0
    assert m["compliance_violations"] == 0 and m["truncated_successes"] == 0
    for key in (
        "availability",
        "availability_during_faults",
        "amplification",
        "amplification_peak",
        "ttd_s",
        "ttf_s",
        "ttr_s",
        "cost_per_1k_requests_usd",
        "latency_p50_s",
        "latency_p99_s",
        "recovered",
        "token_amplification",
        "success_first_try",
    ):
        assert m[key] is None, key
    assert m["fallback_depth"] == {} and m["reasons"] == {}
    assert [f["start"] for f in m["faults"]] == [100.0, 300.0]


def test_a_trace_with_a_missing_column_is_refused() -> None:
    requests = requests_frame([request("r", 1.0)]).drop(columns=["compliant"])
    with pytest.raises(ValueError, match="compliant"):
        compute_metrics(attempts_frame([]), requests, context())


def test_a_csv_round_trip_gives_the_same_metrics(tmp_path: Path) -> None:
    attempts = [
        attempt("r1", "a", 1.0, outcome="server", output_tokens=3),
        attempt("r1", "b", 2.0, reason="failover", output_tokens=7, number=2),
        attempt("r2", "a", 3.0, output_tokens=5),
    ]
    requests = [request("r1", 1.0, 3.0, served_by="b"), request("r2", 3.0, 4.0)]
    ctx = context(fault(0.0, 2.5, "a"))
    direct = metrics(attempts, requests, ctx)
    attempts_frame(attempts).to_csv(tmp_path / "a.csv", index=False)
    requests_frame(requests).to_csv(tmp_path / "r.csv", index=False)
    loaded = compute_metrics(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "r.csv"), ctx)
    assert loaded == direct
    assert loaded["reasons"] == {"failover": 1}


# --------------------------------------------------------------------------- logical requests


def test_client_retries_fold_into_one_logical_request() -> None:
    attempts = [
        attempt("r", "a", 10.0, 12.0, outcome="server"),
        attempt("r", "a", 20.0, 24.0),
    ]
    requests = [
        request("r", 10.0, 12.0, final="error", client_attempt=0),
        request("r", 20.0, 25.0, final="ok", client_attempt=1),
    ]
    m = metrics(attempts, requests)
    assert m["requests"] == 1
    assert m["availability"] == 1.0
    assert m["amplification"] == 2.0
    assert m["latency_p50_s"] == 15.0  # done of the last client attempt − first arrival
    assert m["client_retries"] == 1
    assert m["success_first_try"] == 0.0


def test_the_final_of_a_logical_request_is_its_last_client_attempt() -> None:
    requests = [
        request("r", 10.0, 11.0, final="ok", client_attempt=0, complete=True),
        request("r", 30.0, 31.0, final="error", client_attempt=2),
        request("r", 20.0, 21.0, final="error", client_attempt=1),
    ]
    logical = logical_requests(requests_frame(requests))
    assert logical.loc["r", "arrival_s"] == 10.0
    assert logical.loc["r", "final"] == "error"
    assert logical.loc["r", "done_s"] == 31.0
    assert logical.loc["r", "client_attempts"] == 3
    assert metrics([], requests)["availability"] == 0.0


# --------------------------------------------------------------------------- availability


def test_availability_is_ok_logical_requests_over_requests() -> None:
    requests = [
        request("r1", 1.0),
        request("r2", 2.0, final="error"),
        request("r3", 3.0, final="rejected"),
        request("r4", 4.0),
    ]
    assert metrics([], requests)["availability"] == 0.5


def test_availability_during_faults_counts_arrivals_inside_any_window() -> None:
    requests = [
        request("before", 5.0),  # outside
        request("in1", 10.0, final="error"),  # [10, 20): onset is inside
        request("in2", 19.9),
        request("edge", 20.0, final="error"),  # the end is outside
        request("in3", 50.0, final="error"),  # second window [40, 60)
    ]
    ctx = context(fault(10.0, 20.0), fault(40.0, 60.0, "b"))
    m = metrics([], requests, ctx)
    assert m["availability_during_faults"] == pytest.approx(1 / 3)
    assert metrics([], requests)["availability_during_faults"] is None  # no faults
    quiet = context(fault(100.0, 200.0))
    assert metrics([], requests, quiet)["availability_during_faults"] is None  # no arrivals


def test_goodput_counts_ok_complete_logical_requests_per_second() -> None:
    requests = [
        request("r1", 1.0),
        request("r2", 2.0, complete=False),  # truncated: not goodput
        request("r3", 3.0, final="error"),
        request("r4", 4.0),
    ]
    assert metrics([], requests, context(duration=10.0))["goodput_rps"] == 0.2


# --------------------------------------------------------------------------- amplification


def test_amplification_counts_attempt_rows_of_both_layers() -> None:
    attempts = [
        attempt("r1", "a", 1.0, outcome="server"),
        attempt("r1", "b", 2.0, reason="failover", number=2),
        attempt("r2", "a", 3.0, outcome="timeout"),
        attempt("r2", "a", 9.0),  # the client's retry
    ]
    requests = [
        request("r1", 1.0, 3.0, served_by="b"),
        request("r2", 3.0, 5.0, final="error"),
        request("r2", 9.0, 10.0, client_attempt=1),
    ]
    assert metrics(attempts, requests)["amplification"] == 2.0


def test_amplification_peak_is_the_worst_bucket_with_enough_arrivals() -> None:
    attempts, requests = [], []
    # Bucket [0, 60): 5 arrivals, 10 attempts → 2.0.
    for i in range(5):
        requests.append(request(f"x{i}", 10.0 + i))
        attempts += [attempt(f"x{i}", "a", 10.0 + i), attempt(f"x{i}", "b", 20.0 + i)]
    # Bucket [60, 120): 4 arrivals and 40 attempts → too few arrivals to count.
    for i in range(4):
        requests.append(request(f"y{i}", 70.0 + i))
        attempts += [attempt(f"y{i}", "a", 70.0 + i + k) for k in range(10)]
    # Bucket [120, 180): 6 arrivals; 6 attempts, plus 3 started at 180.0 (next bucket).
    for i in range(6):
        requests.append(request(f"z{i}", 120.0 + i))
        attempts.append(attempt(f"z{i}", "a", 120.0 + i))
    attempts += [attempt(f"z{i}", "a", 180.0) for i in range(3)]
    m = metrics(attempts, requests)
    assert m["amplification_peak"] == 2.0
    assert m["amplification"] == pytest.approx(len(attempts) / 15)


def test_amplification_peak_is_none_without_a_busy_bucket() -> None:
    requests = [request(f"r{i}", 60.0 * i) for i in range(10)]  # one per bucket
    attempts = [attempt(f"r{i}", "a", 60.0 * i) for i in range(10)]
    assert metrics(attempts, requests)["amplification_peak"] is None


def test_token_amplification_is_billed_over_answered_output_tokens() -> None:
    attempts = [
        attempt("r1", "a", 1.0, 2.0, outcome="stream_cut", output_tokens=50),
        attempt("r1", "b", 2.0, 3.0, reason="failover", output_tokens=100, number=2),
        # A client retry's answer arrives after the client had given up on the first call.
        attempt("r2", "a", 4.0, 30.0, output_tokens=40),
        attempt("r2", "a", 20.0, 22.0, output_tokens=40),
    ]
    requests = [
        request("r1", 1.0, 3.0, served_by="b"),
        request("r2", 4.0, 19.0, final="error"),
        request("r2", 20.0, 22.0, served_by="a", client_attempt=1),
    ]
    m = metrics(attempts, requests)
    assert m["token_amplification"] == pytest.approx(230 / 140)
    only_failures = [attempt("r", "a", 1.0, outcome="server", output_tokens=5)]
    assert metrics(only_failures, [request("r", 1.0, final="error")])["token_amplification"] is None


# --------------------------------------------------------------------------- TTD, TTF, TTR


def _fault_trace() -> list[dict[str, Any]]:
    return [
        attempt("p", "b", 90.0, 95.0, reason="breaker_open"),  # before onset: ignored
        attempt("p2", "b", 95.0, 101.0),  # ok on the alternate, started before onset
        attempt("q", "a", 105.0, 106.0),  # ok, but on the faulted deployment
        attempt("r", "b", 108.0, 118.0, reason="failover"),  # first alternate success: 18 s
        attempt("s", "b", 112.0, 114.0, reason="failover"),  # ...ends first: 14 s
        attempt("t", "b", 130.0, 131.0, reason="breaker_open"),  # TTD 30 s...
        attempt("u", "c", 120.0, 121.0, reason="domain_suspect", outcome="server"),  # ...20 s
        attempt("v", "a", 210.0, 215.0, outcome="server"),  # after the end, failed
        attempt("w", "c", 220.0, 222.0),  # ok on a target that is no primary
        attempt("x", "a", 230.0, 240.0),  # first ok on the primary: TTR 40 s
        attempt("y", "a", 190.0, 250.0),  # started during the fault: not counted
    ]


def test_ttd_ttf_ttr_for_the_first_fault() -> None:
    ctx = context(fault(100.0, 200.0, "a", "c"), primaries=frozenset({"a", "z"}))
    m = metrics(_fault_trace(), [], ctx)
    assert m["ttd_s"] == 20.0
    assert m["ttf_s"] == 14.0
    assert m["ttr_s"] == 40.0
    assert m["faults"] == [
        {
            "start": 100.0,
            "end": 200.0,
            "open_ended": False,
            "targets": ["a", "c"],
            "ttd_s": 20.0,
            "ttf_s": 14.0,
            "ttr_s": 40.0,
        }
    ]


def test_ttd_is_none_without_a_routing_away_decision_during_the_fault() -> None:
    attempts = [
        attempt("p", "b", 90.0, reason="breaker_open"),
        attempt("q", "b", 150.0, reason="failover"),
        attempt("r", "b", 200.0, reason="breaker_open"),  # at the end: too late
    ]
    assert metrics(attempts, [], context(fault(100.0, 200.0)))["ttd_s"] is None


def test_ttd_counts_a_request_refused_because_every_candidate_was_routed_away() -> None:
    requests = [request("r", 110.0, 112.5, final="error", reason="breaker_open")]
    assert metrics([], requests, context(fault(100.0, 200.0)))["ttd_s"] == 12.5


def test_ttf_none_without_an_alternate_success() -> None:
    attempts = [attempt("r", "a", 150.0), attempt("s", "b", 160.0, outcome="server")]
    assert metrics(attempts, [], context(fault(100.0, 200.0)))["ttf_s"] is None


def test_ttr_none_for_open_ended_faults_and_faults_sparing_the_primaries() -> None:
    trace = _fault_trace()
    open_ended = context(fault(100.0, 1000.0, "a", open_ended=True))
    assert metrics(trace, [], open_ended)["ttr_s"] is None
    spares_primary = context(fault(100.0, 200.0, "c"), primaries=frozenset({"a"}))
    assert metrics(trace, [], spares_primary)["ttr_s"] is None
    never_back = [a for a in trace if a["request_id"] not in {"x", "q"}]
    assert metrics(never_back, [], context(fault(100.0, 200.0)))["ttr_s"] is None


def test_top_level_timings_follow_the_earliest_fault_and_every_fault_is_listed() -> None:
    attempts = [
        attempt("r", "b", 20.0, reason="breaker_open"),  # for the fault at 10
        attempt("s", "b", 305.0, reason="breaker_open"),  # for the fault at 300
    ]
    ctx = context(fault(300.0, 400.0), fault(10.0, 50.0))  # listed out of order
    m = metrics(attempts, [], ctx)
    assert m["ttd_s"] == 10.0
    assert [(f["start"], f["ttd_s"]) for f in m["faults"]] == [(300.0, 5.0), (10.0, 10.0)]


# --------------------------------------------------------------------------- cost, latency


def test_cost_sums_every_attempt_including_failed_ones() -> None:
    attempts = [
        attempt("r1", "a", 1.0, outcome="server", cost=0.25),
        attempt("r1", "b", 2.0, cost=0.5, number=2),
        attempt("r2", "a", 3.0, cost=0.25),
    ]
    requests = [
        request("r1", 1.0, served_by="b"),
        request("r2", 3.0),
        request("r3", 4.0, final="rejected"),
        request("r4", 5.0),
    ]
    m = metrics(attempts, requests)
    assert m["cost_usd"] == 1.0
    assert m["cost_per_1k_requests_usd"] == 250.0


def test_latency_percentiles_over_ok_logical_requests() -> None:
    latencies = [1.0, 2.0, 3.0, 4.0, 100.0]
    requests = [request(f"r{i}", 10.0 * i, 10.0 * i + x) for i, x in enumerate(latencies)]
    requests.append(request("slow-failure", 0.0, 500.0, final="error"))
    m = metrics([], requests)
    assert m["latency_p50_s"] == pytest.approx(3.0)
    assert m["latency_p95_s"] == pytest.approx(float(np.percentile(latencies, 95)))
    assert m["latency_p99_s"] == pytest.approx(float(np.percentile(latencies, 99)))
    assert metrics([], [request("r", 0.0, final="error")])["latency_p50_s"] is None


# --------------------------------------------------------------------------- hard failures


def test_compliance_violations_and_truncated_successes_count_rows() -> None:
    requests = [
        request("r1", 1.0, compliant=False),
        request("r1", 5.0, compliant=False, client_attempt=1),
        request("r2", 2.0, complete=False),
        request("r3", 3.0, final="error", complete=False),  # not a success
        request("r4", 4.0),
    ]
    m = metrics([], requests)
    assert m["compliance_violations"] == 2
    assert m["truncated_successes"] == 1


# --------------------------------------------------------------------------- recovered


def _recovery_trace(
    baseline_ok: int, baseline_err: int, window_ok: int, window_err: int, at: float = 450.0
) -> list[dict[str, Any]]:
    rows = [request(f"b{i}", 1.0 + i) for i in range(baseline_ok)]
    rows += [request(f"be{i}", 100.0 + i, final="error") for i in range(baseline_err)]
    rows += [request(f"w{i}", at + i) for i in range(window_ok)]
    rows += [request(f"we{i}", at + 50.0 + i, final="error") for i in range(window_err)]
    return rows


# fault [200, 400), recovery window 300 s: the check window is [400, 700).
RECOVERY_CTX = context(fault(200.0, 400.0), duration=1000.0, recovery_window=300.0)


def test_recovered_when_the_check_window_is_back_to_baseline() -> None:
    m = metrics([], _recovery_trace(25, 0, 19, 1), RECOVERY_CTX)
    assert m["recovered"] is True  # 0.95 ≥ 0.95 × 1.0
    assert m["recovery"]["start"] == 400.0 and m["recovery"]["end"] == 700.0


def test_not_recovered_below_95_percent_of_baseline() -> None:
    m = metrics([], _recovery_trace(25, 0, 18, 2), RECOVERY_CTX)
    assert m["recovered"] is False  # 0.9 < 0.95


def test_the_baseline_is_the_pre_fault_availability() -> None:
    # Pre-fault 20 of 25 ok (0.8): 0.8 after the fault is back to baseline (≥ 0.76).
    assert metrics([], _recovery_trace(20, 5, 8, 2), RECOVERY_CTX)["recovered"] is True
    # With fewer than 20 pre-fault requests the baseline is 1.0, so 0.8 is not enough.
    assert metrics([], _recovery_trace(15, 4, 8, 2), RECOVERY_CTX)["recovered"] is False


def test_only_the_last_300_s_of_the_recovery_window_is_checked() -> None:
    ctx = context(fault(200.0, 400.0), duration=2000.0, recovery_window=600.0)  # [700, 1000)
    rows = _recovery_trace(25, 0, 0, 30, at=420.0)  # failures right after the fault...
    rows += [request(f"late{i}", 800.0 + i) for i in range(10)]  # ...then all well
    m = metrics([], rows, ctx)
    assert (m["recovery"]["start"], m["recovery"]["end"]) == (700.0, 1000.0)
    assert m["recovered"] is True


def test_the_check_window_is_clipped_to_the_run() -> None:
    ctx = context(fault(200.0, 400.0), duration=500.0, recovery_window=300.0)
    m = metrics([], _recovery_trace(25, 0, 10, 0, at=450.0), ctx)
    assert (m["recovery"]["start"], m["recovery"]["end"]) == (400.0, 500.0)
    assert m["recovered"] is True


def test_recovered_is_none_with_too_few_arrivals_in_the_check_window() -> None:
    assert metrics([], _recovery_trace(25, 0, 4, 0), RECOVERY_CTX)["recovered"] is None


def test_recovered_is_none_when_no_fault_closes() -> None:
    rows = _recovery_trace(25, 0, 10, 0)
    assert metrics([], rows, context())["recovered"] is None  # no faults at all
    open_ended = context(fault(200.0, 1000.0, open_ended=True))
    assert metrics([], rows, open_ended)["recovered"] is None
    ends_with_run = context(fault(200.0, 1000.0))
    assert metrics([], rows, ends_with_run)["recovered"] is None


def test_recovery_is_checked_after_the_last_closing_fault() -> None:
    ctx = context(
        fault(200.0, 300.0),
        fault(350.0, 400.0, "b"),
        fault(380.0, 1000.0, "c", open_ended=True),  # ignored
        recovery_window=300.0,
    )
    m = metrics([], _recovery_trace(25, 0, 19, 1), ctx)
    assert (m["recovery"]["start"], m["recovery"]["end"]) == (400.0, 700.0)
    assert m["recovered"] is True


# --------------------------------------------------------------------------- breakdowns


def test_breakdowns_by_deployment_reason_depth_and_first_try() -> None:
    attempts = [
        attempt("r1", "a", 1.0),
        attempt("r2", "a", 2.0, outcome="server"),
        attempt("r2", "a", 3.0, reason="retry", outcome="server", number=2),
        attempt("r2", "b", 4.0, reason="failover", number=3),
        attempt("r3", "b", 5.0, reason="breaker_open"),
        attempt("r3", "b", 9.0),  # client retry on the same deployment
    ]
    requests = [
        request("r1", 1.0),
        request("r2", 2.0, 5.0, served_by="b"),
        request("r3", 5.0, 6.0, final="error"),
        request("r3", 9.0, 10.0, served_by="b", client_attempt=1),
        request("r4", 6.0, final="rejected", reason="tenant_cap"),
        request("r5", 7.0, final="rejected", reason="tenant_cap"),
        request("r6", 8.0, final="rejected", reason="residency"),
    ]
    m = metrics(attempts, requests)
    assert m["attempts"] == 6
    assert m["attempts_by_deployment"] == {"a": 3, "b": 3}
    assert m["reasons"] == {"breaker_open": 1, "failover": 1, "retry": 1}
    assert m["rejected_reasons"] == {"residency": 1, "tenant_cap": 2}
    assert m["fallback_depth"] == {"0": 3, "1": 2, "2": 1}
    assert m["success_first_try"] == pytest.approx(2 / 6)


# --------------------------------------------------------------------------- windowed


def test_windowed_gives_per_bucket_series() -> None:
    attempts = [
        attempt("r1", "a", 10.0, 11.0, outcome="server", cost=0.1),
        attempt("r1", "b", 11.0, 12.0, reason="failover", cost=0.2, number=2),
        attempt("r2", "a", 70.0, 75.0, cost=0.1),
    ]
    requests = [
        request("r1", 10.0, 12.0, served_by="b"),
        request("r2", 70.0, 75.0),
        request("r3", 80.0, 81.0, final="error"),
    ]
    w = windowed(attempts_frame(attempts), requests_frame(requests), duration=180.0)
    assert list(w["start_s"]) == [0.0, 60.0, 120.0]
    assert list(w["arrivals"]) == [1, 2, 0]
    assert list(w["ok"]) == [1, 1, 0]
    assert list(w["attempts"]) == [2, 1, 0]
    assert w["availability"].iloc[1] == 0.5 and math.isnan(w["availability"].iloc[2])
    assert w["amplification"].iloc[0] == 2.0
    assert w["cost_usd"].iloc[0] == pytest.approx(0.3)
    assert w["latency_p99_s"].iloc[1] == 5.0 and math.isnan(w["latency_p99_s"].iloc[2])
    assert list(w["attempts:a"]) == [1, 1, 0] and list(w["attempts:b"]) == [1, 0, 0]
    assert w["goodput_rps"].iloc[0] == pytest.approx(1 / 60)


def test_windowed_of_an_empty_trace_is_empty() -> None:
    w = windowed(
        pd.DataFrame(columns=list(ATTEMPT_COLUMNS)), pd.DataFrame(columns=list(REQUEST_COLUMNS))
    )
    assert len(w) == 0 and "availability" in w.columns


def test_fault_window_rejects_an_end_before_its_start() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        FaultWindow(start=10.0, end=5.0, targets=frozenset({"a"}))


def test_time_to_first_token_percentiles_count_ok_attempts_only() -> None:
    rows = [attempt(f"r{i}", "a", float(i)) for i in range(101)]
    for i, row in enumerate(rows):
        row["ttft_s"] = float(i) / 100
    failed = attempt("x", "a", 5.0, outcome="server")
    failed["ttft_s"] = 50.0
    att = attempts_frame([*rows, failed])
    req = requests_frame([request(f"r{i}", float(i)) for i in range(101)] + [request("x", 5.0)])
    got = compute_metrics(att, req, context())
    assert got["ttft_p50_s"] == pytest.approx(0.5)
    assert got["ttft_p99_s"] == pytest.approx(0.99)
    assert compute_metrics(att.iloc[:0], req.iloc[:0], context())["ttft_p50_s"] is None


def test_token_amplification_peak_finds_the_bucket_that_paid_twice() -> None:
    rows, requests = [], []
    for i in range(10):
        ok = attempt(f"q{i}", "a", float(i), output_tokens=100)
        rows.append(ok)
        requests.append(request(f"q{i}", float(i), done=float(i) + 1.0))
    for i in range(10):
        start = 120.0 + i
        rows.append(attempt(f"s{i}", "a", start, outcome="stream_cut", output_tokens=100))
        rows.append(attempt(f"s{i}", "b", start + 0.5, number=2, output_tokens=100))
        requests.append(request(f"s{i}", start, done=start + 1.5, served_by="b"))
    got = compute_metrics(attempts_frame(rows), requests_frame(requests), context())
    assert got["token_amplification"] == pytest.approx(30 / 20)
    assert got["token_amplification_peak"] == pytest.approx(2.0)
