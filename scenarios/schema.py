"""The scenario language: a what-if as data (see scenarios/README.md for an annotated example).

A scenario names a policy, describes the *world* the policy's deployments live
in (capacity, latency, error rates, provider limits, hidden dependencies), the
*traffic* that hits it (arrivals, tenants, a task mix, and the client layer
whose own retries multiply load), a *timeline of faults*, and the steady-state
hypotheses (*slos*) a good policy should keep. The simulator runs it in
virtual time and the live runner against the fakes; both read these models.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from router.core.policy import RateLimits, check_domain_labels
from scenarios.durations import Duration
from scenarios.faults import Fault

__all__ = [
    "METRICS",
    "SLO",
    "Arrivals",
    "BurstArrivals",
    "ClientLayer",
    "CsvArrivals",
    "DeploymentWorld",
    "DiurnalArrivals",
    "LatencyModel",
    "PoissonArrivals",
    "Scenario",
    "Source",
    "Task",
    "TokenDistribution",
    "Traffic",
    "World",
]

METRICS: dict[str, str] = {
    "requests": "client requests in the run",
    "availability": "ok requests ÷ requests",
    "availability_during_faults": "availability of requests arriving inside a fault window",
    "goodput_rps": "complete successful answers per second",
    "amplification": "upstream attempts ÷ client requests (both retry layers)",
    "amplification_peak": "the highest amplification over any 60 s window",
    "ttd_s": "fault onset → first decision routing away (breaker open, domain suspected)",
    "ttf_s": "fault onset → first success via an alternate deployment",
    "ttr_s": "fault end → first success on the primary again",
    "cost_usd": "Σ billed tokens × price over every attempt, failed ones included",
    "cost_per_1k_requests_usd": "cost per 1,000 client requests",
    "latency_p50_s": "median end-to-end latency",
    "latency_p99_s": "99th percentile end-to-end latency",
    "compliance_violations": "requests served outside their tenant's residency/compliance",
    "truncated_successes": "answers cut short but presented as success",
    "recovered": "goodput back to ≥ 95 % of its pre-fault level within the recovery window",
    "score": "the resilience score, 0–100",
}
"""The metrics SLOs may name (DESIGN.md "Metrics"; reports/ computes them)."""

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SLO = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _source_from_text(value: Any) -> Any:
    return {"title": value} if isinstance(value, str) else value


class Source(_Model):
    """Where a timeline or a figure comes from."""

    title: str = Field(min_length=1)
    url: str | None = None


class LatencyModel(_Model):
    """Seconds, lognormal from `median` and `p99`, or a table of `[quantile, seconds]` points."""

    median: Duration | None = None
    p99: Duration | None = None
    quantiles: tuple[tuple[float, float], ...] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> LatencyModel:
        lognormal = self.median is not None or self.p99 is not None
        if lognormal == (self.quantiles is not None):
            raise ValueError("give either median and p99, or quantiles")
        if lognormal:
            if self.median is None or self.p99 is None:
                raise ValueError("a lognormal latency needs both median and p99")
            if not 0 < self.median <= self.p99:
                raise ValueError("need 0 < median ≤ p99")
        else:
            points = self.quantiles or ()
            qs = [q for q, _ in points]
            values = [v for _, v in points]
            if len(points) < 2 or qs != sorted(qs) or values != sorted(values):
                raise ValueError("quantiles need ≥ 2 [q, seconds] points, both increasing")
            if not all(0 <= q <= 1 for q in qs) or values[0] < 0:
                raise ValueError("quantiles must lie in [0, 1] and seconds be ≥ 0")
        return self


class TokenDistribution(_Model):
    """Token counts, lognormal from `median` and `p99` (both ≥ 1)."""

    median: PositiveInt
    p99: PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> TokenDistribution:
        if self.p99 < self.median:
            raise ValueError("p99 must be ≥ median")
        return self


class DeploymentWorld(_Model):
    """How one deployment behaves when nothing is wrong, and what it hides."""

    capacity: PositiveInt = 200
    queue: NonNegativeInt = 400
    ttft: LatencyModel = LatencyModel(median=0.6, p99=3.0)
    per_token: LatencyModel = LatencyModel(median=0.015, p99=0.05)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    limits: RateLimits = RateLimits()
    hidden_domains: tuple[str, ...] = ()
    connection_lifetime: Duration = Field(default=300.0, gt=0)

    @field_validator("hidden_domains")
    @classmethod
    def _domains_are_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_domain_labels(value)


class World(_Model):
    """The provider universe: `defaults`, then per-deployment overrides of any field.

    A world may describe more deployments than one policy uses, so one scenario
    can be run against several policies.
    """

    defaults: DeploymentWorld = DeploymentWorld()
    deployments: dict[str, DeploymentWorld] = Field(default_factory=dict)

    def for_deployment(self, deployment_id: str) -> DeploymentWorld:
        """`defaults` with the fields this deployment's entry sets replacing theirs."""
        override = self.deployments.get(deployment_id)
        if override is None:
            return self.defaults
        return self.defaults.model_copy(
            update={name: getattr(override, name) for name in override.model_fields_set}
        )


