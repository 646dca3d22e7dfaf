"""Faults: what goes wrong, where, when, and in what shape.

A fault hits every deployment its target selects — by failure domain (the one
mechanism that expresses shared edges, regional DNS, vendor outages and model
withdrawal) or by deployment id. Its *kind* says what the provider does to an
affected request; its *shape* says how strongly the fault is on at each moment
(`level` in [0, 1], times `intensity`). The simulator and the live fakes both
read these models; `level_at` is shared so they agree on the timeline.

Kinds and their parameters:

| kind | an affected request... | parameters |
|---|---|---|
| outage | fails with `outcome` | outcome: connect, dns, server, overloaded, edge_5xx |
| degrade | errors more and slows down | error_rate (with outcome), latency_multiplier, extra_ttft |
| capacity | meets fewer slots (brownout, saturation) | multiplier |
| rate_limit | gets 429 with Retry-After | rpm, tpm, retry_after |
| silent | is accepted and never answered | — |
| stream_cut | loses its connection mid-answer | after_tokens |
| stream_stall | stops receiving tokens mid-answer | after_tokens, stall |
| content_filter | is refused by the vendor's filter | task |
| withdraw | gets 404 model_not_found, for good | — |
| dns | cannot open new connections; pooled ones live until recycled | — |

Shapes: `step` (on for the whole window), `ramp` (linear between two levels),
`piecewise` (linear through `[offset, level]` points: incident curves),
`oscillate` (on for `duty` of every `period`, optionally settling into full
failure), `staggered` (per-member start and end offsets), `bernoulli` (each
`slot` is bad with `probability`), `random` (an alternating up/down process per
member with a long-run `availability` and lognormal outage lengths: for Monte
Carlo availability studies).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Collection
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from router.core.policy import check_domain_labels
from scenarios.durations import Duration

__all__ = [
    "FAULT_KINDS",
    "AnyFault",
    "Bernoulli",
    "Capacity",
    "ContentFilter",
    "Degrade",
    "Dns",
    "Fault",
    "Oscillate",
    "Outage",
    "Piecewise",
    "Ramp",
    "RandomOutages",
    "RateLimit",
    "Shape",
    "Silent",
    "Staggered",
    "Step",
    "StreamCut",
    "StreamStall",
    "Target",
    "Withdraw",
    "level_at",
    "member_window",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Target(_Model):
    """Deployments carrying any of `domains`, plus those listed in `deployments`."""

    domains: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()

    @field_validator("domains")
    @classmethod
    def _domains_are_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_domain_labels(value)

    @model_validator(mode="after")
    def _not_empty(self) -> Target:
        if not self.domains and not self.deployments:
            raise ValueError("a target needs at least one of domains or deployments")
        return self


class Step(_Model):
    """Fully on from start to end."""

    kind: Literal["step"] = "step"


class Ramp(_Model):
    """From `from_level` to `to_level` linearly over `over` (default: the whole window)."""

    kind: Literal["ramp"]
    from_level: float = Field(default=0.0, ge=0, le=1)
    to_level: float = Field(default=1.0, ge=0, le=1)
    over: Duration | None = None


class Oscillate(_Model):
    """On for `duty` of each `period`; from `settle_after` on, fully on (Cloudflare, Nov 2025)."""

    kind: Literal["oscillate"]
    period: Duration = Field(gt=0)
    duty: float = Field(default=0.5, gt=0, le=1)
    settle_after: Duration | None = None


class Piecewise(_Model):
    """Linear between `[offset, level]` points (offsets from the fault's start), flat after."""

    kind: Literal["piecewise"]
    points: tuple[tuple[Duration, Annotated[float, Field(ge=0, le=1)]], ...] = Field(min_length=2)

    @field_validator("points")
    @classmethod
    def _increasing(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        offsets = [offset for offset, _ in value]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("piecewise offsets must increase")
        return value


class Staggered(_Model):
    """Per-member offsets from the fault's start: members start or recover one by one."""

    kind: Literal["staggered"]
    starts: dict[str, Duration] = Field(default_factory=dict)
    ends: dict[str, Duration] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_member(self) -> Staggered:
        if not self.starts and not self.ends:
            raise ValueError("staggered needs per-member starts or ends")
        return self


class Bernoulli(_Model):
    """Each `slot` is independently bad with `probability` (seeded, reproducible)."""

    kind: Literal["bernoulli"]
    slot: Duration = Field(gt=0)
    probability: float = Field(ge=0, le=1)


class RandomOutages(_Model):
    """Alternating up/down periods: long-run `availability`, lognormal outage lengths.

    Each member draws its own process, unless `shared`: then one process hits every
    member at once (a shared edge or egress that is itself unreliable).
    """

    kind: Literal["random"]
    availability: float = Field(gt=0, lt=1)
    median_outage: Duration = Field(gt=0)
    p90_outage: Duration = Field(gt=0)
    shared: bool = False

    @model_validator(mode="after")
    def _p90_above_median(self) -> RandomOutages:
        if self.p90_outage < self.median_outage:
            raise ValueError("p90_outage must be ≥ median_outage")
        return self


Shape = Annotated[
    Step | Ramp | Piecewise | Oscillate | Staggered | Bernoulli | RandomOutages,
    Field(discriminator="kind"),
]


class _Fault(_Model):
    id: str | None = None
    target: Target
    start: Duration = 0.0
    end: Duration | None = None
    shape: Shape = Step()
    intensity: float = Field(default=1.0, ge=0, le=1)
    note: str = ""

    @field_validator("end")
    @classmethod
    def _ends_after_start(cls, value: float | None, info: ValidationInfo) -> float | None:
        # A field validator (not a model one) so the error names `end`, the field to fix.
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError("end must be after start")
        return value

    @model_validator(mode="after")
    def _ramp_has_a_span(self) -> _Fault:
        # Without `over` a ramp spans the window; an open-ended one has none to span.
        if isinstance(self.shape, Ramp) and self.shape.over is None and self.end is None:
            raise ValueError("an open-ended ramp needs `over` (how long it takes)")
        return self


class Outage(_Fault):
    """Affected requests fail with `outcome` (an edge outage answers with its own 5xx page)."""

    kind: Literal["outage"]
    outcome: Literal["connect", "dns", "server", "overloaded", "edge_5xx"] = "server"


class Degrade(_Fault):
    """Affected requests error more often and arrive later."""

    kind: Literal["degrade"]
    error_rate: float = Field(default=0.0, ge=0, le=1)
    outcome: Literal["server", "overloaded"] = "server"
    latency_multiplier: float = Field(default=1.0, ge=1)
    extra_ttft: Duration = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> Degrade:
        if self.error_rate == 0 and self.latency_multiplier == 1 and self.extra_ttft == 0:
            raise ValueError("degrade needs error_rate, latency_multiplier or extra_ttft")
        return self


class Capacity(_Fault):
    """The deployment's concurrency shrinks to `multiplier` of normal (at full level)."""

    kind: Literal["capacity"]
    multiplier: float = Field(ge=0, le=1)


class RateLimit(_Fault):
    """The provider's limits drop (to `rpm`/`tpm`), or `intensity` of requests get 429."""

    kind: Literal["rate_limit"]
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    retry_after: Duration = 1.0


class Silent(_Fault):
    """Requests are accepted and never answered (only a client deadline ends them)."""

    kind: Literal["silent"]


class StreamCut(_Fault):
    """The connection drops after `after_tokens` output tokens."""

    kind: Literal["stream_cut"]
    after_tokens: int = Field(default=20, ge=0)


class StreamStall(_Fault):
    """Tokens stop after `after_tokens`, for `stall` (None: until the client gives up)."""

    kind: Literal["stream_stall"]
    after_tokens: int = Field(default=20, ge=0)
    stall: Duration | None = None


class ContentFilter(_Fault):
    """The vendor's filter refuses `intensity` of requests (of one `task` class, if given)."""

    kind: Literal["content_filter"]
    task: str | None = None


class Withdraw(_Fault):
    """The model is gone for good from `start`: 404 model_not_found."""

    kind: Literal["withdraw"]

    @field_validator("end")
    @classmethod
    def _open_ended(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError("a withdrawal is for good: leave end out")
        return value


class Dns(_Fault):
    """New connections fail; pooled ones keep working until recycled (AWS, Oct 2025)."""

    kind: Literal["dns"]


AnyFault = (
    Outage
    | Degrade
    | Capacity
    | RateLimit
    | Silent
    | StreamCut
    | StreamStall
    | ContentFilter
    | Withdraw
    | Dns
)
Fault = Annotated[AnyFault, Field(discriminator="kind")]

FAULT_KINDS = (
    "outage",
    "degrade",
    "capacity",
    "rate_limit",
    "silent",
    "stream_cut",
    "stream_stall",
    "content_filter",
    "withdraw",
    "dns",
)


def _member_rng(seed: int, fault_index: int, member: str, salt: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}/{fault_index}/{member}/{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _random_down(shape: RandomOutages, elapsed: float, rng: random.Random) -> bool:
    """Whether the alternating renewal process is down at `elapsed` (walked from 0)."""
    sigma = math.log(shape.p90_outage / shape.median_outage) / 1.2815515655446004
    mean_down = shape.median_outage * math.exp(sigma * sigma / 2)
    mean_up = mean_down * shape.availability / (1 - shape.availability)
    t = rng.expovariate(1 / mean_up)
    while t <= elapsed:
        t += shape.median_outage * math.exp(sigma * rng.gauss(0, 1))
        if t > elapsed:
            return True
        t += rng.expovariate(1 / mean_up)
    return False


def member_window(
    fault: AnyFault, shape: Staggered, member: str, domains: Collection[str]
) -> tuple[float, float | None]:
    """The member's own (start, end): keyed by its id, else by its domains.

    A deployment is down while any of its domains in the fault is down, so among
    those domains it takes the earliest start and the latest end; a domain with no
    offset of its own uses the fault's start or end.
    """
    listed = set(shape.starts) | set(shape.ends) | set(fault.target.domains)
    keys = [domain for domain in domains if domain in listed]
    if member in shape.starts:
        start = fault.start + shape.starts[member]
    else:
        start = min((fault.start + shape.starts.get(k, 0.0) for k in keys), default=fault.start)
    if member in shape.ends:
        return start, fault.start + shape.ends[member]
    ends = [fault.start + shape.ends[k] if k in shape.ends else fault.end for k in keys]
    if not ends:
        return start, fault.end
    finite = [e for e in ends if e is not None]
    return start, max(finite) if len(finite) == len(ends) else None


def _interpolate(points: tuple[tuple[float, float], ...], elapsed: float) -> float:
    if elapsed <= points[0][0]:
        return points[0][1] if elapsed == points[0][0] else 0.0
    for (t0, v0), (t1, v1) in pairwise(points):
        if elapsed <= t1:
            return v0 + (v1 - v0) * (elapsed - t0) / (t1 - t0)
    return points[-1][1]


def level_at(
    fault: AnyFault,
    now: float,
    *,
    member: str,
    seed: int,
    fault_index: int,
    domains: Collection[str] = (),
) -> float:
    """How strongly `fault` is on for `member` at `now`, in [0, 1] (intensity included).

    Pure and deterministic in (seed, fault_index, member, now): the simulator and
    the live fakes evaluate the same timeline. `domains` are the member's failure
    domains (policy and hidden ones): `staggered` offsets may be keyed by them.
    `random` shapes walk their process from the fault's start, which is fine for
    the slot-level questions asked of it.
    """
    start, end = fault.start, fault.end
    shape = fault.shape
    if isinstance(shape, Staggered):
        start, end = member_window(fault, shape, member, domains)
    if now < start or (end is not None and now >= end):
        return 0.0
    elapsed = now - start
    level = 1.0
    if isinstance(shape, Ramp):
        span = shape.over if shape.over is not None else ((end or start + 1.0) - start)
        progress = 1.0 if span <= 0 else min(1.0, elapsed / span)
        level = shape.from_level + (shape.to_level - shape.from_level) * progress
    elif isinstance(shape, Piecewise):
        level = _interpolate(shape.points, elapsed)
    elif isinstance(shape, Oscillate):
        settled = shape.settle_after is not None and elapsed >= shape.settle_after
        level = 1.0 if settled or (elapsed % shape.period) < shape.duty * shape.period else 0.0
    elif isinstance(shape, Bernoulli):
        slot = int(elapsed // shape.slot)
        rng = _member_rng(seed, fault_index, "*", f"slot{slot}")
        level = 1.0 if rng.random() < shape.probability else 0.0
    elif isinstance(shape, RandomOutages):
        rng = _member_rng(seed, fault_index, "*" if shape.shared else member, "renewal")
        level = 1.0 if _random_down(shape, elapsed, rng) else 0.0
    return level * fault.intensity
