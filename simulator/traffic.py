"""Client traffic for the simulator: who calls when, as what task, with how many tokens.

A run may hold millions of client calls, so nothing here loops over requests in
Python: arrivals and their attributes are drawn in numpy batches and handed to
the SimPy driver window by window (`TrafficPlan.batches`), which keeps memory
bounded however long the run.

Determinism. The run is cut into fixed *epochs* (a power of two seconds, chosen
from the scenario's peak rate alone so each epoch holds about 65 536 expected
arrivals; CSV replays are cut into blocks of 65 536 rows instead). Each epoch
draws from its own generator, `Generator(PCG64(SeedSequence(|seed|, spawn_key=
(TRAFFIC_STREAM, seed < 0, epoch))))`, so:

- the same seed gives the same arrivals, tenants, tasks and token counts;
- the whole set of arrivals *and* their attributes is independent of the
  `window_s` the driver asks for (windows only slice the epochs' output), so
  changing the driver's batching never changes what a run simulates;
- the traffic stream is tagged, so other parts of the simulator can derive their
  own streams from the same scenario seed without sharing random numbers.

Within an epoch a Poisson process is drawn by its conditional-uniform property
(a Poisson count, then that many uniform times, sorted); the diurnal curve by
thinning such candidates; bursts as independent Poisson processes superposed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import format_path
from scenarios.schema import (
    BurstArrivals,
    CsvArrivals,
    DiurnalArrivals,
    PoissonArrivals,
    Task,
    TokenDistribution,
    Traffic,
)

__all__ = ["TRAFFIC_STREAM", "ArrivalBatch", "TrafficPlan"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRAFFIC_STREAM: Final = 0x74726166
"""Spawn-key tag ("traf") of the traffic's random streams, apart from any other use of the seed."""

Z_99: Final = 2.3263478740408408
"""The standard normal's 99th percentile: a lognormal's sigma is ln(p99 / median) / Z_99."""

TOKEN_CAP: Final = 2**53
"""Largest token count drawn; only absurd p99/median ratios reach it (and int64 cannot overflow)."""

_TARGET_PER_EPOCH: Final = 65536.0
"""Expected arrivals per epoch at the peak rate: big enough for numpy, small enough for memory."""

_MIN_EPOCH_S: Final = 2.0**-10
_MAX_EPOCH_S: Final = 2.0**12
_CSV_BLOCK: Final = 65536


@dataclass(frozen=True, slots=True)
class ArrivalBatch:
    """Client calls arriving in one slice of the run, in time order.

    Arrays are parallel (one element per call) and may be views of a larger
    epoch's arrays; treat them as read-only.
    """

    times: FloatArray
    """Seconds from the start, non-decreasing, all inside the batch's window."""
    tenant: IntArray
    """Index into `TrafficPlan.tenants`."""
    task: IntArray
    """Index into `TrafficPlan.tasks`."""
    input_tokens: IntArray
    """Prompt size, ≥ 1."""
    output_tokens: IntArray
    """Answer size, ≥ 1 and ≤ the task's `max_output_tokens` when it sets one."""

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def __getitem__(self, index: slice) -> ArrivalBatch:
        """The calls in a slice of this batch (views, not copies)."""
        return ArrivalBatch(
            self.times[index],
            self.tenant[index],
            self.task[index],
            self.input_tokens[index],
            self.output_tokens[index],
        )

    @staticmethod
    def concat(parts: Sequence[ArrivalBatch]) -> ArrivalBatch:
        """Consecutive batches joined (the caller guarantees they are in time order)."""
        if len(parts) == 1:
            return parts[0]
        return ArrivalBatch(
            np.concatenate([p.times for p in parts]),
            np.concatenate([p.tenant for p in parts]),
            np.concatenate([p.task for p in parts]),
            np.concatenate([p.input_tokens for p in parts]),
            np.concatenate([p.output_tokens for p in parts]),
        )


@dataclass(frozen=True, slots=True)
class _Chunk:
    """An epoch's (or CSV block's) arrivals; every later chunk's times are ≥ `until`."""

    batch: ArrivalBatch
    until: float


def _lognormal_params(tokens: TokenDistribution) -> tuple[float, float]:
    return math.log(tokens.median), math.log(tokens.p99 / tokens.median) / Z_99


def _uniform_times(rng: np.random.Generator, n: int, lo: float, hi: float) -> FloatArray:
    """n uniform times in [lo, hi): float rounding of lo + (hi − lo)·u may reach hi; clip it."""
    times: FloatArray = lo + (hi - lo) * rng.random(n)
    return np.minimum(times, np.nextafter(hi, lo))