class PoissonArrivals(_Model):
    """A constant Poisson rate, requests per second."""

    kind: Literal["poisson"]
    rate: PositiveFloat


class DiurnalArrivals(_Model):
    """A sinusoidal day around `mean_rate`, `peak_to_trough` apart, peaking at `peak_at`."""

    kind: Literal["diurnal"]
    mean_rate: PositiveFloat
    peak_to_trough: float = Field(default=3.0, ge=1)
    peak_at: Duration = 14 * 3600.0
    period: Duration = Field(default=86400.0, gt=0)


class Burst(_Model):
    """Extra load: `rate` more requests per second from `start` for `duration`.

    By default a burst follows the traffic's tenant and task mix; `tenant` and
    `task` pin it to one (a runaway agent is one tenant's one kind of work).
    """

    start: Duration
    duration: Duration = Field(gt=0)
    rate: PositiveFloat
    tenant: str | None = None
    task: str | None = None


class BurstArrivals(_Model):
    """A Poisson base `rate` plus bursts on top."""

    kind: Literal["bursts"]
    rate: PositiveFloat
    bursts: tuple[Burst, ...] = Field(min_length=1)


class CsvArrivals(_Model):
    """Replay arrival times (seconds from start) from a CSV next to the scenario file."""

    kind: Literal["csv"]
    file: str = Field(min_length=1)
    column: str = "arrival_s"


Arrivals = Annotated[
    PoissonArrivals | DiurnalArrivals | BurstArrivals | CsvArrivals, Field(discriminator="kind")
]


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


class Task(_Model):
    """One class of work in the mix: its share, route, token sizes and needs.

    `route` may list several names: the first one the policy has is used, so one
    scenario can compare policies whose routes are named differently (a tiered
    policy's `triage` against a single-vendor policy's `default`).
    """

    name: str = Field(min_length=1)
    share: PositiveFloat = 1.0
    route: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        default=("default",), min_length=1
    )
    input_tokens: TokenDistribution = TokenDistribution(median=800, p99=6000)
    output_tokens: TokenDistribution = TokenDistribution(median=300, p99=1500)
    max_output_tokens: PositiveInt | None = None
    needs: frozenset[Literal["tools", "streaming", "json", "vision"]] = frozenset()
    stream: bool = True

    def route_in(self, route_names: set[str] | frozenset[str]) -> str | None:
        """The route this task calls under a policy with these routes (None: it has none)."""
        return next((name for name in self.route if name in route_names), None)


class ClientBackoff(_Model):
    """The client's own backoff between its retries."""

    kind: Literal["full", "equal", "decorrelated", "none"] = "full"
    base: Duration = Field(default=1.0, gt=0)
    cap: Duration = Field(default=30.0, gt=0)


