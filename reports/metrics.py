"""Metrics over a trace: pure functions of the attempt and request tables (DESIGN.md "Metrics").

Everything here reads only the trace schema of `router.core.trace`, so a simulated
run and a live run of one scenario are measured by the same code. The functions
never touch a driver, a clock or the disk; `compute_metrics` gathers them into the
`metrics` object of results.json.

Vocabulary used throughout:

* A **logical request** is every request row with one `request_id`: client-side
  retries reuse the id with `client_attempt` 1, 2, ... Its *arrival* is the
  `arrival_s` of its lowest `client_attempt` row (normally 0); its *final*,
  *done* and *complete* are those of its highest `client_attempt` row.
* An **attempt** is one attempt row (both retry layers, every deployment).
* A **fault window** is `[start, end)`; an open-ended fault runs to the end of the run.
* A metric that is undefined (no requests, no faults, nothing observed) is `None`
  (JSON `null`), never a made-up number.

The single-metric functions take frames with trace dtypes: `normalise_attempts`
and `normalise_requests` give them (CSV reads "" as NaN, booleans as text, ...);
`logical_requests` folds client retries. `compute_metrics` does all of that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from router.core.trace import ATTEMPT_COLUMNS, REQUEST_COLUMNS

__all__ = [
    "ROUTED_AWAY_REASONS",
    "FaultWindow",
    "RunContext",
    "amplification",
    "amplification_peak",
    "attempts_by_deployment",
    "availability",
    "availability_during_faults",
    "compliance_violations",
    "compute_metrics",
    "cost_usd",
    "fallback_depth",
    "fault_timings",
    "goodput_rps",
    "latency_percentiles",
    "logical_requests",
    "normalise_attempts",
    "normalise_requests",
    "reason_counts",
    "recovery_check",
    "rejected_reasons",
    "success_first_try",
    "time_to_detect",
    "time_to_failover",
    "time_to_return",
    "token_amplification",
    "truncated_successes",
    "windowed",
]

ROUTED_AWAY_REASONS: frozenset[str] = frozenset({"breaker_open", "domain_suspect"})
"""Trace reasons that mark the engine routing away from a failing deployment (TTD).

