"""The provider behaviour model: given `now` and a random generator, what one attempt meets.

The simulator (SimPy, virtual time) and the fake HTTP servers (aiohttp, real time)
both ask this module what a provider does with an attempt, so a simulated run and a
live run of one scenario agree by construction. It is pure: no I/O, no clock, no
global random generator. `now` is seconds from the scenario's start and every draw
comes from the `random.Random` the caller passes in, so one seed replays one run.

Theory of operation — an attempt meets the provider in three steps:

1. **Admission** (`gate`), when the request reaches the provider and before it waits
   for a slot. Everything that refuses a request without spending capacity on it is
   decided here, in a fixed severity order so one seed always gives one answer:
   withdrawn model (404), DNS failure, outage, silent black hole, rate limits (the
   faults' and the world's own), content filter. Answers from the gate never hold a
   slot (`uses_slot=False`).
2. **Capacity** (`capacity`, `queue_limit`, `overload_plan`): the driver holds the
   slots and the queue; the model says how many slots exist at `now` (capacity faults
   shrink them) and what a provider with full slots and a full queue answers: a fast
   503, or Anthropic's 529.
3. **Service** (`plan`), once a slot is taken: time to first token and time per
   output token are drawn from the world's latency models (lognormal from median and
   p99, or a quantile table); degrade faults slow the answer and add errors; the
   world's background error rate adds 500s; stream faults cut or stall a stream after
   `after_tokens`; otherwise the answer is complete and OK.

**Failure domains compose.** A fault hits this deployment when its target names the
deployment or shares any label with the deployment's domains — those in the policy
plus the world's `hidden_domains` (dependencies the policy's author does not know
about, e.g. an OpenAI API that runs on Google Cloud). Every fault that hits applies,
whatever domain it came through: an edge outage and a vendor degrade on one
deployment both take effect, in severity order. A fault on a domain the deployment
does not carry never touches it.

**DNS pooled connections.** A DNS fault breaks name resolution, so only *new*
connections fail; a client keeps using pooled keep-alive connections it opened
before the fault until it recycles them. We approximate the pool as connections whose
ages are uniform over `connection_lifetime`: at `onset + t` the fraction still pooled
from before the fault is `max(0, 1 − t / connection_lifetime)`, and only the rest
need a fresh lookup. So a DNS fault at level `l` fails `l × (1 − pooled)` of
requests: nothing at onset, all of them one connection lifetime later (the slow
cascade of the AWS us-east-1 DNS incident of 20 October 2025).

**Status codes per protocol** (reference/providers.md, section 0). Overload is a 529
`overloaded_error` from Anthropic and a 503 from everyone else (OpenAI, Azure, Gemini,
Bedrock, Mistral); rate limits are 429 with a Retry-After in seconds; a withdrawn
model is 404; a content filter refusing the prompt is 400; a server fault is 500 and
an edge's own error page is 502; refused connections and failed lookups have no
status at all. `router.core.outcomes.classify_status` maps these back to the same
outcomes, which is what lets the live fakes and the simulator agree.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from functools import partial
from random import Random
from typing import Generic, NamedTuple, TypeVar

from router.core.limits import TokenBucket
from router.core.outcomes import Outcome
from router.core.policy import Deployment
from scenarios.faults import (
    AnyFault,
    Capacity,
    ContentFilter,
    Degrade,
    Dns,
    Outage,
    RateLimit,
    Silent,
    Staggered,
    Step,
    StreamCut,
    StreamStall,
    Withdraw,
    level_at,
    member_window,
)
from scenarios.schema import DeploymentWorld, LatencyModel

__all__ = [
    "CONNECT_FAIL_S",
    "ERROR_TTFT_FRACTION",
    "FAST_REJECT_S",
    "AttemptPlan",
    "ProviderModel",
]

CONNECT_FAIL_S = 0.03
"""A refused or reset connection, or a failed lookup, costs about one network round trip."""

FAST_REJECT_S = 0.05
"""An HTTP answer given at the front door (404, 429, 502, 503/529 load shedding): a round
trip plus a little parsing, well under any time to first token."""

ERROR_TTFT_FRACTION = 0.25
"""A server error surfaces after a fraction of a time-to-first-token: the request got past
the front door and failed somewhere inside, before the model produced anything."""

_Z99 = 2.3263478740408408  # the standard normal's 99th percentile

F = TypeVar("F", bound=AnyFault)


class AttemptPlan(NamedTuple):
    """What one attempt experiences at this provider, decided when the provider takes it.

    A named tuple rather than a dataclass: one is built per simulated attempt, and a
    tuple is immutable at a third of the cost.
    """

    outcome: Outcome
    http_status: int | None
    ttft_s: float | None
    per_token_s: float
    end_s: float
    output_tokens: int
    retry_after_s: float | None = None
    stall_s: float = 0.0
    uses_slot: bool = True


_new_plan = partial(tuple.__new__, AttemptPlan)
"""`AttemptPlan` from one tuple of all its fields: a named tuple's own constructor (a Python
`__new__` behind a slot wrapper) costs about three times as much, once per attempt."""


class _Active(Generic[F]):
    """One fault that hits this deployment, with what can be known about it in advance.

    `start`/`end` bound where its level can be non-zero, so the hot path skips a fault
    outside its window with two comparisons. `fixed` is its level inside the window when
    the shape makes it constant (`step`; `staggered`, whose member window is resolved
    here once): then `level_at` is not called at all.
    """

    __slots__ = ("end", "fault", "fixed", "index", "start")

    def __init__(self, fault: F, index: int, member: str, domains: frozenset[str]) -> None:
        self.fault: F = fault
        self.index = index
        self.start = fault.start
        self.end = math.inf if fault.end is None else fault.end
        self.fixed: float | None = None
        shape = fault.shape
        if isinstance(shape, Step):
            self.fixed = fault.intensity
        elif isinstance(shape, Staggered):
            # The same resolution level_at does on every call, done once for this member.
            start, end = member_window(fault, shape, member, domains)
            self.start, self.end = start, math.inf if end is None else end
            self.fixed = fault.intensity


class _Quota:
    """Requests and tokens per minute as two token buckets, both charged or neither.

    The admission rule of `router.core.limits.RateLimiter`, built from the same
    `TokenBucket`s, plus `wait_s`: a provider's 429 says when to come back, and
    `RateLimiter` does not expose its buckets to compute that.
    """

    __slots__ = ("_buckets",)

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self._buckets: list[tuple[TokenBucket, bool]] = []
        if rpm:
            self._buckets.append((TokenBucket(capacity=rpm, refill_per_s=rpm / 60.0), False))
        if tpm:
            self._buckets.append((TokenBucket(capacity=tpm, refill_per_s=tpm / 60.0), True))

    def try_acquire(self, now: float, tokens: int) -> bool:
        """Charge one request and `tokens` tokens, or nothing."""
        taken: list[tuple[TokenBucket, float]] = []
        for bucket, is_tokens in self._buckets:
            amount = tokens if is_tokens else 1
            if not bucket.try_take(now, amount):
                for done, back in taken:
                    done.give_back(back)
                return False
            taken.append((bucket, amount))
        return True

    def give_back(self, tokens: int) -> None:
        """Undo a `try_acquire` whose request was then refused elsewhere."""
        for bucket, is_tokens in self._buckets:
            bucket.give_back(tokens if is_tokens else 1)

    def state(
        self, now: float
    ) -> tuple[tuple[int, int, float] | None, tuple[int, int, float] | None]:
        """(limit, remaining, seconds to full) of the request bucket and of the token bucket."""
        found: list[tuple[int, int, float] | None] = [None, None]
        for bucket, is_tokens in self._buckets:
            level = bucket.level(now)
            to_full = (bucket.capacity - level) / bucket.refill_per_s
            found[int(is_tokens)] = (int(bucket.capacity), int(level), to_full)
        return found[0], found[1]

    def wait_s(self, now: float, tokens: int) -> float | None:
        """Seconds until both buckets hold enough; None when one never can (too large)."""
        wait = 0.0
        for bucket, is_tokens in self._buckets:
            amount = tokens if is_tokens else 1
            if amount > bucket.capacity:
                return None
            missing = amount - bucket.level(now)
            if missing > 0:
                wait = max(wait, missing / bucket.refill_per_s)
        return wait


class _Latency:
    """Draws seconds from a `LatencyModel`: lognormal, or a quantile table read linearly.

    Lognormal draws use one `gauss` and table draws one `random`, so the number of draws
    per attempt is fixed and a seed stays a seed when the latency model changes form.
    """

    __slots__ = ("_mu", "_qs", "_sigma", "_values")

    def __init__(self, model: LatencyModel) -> None:
        self._qs: list[float] | None = None
        self._values: list[float] = []
        self._mu = 0.0
        self._sigma = 0.0
        if model.quantiles is not None:
            self._qs = [q for q, _ in model.quantiles]
            self._values = [v for _, v in model.quantiles]
        else:
            assert model.median is not None and model.p99 is not None  # schema guarantees it
            self._mu = math.log(model.median)
            self._sigma = math.log(model.p99 / model.median) / _Z99

    def draw(self, rng: Random) -> float:
        """One latency in seconds."""
        qs = self._qs
        if qs is None:
            return math.exp(self._mu + self._sigma * rng.gauss(0.0, 1.0))
        u = rng.random()
        values = self._values
        i = bisect_right(qs, u)
        if i == 0:
            return values[0]
        if i == len(qs):
            return values[-1]
        q0, q1 = qs[i - 1], qs[i]
        return values[i - 1] + (values[i] - values[i - 1]) * (u - q0) / (q1 - q0)


def _happens(probability: float, rng: Random) -> bool:
    """A Bernoulli trial that draws only when the answer is in doubt.

    Certain (≥ 1) and impossible (≤ 0) events draw nothing, so a fault outside its
    window — or fully on — does not shift the random stream of everything after it.
    """
    if probability <= 0.0:
        return False
    if probability >= 1.0:
        return True
    return rng.random() < probability


class ProviderModel:
    """One deployment's provider: admission, capacity and service under the scenario's faults.

    Built once per deployment and run; holds only the rate-limit buckets as state.
    `open_gate` is true when no fault of a kind `gate` checks hits this deployment and
    the world sets it no rate limits: then `gate` always answers None.
    """

    __slots__ = (
        "_base_capacity",
        "_capacity",
        "_content_filter",
        "_cut",
        "_degrade",
        "_dns",
        "_domains",
        "_error_rate",
        "_gone",
        "_hits",
        "_lifetime",
        "_outage",
        "_overload",
        "_overload_status",
        "_per_token",
        "_rate_limit",
        "_seed",
        "_silent",
        "_stall",
        "_ttft",
        "_withdraw",
        "_world_quota",
        "deployment_id",
        "open_gate",
        "queue_limit",
    )

    def __init__(
        self,
        deployment: Deployment,
        world: DeploymentWorld,
        faults: Sequence[AnyFault],
        *,
        seed: int,
    ) -> None:
        self.deployment_id = deployment.id
        self.queue_limit = world.queue
        self._seed = seed
        self._domains = frozenset(deployment.domains) | frozenset(world.hidden_domains)
        self._base_capacity = world.capacity
        self._lifetime = world.connection_lifetime
        self._error_rate = world.error_rate
        self._ttft = _Latency(world.ttft)
        self._per_token = _Latency(world.per_token)
        self._overload_status = 529 if deployment.protocol == "anthropic" else 503
        self._overload = AttemptPlan(
            outcome=Outcome.OVERLOADED,
            http_status=self._overload_status,
            ttft_s=None,
            per_token_s=0.0,
            end_s=FAST_REJECT_S,
            output_tokens=0,
            uses_slot=False,
        )
        self._gone = AttemptPlan(
            outcome=Outcome.MODEL_GONE,
            http_status=404,
            ttft_s=None,
            per_token_s=0.0,
            end_s=FAST_REJECT_S,
            output_tokens=0,
            uses_slot=False,
        )
        quota = _Quota(world.limits.rpm, world.limits.tpm)
        self._world_quota = quota if world.limits.rpm or world.limits.tpm else None

        self._withdraw: list[_Active[Withdraw]] = []
        self._dns: list[_Active[Dns]] = []
        self._outage: list[_Active[Outage]] = []
        self._silent: list[_Active[Silent]] = []
        self._rate_limit: list[tuple[_Active[RateLimit], _Quota | None]] = []
        self._content_filter: list[_Active[ContentFilter]] = []
        self._capacity: list[_Active[Capacity]] = []
        self._degrade: list[_Active[Degrade]] = []
        self._cut: list[_Active[StreamCut]] = []
        self._stall: list[_Active[StreamStall]] = []
        self._hits = 0
        member, domains = deployment.id, self._domains
        for index, fault in enumerate(faults):
            target = fault.target
            if member not in target.deployments and domains.isdisjoint(target.domains):
                continue
            self._hits += 1
            if isinstance(fault, Withdraw):
                self._withdraw.append(_Active(fault, index, member, domains))
            elif isinstance(fault, Dns):
                self._dns.append(_Active(fault, index, member, domains))
            elif isinstance(fault, Outage):
                self._outage.append(_Active(fault, index, member, domains))
            elif isinstance(fault, Silent):
                self._silent.append(_Active(fault, index, member, domains))
            elif isinstance(fault, RateLimit):
                bucket = _Quota(fault.rpm, fault.tpm) if fault.rpm or fault.tpm else None
                self._rate_limit.append((_Active(fault, index, member, domains), bucket))
            elif isinstance(fault, ContentFilter):
                self._content_filter.append(_Active(fault, index, member, domains))
            elif isinstance(fault, Capacity):
                self._capacity.append(_Active(fault, index, member, domains))
            elif isinstance(fault, Degrade):
                self._degrade.append(_Active(fault, index, member, domains))
            elif isinstance(fault, StreamCut):
                self._cut.append(_Active(fault, index, member, domains))
            else:
                self._stall.append(_Active(fault, index, member, domains))
        self.open_gate = not (
            self._withdraw
            or self._dns
            or self._outage
            or self._silent
            or self._rate_limit
            or self._content_filter
            or self._world_quota
        )

    def __repr__(self) -> str:
        return f"ProviderModel({self.deployment_id!r}, faults={self._hits})"

    def _level(self, active: _Active[F], now: float) -> float:
        """How strongly a fault is on for this deployment at `now` (`level_at`, short-cut)."""
        if now < active.start or now >= active.end:
            return 0.0
        if active.fixed is not None:
            return active.fixed
        return level_at(
            active.fault,
            now,
            member=self.deployment_id,
            seed=self._seed,
            fault_index=active.index,
            domains=self._domains,
        )

    def rate_state(
        self, now: float
    ) -> tuple[tuple[int, int, float] | None, tuple[int, int, float] | None] | None:
        """The world's own rate limits at `now` — (limit, remaining, seconds until full) for
        requests and for tokens — for the `x-ratelimit-*` headers a fake sends on every
        answer; None when the world sets no limits."""
        quota = self._world_quota
        return None if quota is None else quota.state(now)

    # -- capacity -------------------------------------------------------------------------

    def capacity(self, now: float) -> int:
        """Concurrent slots at `now`: the world's capacity shrunk by active capacity faults.

        Each fault scales by `1 − level × (1 − multiplier)`, several multiply, and the
        result is rounded down (a tiny epsilon absorbs float noise such as 100 × 0.29).
        """
        if not self._capacity:
            return self._base_capacity
        factor = 1.0
        for active in self._capacity:
            level = self._level(active, now)
            if level > 0.0:
                factor *= 1.0 - level * (1.0 - active.fault.multiplier)
        if factor == 1.0:
            return self._base_capacity
        return max(0, math.floor(self._base_capacity * factor + 1e-9))

    def overload_plan(self, now: float) -> AttemptPlan:
        """The answer when every slot is busy and the queue is full: a fast 503 (Anthropic: 529).

        Load shedding happens at the front door, so it holds no slot and sends no
        Retry-After (none of the vendors in reference/providers.md sends one on overload).
        """
        return self._overload

    # -- admission ------------------------------------------------------------------------

    def gate(
        self,
        now: float,
        input_tokens: int,
        max_output_tokens: int,
        task: str,
        rng: Random,
    ) -> AttemptPlan | None:
        """A refusal decided when the request reaches the provider, or None to let it queue.

        Severity order — withdraw, dns, outage, silent, rate_limit, content_filter — and,
        within a kind, scenario order: the first fault that fires answers. No answer from
        here holds a slot. A prompt the content filter refuses has already been counted
        against the rate limits: the vendor read it.

        A provider no gate fault hits and with no limits of its own (`open_gate`)
        answers None without looking further; the simulator, which would call this once
        per attempt, skips the call then.
        """
        if self.open_gate:
            return None
        for gone in self._withdraw:
            if self._level(gone, now) > 0.0:
                return self._gone
        for dns in self._dns:
            level = self._level(dns, now)
            if level > 0.0:
                pooled = max(0.0, 1.0 - (now - dns.start) / self._lifetime)
                if _happens(level * (1.0 - pooled), rng):
                    return _failure(Outcome.CONNECT, None, CONNECT_FAIL_S)
        for outage in self._outage:
            if _happens(self._level(outage, now), rng):
                return self._outage_plan(outage.fault, rng)
        for silent in self._silent:
            if _happens(self._level(silent, now), rng):
                return _failure(Outcome.TIMEOUT, None, math.inf)
        tokens = input_tokens + max_output_tokens
        refusal = self._rate_limited(now, tokens, rng)
        if refusal is not None:
            return refusal
        for refuse in self._content_filter:
            wanted = refuse.fault.task
            if (wanted is None or wanted == task) and _happens(self._level(refuse, now), rng):
                return _failure(Outcome.CONTENT_FILTER, 400, self._ttft.draw(rng))
        return None

    def _outage_plan(self, fault: Outage, rng: Random) -> AttemptPlan:
        """What an outage answers, by the outcome the scenario gave it."""
        kind = fault.outcome
        if kind == "connect" or kind == "dns":
            return _failure(Outcome.CONNECT, None, CONNECT_FAIL_S)
        if kind == "overloaded":
            return self._overload
        if kind == "edge_5xx":
            return _failure(Outcome.SERVER, 502, FAST_REJECT_S)
        return _failure(Outcome.SERVER, 500, ERROR_TTFT_FRACTION * self._ttft.draw(rng))

    def _rate_limited(self, now: float, tokens: int, rng: Random) -> AttemptPlan | None:
        """Rate-limit faults, then the world's own provider limits; a 429 or None.

        A fault with rpm/tpm replaces nothing: its buckets and the world's both must
        admit (the provider enforces the tighter). A request refused by one bucket is
        refunded to those that admitted it — a vendor does not count what it refused.
        Retry-After is the time until the buckets refill enough, at least the fault's
        `retry_after` (1 s for world limits); a request larger than a bucket can ever hold
        gets a 429 with no Retry-After (OpenAI's "Request too large": waiting won't help).
        """
        charged: list[_Quota] = []
        for active, quota in self._rate_limit:
            level = self._level(active, now)
            if level <= 0.0:
                continue
            fault = active.fault
            if quota is None:
                if _happens(level, rng):
                    return _refund(charged, tokens, _rate_limit(fault.retry_after))
            elif quota.try_acquire(now, tokens):
                charged.append(quota)
            else:
                refusal = _quota_refusal(quota, now, tokens, fault.retry_after)
                return _refund(charged, tokens, refusal)
        world = self._world_quota
        if world is not None and not world.try_acquire(now, tokens):
            return _refund(charged, tokens, _quota_refusal(world, now, tokens, 1.0))
        return None

    # -- service --------------------------------------------------------------------------

    def plan(
        self,
        now: float,
        input_tokens: int,
        output_tokens: int,
        stream: bool,
        rng: Random,
    ) -> AttemptPlan:
        """How an attempt that holds a slot is served: timing, tokens and how it ends.

        Draws first token and per-token time once each, then applies degrade faults
        (slower by `1 + level × (latency_multiplier − 1)`, both times; first token later
        by `level × extra_ttft`; errors with `level × error_rate`), the world's background
        error rate, then stream cuts and stalls; the first failure that fires wins.
        """
        ttft = self._ttft.draw(rng)
        per_token = self._per_token.draw(rng)
        # The `if`s around the fault loops only skip work (and never a draw) on the common
        # path, where no service fault hits this deployment: this runs once per attempt.
        if self._degrade:
            failing: list[tuple[float, Degrade]] = []
            for degrade in self._degrade:
                level = self._level(degrade, now)
                if level > 0.0:
                    fault = degrade.fault
                    slower = 1.0 + level * (fault.latency_multiplier - 1.0)
                    ttft = ttft * slower + level * fault.extra_ttft
                    per_token *= slower
                    if fault.error_rate > 0.0:
                        failing.append((level * fault.error_rate, fault))
            for probability, fault in failing:
                if _happens(probability, rng):
                    if fault.outcome == "overloaded":
                        status, outcome = self._overload_status, Outcome.OVERLOADED
                    else:
                        status, outcome = 500, Outcome.SERVER
                    return _failure(outcome, status, ERROR_TTFT_FRACTION * ttft, uses_slot=True)
        if _happens(self._error_rate, rng):
            return _failure(Outcome.SERVER, 500, ERROR_TTFT_FRACTION * ttft, uses_slot=True)
        if stream and (self._cut or self._stall):
            for cut in self._cut:
                after = cut.fault.after_tokens
                if output_tokens > after and _happens(self._level(cut, now), rng):
                    return _broken(Outcome.STREAM_CUT, ttft, per_token, after, 0.0)
            for stall in self._stall:
                after = stall.fault.after_tokens
                if output_tokens > after and _happens(self._level(stall, now), rng):
                    pause = stall.fault.stall
                    return _broken(
                        Outcome.STREAM_STALL,
                        ttft,
                        per_token,
                        after,
                        math.inf if pause is None else pause,
                    )
        return _new_plan(  # every field, in order: the common case, once per attempt
            (
                Outcome.OK,
                200,
                ttft,
                per_token,
                ttft + max(0, output_tokens - 1) * per_token,
                output_tokens,
                None,
                0.0,
                True,
            )
        )


def _failure(
    outcome: Outcome, status: int | None, end_s: float, *, uses_slot: bool = False
) -> AttemptPlan:
    """An attempt that ends before any token (a refusal at the gate unless `uses_slot`)."""
    return AttemptPlan(
        outcome=outcome,
        http_status=status,
        ttft_s=None,
        per_token_s=0.0,
        end_s=end_s,
        output_tokens=0,
        uses_slot=uses_slot,
    )


def _rate_limit(retry_after_s: float | None) -> AttemptPlan:
    """A 429 at the front door."""
    return AttemptPlan(
        outcome=Outcome.RATE_LIMITED,
        http_status=429,
        ttft_s=None,
        per_token_s=0.0,
        end_s=FAST_REJECT_S,
        output_tokens=0,
        retry_after_s=retry_after_s,
        uses_slot=False,
    )


def _quota_refusal(quota: _Quota, now: float, tokens: int, at_least: float) -> AttemptPlan:
    """The 429 a refusing bucket gives: back when it has refilled enough, or never."""
    wait = quota.wait_s(now, tokens)
    return _rate_limit(None if wait is None else max(at_least, wait))


def _refund(charged: list[_Quota], tokens: int, plan: AttemptPlan) -> AttemptPlan:
    """Give back what earlier buckets took for a request a later check refused."""
    for quota in charged:
        quota.give_back(tokens)
    return plan


def _broken(
    outcome: Outcome, ttft: float, per_token: float, after: int, stall_s: float
) -> AttemptPlan:
    """A stream that delivered `after` tokens, then was cut or stalled.

    It ends at the time of its last token; with `after == 0` no token arrived, so
    `ttft_s` is None and the break comes when the first token would have.
    """
    return AttemptPlan(
        outcome=outcome,
        http_status=200,
        ttft_s=ttft if after > 0 else None,
        per_token_s=per_token,
        end_s=ttft + max(0, after - 1) * per_token,
        output_tokens=after,
        stall_s=stall_s,
    )