class ClientLayer(_Model):
    """The caller above the router (an agentic pipeline): its timeout, retries and patience.

    Its retries multiply with the router's; `abandon_probability` is the chance a
    client gives up after a failed call instead of retrying.
    """

    timeout: Duration = Field(default=60.0, gt=0)
    retries: NonNegativeInt = 0
    backoff: ClientBackoff = ClientBackoff()
    abandon_probability: float = Field(default=0.0, ge=0, le=1)


class Traffic(_Model):
    """Who calls, how often, with what work."""

    arrivals: Arrivals
    tenants: dict[str, PositiveFloat] = Field(default_factory=dict)
    tasks: tuple[Task, ...] = (Task(name="default"),)
    client: ClientLayer = ClientLayer()

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, value: tuple[Task, ...]) -> tuple[Task, ...]:
        # On the field, so the error points at `tasks` and names the repeated task.
        names = [task.name for task in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"task names must be unique; repeated: {', '.join(repeated)}")
        return value


class SLO(_Model):
    """A steady-state hypothesis: `metric op value`, e.g. `availability_during_faults >= 0.999`."""

    metric: str
    op: Literal[">=", "<=", "==", "!=", ">", "<"]
    value: float | bool

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; known: {', '.join(METRICS)}")
        return value

    @property
    def name(self) -> str:
        """The hypothesis as written."""
        value = str(self.value).lower() if isinstance(self.value, bool) else f"{self.value:g}"
        return f"{self.metric} {self.op} {value}"

    def holds(self, observed: float | bool | None) -> bool:
        """Whether an observed value satisfies it (a missing value never does)."""
        if observed is None:
            return False
        a, b = float(observed), float(self.value)
        return {
            ">=": a >= b,
            "<=": a <= b,
            "==": a == b,
            "!=": a != b,
            ">": a > b,
            "<": a < b,
        }[self.op]


def _slo_from_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _SLO.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not 'metric op value' (e.g. 'availability >= 0.999')")
    metric, op, raw = match.groups()
    parsed: float | bool
    if raw in {"true", "false"}:
        parsed = raw == "true"
    else:
        try:
            parsed = float(raw)
        except ValueError:
            parsed = math.nan
        if not math.isfinite(parsed):
            raise ValueError(f"{raw!r} in {value!r} is not a number or true/false")
    return {"metric": metric, "op": op, "value": parsed}


class Scenario(_Model):
    """A whole what-if: world, traffic, faults and the hypotheses a good policy keeps."""

    id: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    sources: tuple[Annotated[Source, BeforeValidator(_source_from_text)], ...] = Field(min_length=1)
    t0: str | None = None
    duration: Duration = Field(gt=0)
    policy: str = Field(min_length=1)
    seed: int = 1
    replications: PositiveInt = 1
    recovery_window: Duration = Field(default=1800.0, gt=0)
    world: World = World()
    traffic: Traffic
    faults: tuple[Fault, ...] = ()
    slos: tuple[Annotated[SLO, BeforeValidator(_slo_from_text)], ...] = ()
    assumptions: str = ""

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("id must be lowercase letters, digits and dashes")
        return value

    @field_validator("t0", mode="before")
    @classmethod
    def _unquoted_time(cls, value: Any) -> Any:
        # YAML reads an unquoted `t0: 2025-11-18T11:00:00Z` as a datetime; it is still ISO.
        return value.isoformat() if isinstance(value, date) else value

    @field_validator("t0")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("t0 must be an ISO 8601 time, e.g. 2025-11-18T11:00:00Z") from None
        return value

    @property
    def fault_windows(self) -> list[tuple[float, float]]:
        """(start, end) of every fault, open-ended ones running to the end of the run."""
        return [(f.start, self.duration if f.end is None else f.end) for f in self.faults]