The values of `router.core.reasons.ROUTED_AWAY`, spelled out here because
`reports` may import only the trace schema (tests/test_architecture.py).
"""

PEAK_BUCKET_S = 60.0
"""Width of the buckets `amplification_peak` maximises over."""
PEAK_MIN_ARRIVALS = 5
"""A bucket with fewer logical arrivals is too small to say anything about amplification."""
BASELINE_MIN_REQUESTS = 20
"""Fewer pre-fault requests than this and the recovery baseline is taken as 1.0."""
RECOVERY_CHECK_S = 300.0
"""The recovery check looks at (at most) this much time at the end of the recovery window."""
RECOVERY_MIN_ARRIVALS = 5
"""Fewer arrivals in the recovery check window and `recovered` is undefined (None)."""
RECOVERY_FRACTION = 0.95
"""Recovered means availability back to at least this fraction of the pre-fault baseline."""

_LOGICAL_COLUMNS = ("arrival_s", "done_s", "final", "complete", "client_attempts", "latency_s")


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When a fault is on and which deployments it hits."""

    start: float
    end: float  # the run's end for open-ended faults
    targets: frozenset[str]  # deployment ids the fault hits
    open_ended: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError("a fault window needs finite start and end")
        if self.end < self.start:
            raise ValueError(f"fault window ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True, slots=True)
class RunContext:
    """What the trace alone does not say: run length, fault windows, recovery window, primaries."""

    duration: float
    faults: tuple[FaultWindow, ...]
    recovery_window: float
    primaries: frozenset[str]  # first target deployment of each route used

    @property
    def first_fault(self) -> FaultWindow | None:
        """The fault with the earliest onset (the first listed among equals), or None."""
        if not self.faults:
            return None
        return min(self.faults, key=lambda f: f.start)


# --------------------------------------------------------------------------- normalisation


def _frame(df: pd.DataFrame | None, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of `df` with every trace column present (empty frames may lack columns)."""
    columns = list(columns)
    if df is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    missing = [c for c in columns if c not in df.columns]
    if missing and len(df) > 0:
        raise ValueError(f"trace lacks columns: {', '.join(missing)}")
    out = df.copy()
    for c in missing:
        out[c] = pd.Series(dtype=object)
    return out


def _floats(series: pd.Series, default: float = 0.0) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").fillna(default).astype(float)


def _strings(series: pd.Series) -> pd.Series:
    # CSV turns "" into NaN; the trace means "".
    return series.astype(object).where(series.notna(), "").astype(str)


def _bools(series: pd.Series, default: bool) -> pd.Series:
    def one(value: Any) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return default
        if isinstance(value, str):
            text = value.strip().lower()
            if text in {"true", "1", "yes"}:
                return True
            if text in {"false", "0", "no"}:
                return False
            return default
        return bool(value)

    if series.dtype == bool:
        return series
    return series.map(one).astype(bool)


def normalise_attempts(attempts: pd.DataFrame | None) -> pd.DataFrame:
    """Attempt rows with trace dtypes: float times, str ids, "" for an empty reason."""
    att = _frame(attempts, ATTEMPT_COLUMNS)
    for c in ("request_id", "deployment", "outcome", "reason", "route", "tenant", "task"):
        att[c] = _strings(att[c])
    for c in ("start_s", "end_s", "arrival_s", "ttft_s"):
        att[c] = _floats(att[c], math.nan)
    for c in ("cost_usd", "input_tokens", "output_tokens", "attempt"):
        att[c] = _floats(att[c])
    return att


def normalise_requests(requests: pd.DataFrame | None) -> pd.DataFrame:
    """Request rows with trace dtypes (booleans parsed, missing `client_attempt` taken as 0)."""
    req = _frame(requests, REQUEST_COLUMNS)
    for c in ("request_id", "final", "served_by", "reason", "route", "tenant", "task"):
        req[c] = _strings(req[c])
    for c in ("arrival_s", "done_s"):
        req[c] = _floats(req[c], math.nan)
    req["cost_usd"] = _floats(req["cost_usd"])
    req["client_attempt"] = _floats(req["client_attempt"]).astype(int)
    req["complete"] = _bools(req["complete"], default=True)
    req["compliant"] = _bools(req["compliant"], default=True)
    return req


def logical_requests(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per logical request (index `request_id`), however many client retries it took.

    Columns: `arrival_s` (of the lowest `client_attempt` row), `done_s`, `final` and
    `complete` (of the highest `client_attempt` row, the latest `done_s` among
    equals), `client_attempts` (request rows it has) and `latency_s` = done − arrival.
    """
    req = normalise_requests(requests)
    if len(req) == 0:
        empty = pd.DataFrame(
            {
                "arrival_s": pd.Series(dtype=float),
                "done_s": pd.Series(dtype=float),
                "final": pd.Series(dtype=object),
                "complete": pd.Series(dtype=bool),
                "client_attempts": pd.Series(dtype=int),
                "latency_s": pd.Series(dtype=float),
            }
        )
        empty.index.name = "request_id"
        return empty
    ordered = req.sort_values(["request_id", "client_attempt", "done_s"], kind="stable")
    first = ordered.drop_duplicates("request_id", keep="first").set_index("request_id")
    last = ordered.drop_duplicates("request_id", keep="last").set_index("request_id")
    out = pd.DataFrame(
        {
            "arrival_s": first["arrival_s"],
            "done_s": last["done_s"],
            "final": last["final"],
            "complete": last["complete"],
            "client_attempts": ordered.groupby("request_id").size(),
        }
    )
    out["latency_s"] = out["done_s"] - out["arrival_s"]
    out.index.name = "request_id"
    return out[list(_LOGICAL_COLUMNS)]


def _ok(logical: pd.DataFrame) -> pd.Series:
    return logical["final"] == "ok"


def _in_windows(times: pd.Series, windows: Iterable[FaultWindow]) -> pd.Series:
    mask = pd.Series(False, index=times.index)
    for w in windows:
        mask |= (times >= w.start) & (times < w.end)
    return mask


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


# --------------------------------------------------------------------------- metrics


def availability(logical: pd.DataFrame) -> float | None:
    """Logical requests whose final is `ok` ÷ logical requests (None without requests)."""
    return _ratio(int(_ok(logical).sum()), len(logical))


def availability_during_faults(
    logical: pd.DataFrame, faults: Iterable[FaultWindow]
) -> float | None:
    """`availability` over logical requests arriving inside any fault window `[start, end)`.

    None when there are no faults or no request arrived during one.
    """
    windows = list(faults)
    if not windows:
        return None
    inside = logical[_in_windows(logical["arrival_s"], windows)]
    return availability(inside)


def goodput_rps(logical: pd.DataFrame, duration: float) -> float | None:
    """Logical requests that ended `ok` with a complete answer ÷ run duration (s)."""
    good = int((_ok(logical) & logical["complete"].astype(bool)).sum())
    return None if duration <= 0 else good / float(duration)


def amplification(attempts: pd.DataFrame, logical: pd.DataFrame) -> float | None:
    """Attempt rows (router retries, failovers and client retries alike) ÷ logical requests."""
    return _ratio(len(attempts), len(logical))


def _bucket_counts(
    attempts: pd.DataFrame, logical: pd.DataFrame, bucket_s: float
) -> tuple[pd.Series, pd.Series]:
    """Logical arrivals and attempt starts per bucket index ⌊t / bucket_s⌋."""
    arrivals = np.floor(logical["arrival_s"].dropna() / bucket_s).astype(int).value_counts()
    started = np.floor(attempts["start_s"].dropna() / bucket_s).astype(int).value_counts()
    return arrivals, started


def amplification_peak(
    attempts: pd.DataFrame,
    logical: pd.DataFrame,
    bucket_s: float = PEAK_BUCKET_S,
    min_arrivals: int = PEAK_MIN_ARRIVALS,
) -> float | None:
    """Max over consecutive `bucket_s` buckets `[k·b, (k+1)·b)` of attempts started in the
    bucket ÷ logical requests arriving in it, over buckets with ≥ `min_arrivals` arrivals.

    None when no bucket has enough arrivals.
    """
    arrivals, started = _bucket_counts(attempts, logical, bucket_s)
    busy = arrivals[arrivals >= min_arrivals]
    if busy.empty:
        return None
    ratios = started.reindex(busy.index, fill_value=0) / busy
    return float(ratios.max())


def time_to_detect(
    attempts: pd.DataFrame, fault: FaultWindow, requests: pd.DataFrame | None = None
) -> float | None:
    """TTD: fault onset → the first decision routing away, in seconds.

    A decision is an attempt whose `reason` is in `ROUTED_AWAY_REASONS` (breaker
    open, domain suspected), timed at its `start_s`; a request row ending with such
    a reason (every candidate skipped) counts too, timed at its `done_s`. Only
    decisions in `[onset, fault end)` count; None if there is none.
    """
    times: list[float] = []
    routed = attempts[attempts["reason"].isin(ROUTED_AWAY_REASONS)]["start_s"]
    times.extend(routed[(routed >= fault.start) & (routed < fault.end)].tolist())
    if requests is not None and len(requests):
        refused = requests[requests["reason"].isin(ROUTED_AWAY_REASONS)]["done_s"]
        times.extend(refused[(refused >= fault.start) & (refused < fault.end)].tolist())
    return min(times) - fault.start if times else None


def time_to_failover(attempts: pd.DataFrame, fault: FaultWindow) -> float | None:
    """TTF: fault onset → the first success via an alternate, in seconds.

    The first `ok` attempt (by `end_s`, the moment it succeeded) that started at or
    after onset on a deployment *not* among the fault's targets; None if none.
    """
    ok = attempts[
        (attempts["outcome"] == "ok")
        & (attempts["start_s"] >= fault.start)
        & ~attempts["deployment"].isin(fault.targets)
    ]
    return None if ok.empty else float(ok["end_s"].min()) - fault.start


def time_to_return(
    attempts: pd.DataFrame, fault: FaultWindow, primaries: frozenset[str]
) -> float | None:
    """TTR: fault end → the first success on a primary again, in seconds.

    The first `ok` attempt (by `end_s`) that started at or after the fault's end on a
    deployment in targets ∩ primaries. None for an open-ended fault, when the fault
    hit no primary, or when no such success happened.
    """
    hit = fault.targets & primaries
    if fault.open_ended or not hit:
        return None
    ok = attempts[
        (attempts["outcome"] == "ok")
        & (attempts["start_s"] >= fault.end)
        & attempts["deployment"].isin(hit)
    ]
    return None if ok.empty else float(ok["end_s"].min()) - fault.end


def fault_timings(
    attempts: pd.DataFrame,
    fault: FaultWindow,
    primaries: frozenset[str],
    requests: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """`{start, end, open_ended, targets, ttd_s, ttf_s, ttr_s}` for one fault window."""
    return {
        "start": float(fault.start),
        "end": float(fault.end),
        "open_ended": fault.open_ended,
        "targets": sorted(fault.targets),
        "ttd_s": time_to_detect(attempts, fault, requests),
        "ttf_s": time_to_failover(attempts, fault),
        "ttr_s": time_to_return(attempts, fault, primaries),
    }


def cost_usd(attempts: pd.DataFrame) -> float:
    """Σ `cost_usd` over every attempt row, failed ones included (as the vendor bills them)."""
    return float(attempts["cost_usd"].sum()) if len(attempts) else 0.0


def latency_percentiles(
    logical: pd.DataFrame, quantiles: Iterable[float] = (50, 95, 99)
) -> dict[float, float | None]:
    """End-to-end latency (done − arrival of the logical request) of `ok` logical requests.

    Percentiles use linear interpolation (numpy's default); None without ok requests.
    """
    qs = list(quantiles)
    latencies = logical.loc[_ok(logical), "latency_s"].dropna().to_numpy(dtype=float)
    if latencies.size == 0:
        return dict.fromkeys(qs)
    values = np.percentile(latencies, qs)
    return {q: float(v) for q, v in zip(qs, values, strict=True)}


def ttft_percentiles(
    attempts: pd.DataFrame, quantiles: Iterable[float] = (50, 99)
) -> dict[float, float | None]:
    """Time to first token (`ttft_s`) of `ok` attempts; None without any."""
    qs = list(quantiles)
    ok = attempts["outcome"] == "ok"
    values = attempts.loc[ok, "ttft_s"].dropna().to_numpy(dtype=float)
    if values.size == 0:
        return dict.fromkeys(qs)
    return {q: float(v) for q, v in zip(qs, np.percentile(values, qs), strict=True)}


def compliance_violations(requests: pd.DataFrame) -> int:
    """Request rows with `compliant` false (served against residency/compliance rules)."""
    return int((~requests["compliant"].astype(bool)).sum())


def truncated_successes(requests: pd.DataFrame) -> int:
    """Request rows with final `ok` whose answer is not `complete` (cut short, shown as success)."""
    return int(((requests["final"] == "ok") & ~requests["complete"].astype(bool)).sum())


def recovery_check(logical: pd.DataFrame, context: RunContext) -> dict[str, Any] | None:
    """The metastability check behind `recovered`, with its workings.

    Only faults that close count (open-ended ones are ignored); None if no fault
    closes before the run ends. With `last_end` the latest end of those faults:

    * baseline = availability of logical requests arriving before the first fault's
      start (1.0 if fewer than 20 arrived);
    * check window = `[max(last_end, e − min(300 s, recovery_window)), e)` with
      `e = min(last_end + recovery_window, duration)`;
    * recovered = availability of the requests arriving in the check window
      ≥ 0.95 × baseline; None if fewer than 5 arrived there.
    """
    closed = [f for f in context.faults if not f.open_ended]
    if not any(f.end < context.duration for f in closed):
        return None
    first_start = min(f.start for f in context.faults)
    last_end = max(f.end for f in closed)
    before = logical[logical["arrival_s"] < first_start]
    measured = availability(before)
    baseline = measured if len(before) >= BASELINE_MIN_REQUESTS and measured is not None else 1.0
    end = min(last_end + context.recovery_window, context.duration)
    start = max(last_end, end - min(RECOVERY_CHECK_S, context.recovery_window))
    window = logical[(logical["arrival_s"] >= start) & (logical["arrival_s"] < end)]
    after = availability(window)
    enough = len(window) >= RECOVERY_MIN_ARRIVALS
    return {
        "baseline": baseline,
        "baseline_requests": len(before),
        "start": float(start),
        "end": float(end),
        "arrivals": len(window),
        "availability": after,
        "recovered": None if after is None or not enough else after >= RECOVERY_FRACTION * baseline,
    }


def _useful_answers(attempts: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """The `ok` attempt that answered each request row with final `ok`.

    It is the row's `ok` attempt on `served_by` whose `end_s` is closest to the row's
    `done_s` (one per row, so a hedge or an answer the client had already abandoned is
    billed but not useful). Columns: `start_s`, `output_tokens`.
    """
    empty = pd.DataFrame({"start_s": pd.Series(dtype=float), "output_tokens": []})
    answered = requests.loc[requests["final"] == "ok", ["request_id", "served_by", "done_s"]]
    ok = attempts.loc[
        attempts["outcome"] == "ok",
        ["request_id", "deployment", "start_s", "end_s", "output_tokens"],
    ]
    if answered.empty or ok.empty:
        return empty
    answered = answered.reset_index(drop=True)
    answered["row"] = answered.index
    pairs = answered.merge(
        ok, left_on=["request_id", "served_by"], right_on=["request_id", "deployment"]
    )
    if pairs.empty:
        return empty
    pairs["gap"] = (pairs["end_s"] - pairs["done_s"]).abs()
    chosen = pairs.sort_values(["row", "gap"], kind="stable").drop_duplicates("row")
    return chosen[["start_s", "output_tokens"]]


def token_amplification(attempts: pd.DataFrame, requests: pd.DataFrame) -> float | None:
    """Billed output tokens (every attempt) ÷ output tokens of the `ok` attempts that answered.

    None when no answer delivered a token.
    """
    billed = float(attempts["output_tokens"].sum()) if len(attempts) else 0.0
    useful = _useful_answers(attempts, requests)
    if useful.empty:
        return None
    return _ratio(billed, float(useful["output_tokens"].sum()))


def token_amplification_peak(
    attempts: pd.DataFrame,
    requests: pd.DataFrame,
    bucket_s: float = PEAK_BUCKET_S,
    min_answers: int = PEAK_MIN_ARRIVALS,
) -> float | None:
    """Max over `bucket_s` buckets of billed output tokens of attempts started in the bucket
    ÷ useful output tokens of the answers started in it, over buckets with ≥ `min_answers`
    answers. None when no bucket has enough.
    """
    useful = _useful_answers(attempts, requests)
    if useful.empty:
        return None
    answers = useful.groupby((useful["start_s"] // bucket_s).astype(int))["output_tokens"]
    counts, useful_tokens = answers.count(), answers.sum()
    busy = useful_tokens[(counts >= min_answers) & (useful_tokens > 0)]
    if busy.empty:
        return None
    billed = attempts.groupby((attempts["start_s"] // bucket_s).astype(int))["output_tokens"].sum()
    return float((billed.reindex(busy.index, fill_value=0) / busy).max())


def _counts(values: pd.Series) -> dict[str, int]:
    counted = values.value_counts()
    return {str(k): int(v) for k, v in sorted(counted.items(), key=lambda kv: str(kv[0]))}


def attempts_by_deployment(attempts: pd.DataFrame) -> dict[str, int]:
    """Attempt rows per deployment."""
    return _counts(attempts["deployment"])


def reason_counts(attempts: pd.DataFrame) -> dict[str, int]:
    """Attempt rows per non-empty `reason` (why the attempt went where it went)."""
    return _counts(attempts.loc[attempts["reason"] != "", "reason"])


def rejected_reasons(requests: pd.DataFrame) -> dict[str, int]:
    """Request rows with final `rejected`, per `reason` (`unspecified` for an empty one)."""
    rejected = requests.loc[requests["final"] == "rejected", "reason"]
    return _counts(rejected.where(rejected != "", "unspecified"))


def fallback_depth(attempts: pd.DataFrame, logical: pd.DataFrame) -> dict[str, int]:
    """How many logical requests tried n distinct deployments, as `{"n": count}`.

    Keys are strings so the dict reads back from JSON unchanged; a request that
    never reached a provider (rejected) has depth 0.
    """
    depth = (
        attempts.groupby("request_id")["deployment"].nunique()
        if len(attempts)
        else pd.Series(dtype=int)
    )
    per_request = depth.reindex(logical.index, fill_value=0).astype(int)
    counted = per_request.value_counts()
    return {str(int(k)): int(v) for k, v in sorted(counted.items())}


def success_first_try(attempts: pd.DataFrame, logical: pd.DataFrame) -> float | None:
    """Fraction of logical requests whose first attempt (earliest `start_s`) ended `ok`.

    A request with no attempt at all (rejected) did not succeed first try.
    """
    if len(logical) == 0:
        return None
    if len(attempts) == 0:
        return 0.0
    first = attempts.sort_values(["start_s", "attempt"], kind="stable").drop_duplicates(
        "request_id"
    )
    ok_first = (first.set_index("request_id")["outcome"] == "ok").reindex(
        logical.index, fill_value=False
    )
    return float(ok_first.astype(bool).mean())


def windowed(
    attempts: pd.DataFrame,
    requests: pd.DataFrame,
    bucket_s: float = 60.0,
    *,
    duration: float | None = None,
) -> pd.DataFrame:
    """Per-bucket series for plots: one row per bucket `[k·b, (k+1)·b)` from 0 to the last event.

    Columns: `start_s`, `end_s`; `arrivals` (logical requests arriving), `ok`
    (of those, final ok), `availability` (ok ÷ arrivals, NaN without arrivals);
    `goodput_rps` (ok and complete logical requests *done* in the bucket ÷ b);
    `attempts` (attempt rows started), `amplification` (attempts ÷ arrivals, NaN
    without arrivals), `cost_usd` (of attempts started), `latency_p99_s` (of ok
    logical requests arriving in it, NaN without); then `attempts:<deployment>`
    per deployment. Buckets run to `duration` when given, further if events do.
    """
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    att = normalise_attempts(attempts)
    logical = logical_requests(requests)
    a_idx = np.floor(logical["arrival_s"] / bucket_s)
    d_idx = np.floor(logical["done_s"] / bucket_s)
    s_idx = np.floor(att["start_s"] / bucket_s)
    last = max(
        [int(s.max()) for s in (a_idx, d_idx, s_idx) if s.notna().any()]
        + [math.ceil(duration / bucket_s) - 1 if duration else -1]
    )
    index = pd.RangeIndex(last + 1, name="bucket")
    ok = _ok(logical)
    good = ok & logical["complete"].astype(bool)

    def per_bucket(keys: pd.Series, values: pd.Series | None = None) -> pd.Series:
        mask = keys.notna()
        if values is None:
            counted = keys[mask].astype(int).value_counts()
        else:
            counted = values[mask].groupby(keys[mask].astype(int)).sum()
        return counted.reindex(index, fill_value=0)

    out = pd.DataFrame(index=index)
    out["start_s"] = index.to_numpy(dtype=float) * bucket_s
    out["end_s"] = out["start_s"] + bucket_s
    out["arrivals"] = per_bucket(a_idx).astype(int)
    out["ok"] = per_bucket(a_idx[ok]).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["availability"] = out["ok"] / out["arrivals"].where(out["arrivals"] > 0)
        out["goodput_rps"] = per_bucket(d_idx[good]).astype(float) / bucket_s
        out["attempts"] = per_bucket(s_idx).astype(int)
        out["amplification"] = out["attempts"] / out["arrivals"].where(out["arrivals"] > 0)
    out["cost_usd"] = per_bucket(s_idx, att["cost_usd"]).astype(float)
    ok_lat = logical.loc[ok & a_idx.notna(), "latency_s"]
    p99 = ok_lat.groupby(a_idx[ok & a_idx.notna()].astype(int)).quantile(0.99)
    out["latency_p99_s"] = p99.reindex(index).astype(float)
    for dep in sorted(att["deployment"].unique()):
        mine = att["deployment"] == dep
        out[f"attempts:{dep}"] = per_bucket(s_idx[mine]).astype(int)
    return out


# --------------------------------------------------------------------------- all together


def compute_metrics(
    attempts: pd.DataFrame, requests: pd.DataFrame, context: RunContext
) -> dict[str, Any]:
    """Every metric of results.json (DESIGN.md "Contracts"), plus diagnostics.

    Values are plain JSON types; undefined metrics are None. Besides the contract
    keys: `latency_p95_s`, `faults` (per-window timings), `recovery`
    (`recovery_check`'s workings), `token_amplification`, `attempts`,
    `attempts_by_deployment`, `reasons`, `rejected_reasons`, `fallback_depth`,
    `success_first_try`, `client_retries` (request rows with `client_attempt` > 0).
    """
    att = normalise_attempts(attempts)
    req = normalise_requests(requests)
    logical = logical_requests(req)
    n = len(logical)
    cost = cost_usd(att)
    latency = latency_percentiles(logical)
    ttft = ttft_percentiles(att)
    first = context.first_fault
    timings = [fault_timings(att, f, context.primaries, req) for f in context.faults]
    first_timing: Mapping[str, Any] = (
        timings[context.faults.index(first)] if first is not None else {}
    )
    recovery = recovery_check(logical, context)
    return {
        "requests": n,
        "availability": availability(logical),
        "availability_during_faults": availability_during_faults(logical, context.faults),
        "goodput_rps": goodput_rps(logical, context.duration),
        "amplification": amplification(att, logical),
        "amplification_peak": amplification_peak(att, logical),
        "ttd_s": first_timing.get("ttd_s"),
        "ttf_s": first_timing.get("ttf_s"),
        "ttr_s": first_timing.get("ttr_s"),
        "cost_usd": cost,
        "cost_per_1k_requests_usd": None if n == 0 else cost / n * 1000.0,
        "latency_p50_s": latency[50],
        "latency_p95_s": latency[95],
        "latency_p99_s": latency[99],
        "ttft_p50_s": ttft[50],
        "ttft_p99_s": ttft[99],
        "compliance_violations": compliance_violations(req),
        "truncated_successes": truncated_successes(req),
        "recovered": None if recovery is None else recovery["recovered"],
        "token_amplification": token_amplification(att, req),
        "token_amplification_peak": token_amplification_peak(att, req),
        "attempts": len(att),
        "client_retries": int((req["client_attempt"] > 0).sum()),
        "success_first_try": success_first_try(att, logical),
        "attempts_by_deployment": attempts_by_deployment(att),
        "reasons": reason_counts(att),
        "rejected_reasons": rejected_reasons(req),
        "fallback_depth": fallback_depth(att, logical),
        "faults": timings,
        "recovery": recovery,
    }