def _poisson_times(rng: np.random.Generator, rate: float, lo: float, hi: float) -> FloatArray:
    """A homogeneous Poisson process on [lo, hi), unsorted: a Poisson count, uniform times."""
    return _uniform_times(rng, int(rng.poisson(rate * (hi - lo))) if hi > lo else 0, lo, hi)


def _epoch_length(peak_rate: float) -> float:
    """A power of two seconds (exact float boundaries) holding ~65 536 arrivals at peak."""
    exponent = math.floor(math.log2(_TARGET_PER_EPOCH / peak_rate))
    return min(max(2.0**exponent, _MIN_EPOCH_S), _MAX_EPOCH_S)


class TrafficPlan:
    """The client calls of one run, generated lazily and reproducibly from the seed.

    `tenants` and `tasks` are the index spaces of `ArrivalBatch.tenant` and
    `.task`. A scenario naming no tenants has one anonymous tenant, `""`, the
    same one the gateway serves when its policy configures none.
    """

    tenants: tuple[str, ...]
    tasks: tuple[Task, ...]

    def __init__(self, traffic: Traffic, *, duration: float, seed: int, base_dir: Path) -> None:
        if not (math.isfinite(duration) and duration > 0):
            raise ValueError(f"duration must be a positive number of seconds, not {duration!r}")
        self.traffic = traffic
        self.duration = float(duration)
        self.seed = seed
        self.base_dir = Path(base_dir)
        self.tenants = tuple(traffic.tenants) or ("",)
        self.tasks = tuple(traffic.tasks)

        tenant_shares = np.array(list(traffic.tenants.values()) or [1.0], dtype=np.float64)
        task_shares = np.array([task.share for task in self.tasks], dtype=np.float64)
        self._tenant_cdf = np.cumsum(tenant_shares / tenant_shares.sum())
        self._task_cdf = np.cumsum(task_shares / task_shares.sum())
        params_in = [_lognormal_params(task.input_tokens) for task in self.tasks]
        params_out = [_lognormal_params(task.output_tokens) for task in self.tasks]
        self._mu_in = np.array([mu for mu, _ in params_in])
        self._sigma_in = np.array([sigma for _, sigma in params_in])
        self._mu_out = np.array([mu for mu, _ in params_out])
        self._sigma_out = np.array([sigma for _, sigma in params_out])
        self._max_out = np.array(
            [task.max_output_tokens or TOKEN_CAP for task in self.tasks], dtype=np.int64
        )

        arrivals = traffic.arrivals
        self._pins: list[tuple[int, int]] = []  # per burst: (tenant, task), −1 = from shares
        self._csv_times: FloatArray | None = None
        if isinstance(arrivals, PoissonArrivals):
            peak = arrivals.rate
        elif isinstance(arrivals, DiurnalArrivals):
            peak = arrivals.mean_rate * (1 + self._amplitude(arrivals))
        elif isinstance(arrivals, BurstArrivals):
            peak = arrivals.rate + sum(burst.rate for burst in arrivals.bursts)
            self._pins = [self._burst_pin(arrivals, j) for j in range(len(arrivals.bursts))]
        else:
            self._csv_times = self._read_csv(arrivals)
            peak = max(len(self._csv_times) / self.duration, 1e-9)
        self._epoch_s = _epoch_length(peak)

    # -- public ---------------------------------------------------------------------------

    def batches(self, window_s: float = 60.0) -> Iterator[ArrivalBatch]:
        """One batch per window [k·w, (k+1)·w) up to the duration, empty windows included.

        Yielding every window (never skipping) lets the driver know batch k covers
        window k. The arrivals do not depend on `window_s`; see the module docstring.
        """
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, not {window_s!r}")
        windows = math.ceil(self.duration / window_s)
        if windows > 1 and (windows - 1) * window_s >= self.duration:
            windows -= 1
        chunks = self._chunks()
        pending: list[ArrivalBatch] = []
        covered = -math.inf
        for k in range(windows):
            end = math.inf if k == windows - 1 else (k + 1) * window_s
            while covered < end:
                chunk = next(chunks, None)
                if chunk is None:
                    covered = math.inf
                    break
                pending.append(chunk.batch)
                covered = chunk.until
            merged = ArrivalBatch.concat(pending) if pending else self._empty()
            cut = int(np.searchsorted(merged.times, end, side="left"))
            yield merged[:cut]
            pending = [merged[cut:]]

    def expected_requests(self) -> float:
        """Mean number of arrivals over the run (exact for CSV: the rows inside the run)."""
        arrivals, duration = self.traffic.arrivals, self.duration
        if isinstance(arrivals, PoissonArrivals):
            return arrivals.rate * duration
        if isinstance(arrivals, DiurnalArrivals):
            a, omega = self._amplitude(arrivals), 2 * math.pi / arrivals.period
            swing = math.sin(omega * (duration - arrivals.peak_at)) - math.sin(
                omega * (0.0 - arrivals.peak_at)
            )
            return arrivals.mean_rate * (duration + a * swing / omega)
        if isinstance(arrivals, BurstArrivals):
            extra = sum(
                burst.rate * max(0.0, min(burst.start + burst.duration, duration) - burst.start)
                for burst in arrivals.bursts
            )
            return arrivals.rate * duration + extra
        assert self._csv_times is not None
        return float(len(self._csv_times))

    # -- generation -----------------------------------------------------------------------

    def _rng(self, epoch: int) -> np.random.Generator:
        sequence = np.random.SeedSequence(
            abs(self.seed), spawn_key=(TRAFFIC_STREAM, int(self.seed < 0), epoch)
        )
        return np.random.Generator(np.random.PCG64(sequence))

    def _chunks(self) -> Iterator[_Chunk]:
        if self._csv_times is not None:
            yield from self._csv_chunks(self._csv_times)
            return
        epochs = math.ceil(self.duration / self._epoch_s)
        for epoch in range(epochs):
            lo = epoch * self._epoch_s
            hi = min(lo + self._epoch_s, self.duration)
            if lo >= hi:
                break
            rng = self._rng(epoch)
            until = math.inf if epoch == epochs - 1 else hi
            yield _Chunk(self._epoch(rng, lo, hi), until)

    def _epoch(self, rng: np.random.Generator, lo: float, hi: float) -> ArrivalBatch:
        arrivals = self.traffic.arrivals
        if isinstance(arrivals, PoissonArrivals):
            return self._attributes(rng, np.sort(_poisson_times(rng, arrivals.rate, lo, hi)))
        if isinstance(arrivals, DiurnalArrivals):
            return self._attributes(rng, self._diurnal_times(rng, arrivals, lo, hi))
        assert isinstance(arrivals, BurstArrivals)
        return self._burst_epoch(rng, arrivals, lo, hi)

    def _diurnal_times(
        self, rng: np.random.Generator, arrivals: DiurnalArrivals, lo: float, hi: float
    ) -> FloatArray:
        """Thinning (Lewis–Shedler): candidates at the peak rate, kept with rate(t) / peak."""
        a = self._amplitude(arrivals)
        peak = arrivals.mean_rate * (1 + a)
        candidates = np.sort(_poisson_times(rng, peak, lo, hi))
        phase = 2 * np.pi * (candidates - arrivals.peak_at) / arrivals.period
        keep = rng.random(candidates.shape[0]) * (1 + a) < 1 + a * np.cos(phase)
        times: FloatArray = candidates[keep]
        return times

    def _burst_epoch(
        self, rng: np.random.Generator, arrivals: BurstArrivals, lo: float, hi: float
    ) -> ArrivalBatch:
        """The base process and each burst's overlap with the epoch, superposed and merged."""
        parts = [_poisson_times(rng, arrivals.rate, lo, hi)]
        for burst in arrivals.bursts:
            start, end = max(lo, burst.start), min(hi, burst.start + burst.duration)
            parts.append(_poisson_times(rng, burst.rate, start, end))
        times = np.concatenate(parts)
        # Which process each arrival came from: 0 the base, j + 1 burst j.
        source = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        order = np.argsort(times, kind="stable")
        times, source = times[order], source[order]
        pins = np.array([(-1, -1), *self._pins], dtype=np.int64).reshape(-1, 2)
        return self._attributes(rng, times, pins[source, 0], pins[source, 1])

    def _attributes(
        self,
        rng: np.random.Generator,
        times: FloatArray,
        tenant_pin: IntArray | None = None,
        task_pin: IntArray | None = None,
    ) -> ArrivalBatch:
        """Tenant and task by share (unless pinned, pin ≥ 0), then lognormal token counts."""
        n = times.shape[0]
        tenant = self._by_share(rng, self._tenant_cdf, n)
        task = self._by_share(rng, self._task_cdf, n)
        if tenant_pin is not None:
            tenant = np.where(tenant_pin >= 0, tenant_pin, tenant)
        if task_pin is not None:
            task = np.where(task_pin >= 0, task_pin, task)
        input_tokens = self._tokens(rng, self._mu_in[task], self._sigma_in[task])
        output_tokens = np.minimum(
            self._tokens(rng, self._mu_out[task], self._sigma_out[task]), self._max_out[task]
        )
        return ArrivalBatch(times, tenant, task, input_tokens, output_tokens)

    @staticmethod
    def _by_share(rng: np.random.Generator, cdf: FloatArray, n: int) -> IntArray:
        index = np.searchsorted(cdf, rng.random(n), side="right")
        return np.minimum(index, len(cdf) - 1).astype(np.int64)

    @staticmethod
    def _tokens(rng: np.random.Generator, mu: FloatArray, sigma: FloatArray) -> IntArray:
        raw = np.exp(mu + sigma * rng.standard_normal(mu.shape[0]))
        return np.clip(np.rint(raw), 1, TOKEN_CAP).astype(np.int64)

    def _empty(self) -> ArrivalBatch:
        none_i = np.zeros(0, dtype=np.int64)
        return ArrivalBatch(np.zeros(0, dtype=np.float64), none_i, none_i, none_i, none_i)

    @staticmethod
    def _amplitude(arrivals: DiurnalArrivals) -> float:
        """a = (r − 1)/(r + 1): then peak/trough = (1 + a)/(1 − a) = r and the mean is kept."""
        r = arrivals.peak_to_trough
        return (r - 1) / (r + 1)

    # -- bursts and CSV -------------------------------------------------------------------

    def _burst_pin(self, arrivals: BurstArrivals, j: int) -> tuple[int, int]:
        burst = arrivals.bursts[j]
        tenant = task = -1
        task_names = [task.name for task in self.tasks]
        issues = []
        if burst.tenant is not None:
            if burst.tenant in self.traffic.tenants:
                tenant = self.tenants.index(burst.tenant)
            else:
                issues.append(("tenant", f"no tenant {burst.tenant!r} in traffic.tenants"))
        if burst.task is not None:
            if burst.task in task_names:
                task = task_names.index(burst.task)
            else:
                issues.append(("task", f"no task {burst.task!r} in traffic.tasks"))
        if issues:
            raise ConfigError(
                [
                    ConfigIssue(
                        file=str(self.base_dir),
                        line=None,
                        field=format_path(("traffic", "arrivals", "bursts", j, name)),
                        message=message,
                    )
                    for name, message in issues
                ]
            )
        return tenant, task

    def _read_csv(self, arrivals: CsvArrivals) -> FloatArray:
        """The column's times inside [0, duration), sorted; ConfigError naming file and column."""
        path = self.base_dir / arrivals.file
        column = arrivals.column

        def fail(message: str, line: int | None = None) -> ConfigError:
            return ConfigError(
                [ConfigIssue(file=str(path), line=line, field=column, message=message)]
            )

        try:
            header = pd.read_csv(path, nrows=0)
        except FileNotFoundError:
            raise fail(f"no such arrivals file (looked for column {column!r})") from None
        except OSError as error:
            raise fail(f"cannot open the arrivals file: {error.strerror or error}") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise fail(f"cannot read as CSV: {error}") from None
        if column not in header.columns:
            known = ", ".join(str(name) for name in header.columns) or "none"
            raise fail(f"no column {column!r} in the arrivals file (columns: {known})")
        try:
            raw = pd.read_csv(path, usecols=[column], dtype=str, keep_default_na=False)[column]
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise fail(f"cannot read as CSV: {error}") from None
        values = pd.to_numeric(raw.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            raise fail(
                f"column {column!r} must hold numbers (seconds from start); "
                f"row {row + 1} has {raw.iloc[row]!r}"
                + (f" ({bad.size} bad values)" if bad.size > 1 else ""),
                line=self._csv_line(path, row),
            )
        inside = values[(values >= 0) & (values < self.duration)]
        return np.sort(inside, kind="stable")

    @staticmethod
    def _csv_line(path: Path, row: int) -> int | None:
        """The file line of data row `row` (0-based, blank lines skipped as pandas does).

        Only used on the error path, so reading the file again with `csv` is fine.
        """
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.reader(handle)
            seen = -1  # the header
            for fields in reader:
                if not any(field.strip() for field in fields) and len(fields) <= 1:
                    continue
                if seen == row:
                    return reader.line_num
                seen += 1
        return None

    def _csv_chunks(self, times: FloatArray) -> Iterator[_Chunk]:
        """Blocks of rows, each with its own generator for tenant, task and tokens."""
        blocks = max(1, math.ceil(len(times) / _CSV_BLOCK))
        for block in range(blocks):
            part = times[block * _CSV_BLOCK : (block + 1) * _CSV_BLOCK]
            last = block == blocks - 1
            until = math.inf if last else float(part[-1])
            yield _Chunk(self._attributes(self._rng(block), part), until)
