"""The provider behaviour model: admission, capacity and service under every fault kind.

The simulator and the live fakes both ask `fakes.model` what a provider does, so
these tests pin its answers: one table per step (gate, plan, capacity), the DNS
pooled-connection curve, rate limits, statuses per protocol, which faults hit
which deployment, and the latency distributions (on fixed seeds, so the
statistical checks are exact regression tests, never flaky ones).
"""

from __future__ import annotations

import math
import statistics
from random import Random
from typing import Any

import pytest
from pydantic import TypeAdapter

from fakes.model import (
    CONNECT_FAIL_S,
    ERROR_TTFT_FRACTION,
    FAST_REJECT_S,
    AttemptPlan,
    ProviderModel,
)
from router.core.outcomes import Outcome, classify_status
from router.core.policy import Deployment, policy_from_data
from scenarios.faults import AnyFault, Fault, level_at
from scenarios.schema import DeploymentWorld

FAULT: TypeAdapter[AnyFault] = TypeAdapter(Fault)
ID = "gpt-4o@openai"
DOMAINS = ["vendor:openai", "edge:cloudflare"]
EDGE = {"domains": ["edge:cloudflare"]}


def deployment(
    ident: str = ID, protocol: str = "openai", domains: list[str] | None = None
) -> Deployment:
    """A deployment validated the way a policy file is."""
    data = {
        "deployments": [
            {
                "id": ident,
                "protocol": protocol,
                "base_url": "http://fake",
                "model": ident.split("@")[0],
                "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                "context_window": 128_000,
                "region": "us",
                "domains": DOMAINS if domains is None else domains,
            }
        ],
        "routes": [{"name": "default", "targets": [ident]}],
    }
    return policy_from_data(data, source="test", env={}).deployments[0]


def fault(kind: str, **fields: Any) -> AnyFault:
    """A fault of `kind` on edge:cloudflare from t=0, unless `fields` say otherwise."""
    return FAULT.validate_python({"kind": kind, "target": EDGE, **fields})


def world(**fields: Any) -> DeploymentWorld:
    return DeploymentWorld.model_validate(fields)


def model(
    *faults: AnyFault,
    protocol: str = "openai",
    domains: list[str] | None = None,
    seed: int = 1,
    **world_fields: Any,
) -> ProviderModel:
    return ProviderModel(
        deployment(protocol=protocol, domains=domains), world(**world_fields), faults, seed=seed
    )


def gate(m: ProviderModel, now: float = 10.0, rng: Random | None = None, **kw: Any) -> Any:
    args: dict[str, Any] = {"input_tokens": 100, "max_output_tokens": 100, "task": "chat", **kw}
    return m.gate(now, rng=rng or Random(0), **args)


def plan(m: ProviderModel, now: float = 10.0, rng: Random | None = None, **kw: Any) -> AttemptPlan:
    args: dict[str, Any] = {"input_tokens": 100, "output_tokens": 50, "stream": True, **kw}
    return m.plan(now, rng=rng or Random(0), **args)


# -- gate: one case per fault kind and outcome --------------------------------------------

GATE_CASES = [
    pytest.param(("withdraw", {}), "openai", Outcome.MODEL_GONE, 404, id="withdraw-404"),
    pytest.param(("dns", {"start": 0}), "openai", Outcome.CONNECT, None, id="dns-long-after"),
    pytest.param(("outage", {"outcome": "connect"}), "openai", Outcome.CONNECT, None, id="connect"),
    pytest.param(("outage", {"outcome": "dns"}), "openai", Outcome.CONNECT, None, id="outage-dns"),
    pytest.param(("outage", {"outcome": "server"}), "openai", Outcome.SERVER, 500, id="server"),
    pytest.param(("outage", {"outcome": "edge_5xx"}), "openai", Outcome.SERVER, 502, id="edge"),
    pytest.param(
        ("outage", {"outcome": "overloaded"}), "openai", Outcome.OVERLOADED, 503, id="overload-503"
    ),
    pytest.param(
        ("outage", {"outcome": "overloaded"}),
        "anthropic",
        Outcome.OVERLOADED,
        529,
        id="overload-anthropic-529",
    ),
    pytest.param(("silent", {}), "openai", Outcome.TIMEOUT, None, id="silent"),
    pytest.param(
        ("rate_limit", {"retry_after": "7s"}), "openai", Outcome.RATE_LIMITED, 429, id="429"
    ),
    pytest.param(("content_filter", {}), "openai", Outcome.CONTENT_FILTER, 400, id="filter-all"),
    pytest.param(
        ("content_filter", {"task": "chat"}),
        "openai",
        Outcome.CONTENT_FILTER,
        400,
        id="filter-task",
    ),
]


@pytest.mark.parametrize(("spec", "protocol", "outcome", "status"), GATE_CASES)
def test_gate_answers_each_fault_kind(
    spec: tuple[str, dict[str, Any]], protocol: str, outcome: Outcome, status: int | None
) -> None:
    kind, fields = spec
    answer = gate(model(fault(kind, **fields), protocol=protocol), now=1000.0)
    assert answer is not None
    assert (answer.outcome, answer.http_status) == (outcome, status)
    assert answer.uses_slot is False
    assert answer.ttft_s is None and answer.output_tokens == 0
    if status is not None:  # the router reading the status back agrees with the model
        code = "content_filter" if outcome is Outcome.CONTENT_FILTER else None
        assert classify_status(status, error_code=code) is outcome


@pytest.mark.parametrize(
    ("spec", "end_s"),
    [
        (("withdraw", {}), FAST_REJECT_S),
        (("outage", {"outcome": "connect"}), CONNECT_FAIL_S),
        (("outage", {"outcome": "edge_5xx"}), FAST_REJECT_S),
        (("outage", {"outcome": "overloaded"}), FAST_REJECT_S),
        (("silent", {}), math.inf),
        (("rate_limit", {}), FAST_REJECT_S),
    ],
)
def test_gate_timing_of_fast_answers(spec: tuple[str, dict[str, Any]], end_s: float) -> None:
    kind, fields = spec
    answer = gate(model(fault(kind, **fields)))
    assert answer is not None and answer.end_s == end_s


def test_server_error_and_filter_take_a_share_of_a_first_token() -> None:
    ttft: dict[str, Any] = {"ttft": {"quantiles": [[0, 2.0], [1, 2.0]]}}  # a constant 2 s
    server = gate(model(fault("outage", outcome="server"), **ttft))
    refused = gate(model(fault("content_filter"), **ttft))
    assert server.end_s == pytest.approx(ERROR_TTFT_FRACTION * 2.0)
    assert refused.end_s == pytest.approx(2.0)


def test_rate_limit_fault_without_limits_sends_its_retry_after() -> None:
    answer = gate(model(fault("rate_limit", retry_after="7s")))
    assert answer.retry_after_s == 7.0


@pytest.mark.parametrize(
    "spec",
    [
        ("outage", {"start": 20}),  # not yet
        ("outage", {"start": 0, "end": 5}),  # over
        ("outage", {"intensity": 0.0}),
        ("content_filter", {"task": "code"}),  # another task class
        ("capacity", {"multiplier": 0.0}),  # not a gate fault
        ("degrade", {"error_rate": 1.0}),  # served, then fails: plan's business
        ("stream_cut", {}),
        ("dns", {"start": 10}),  # at onset every connection is still pooled
    ],
)
def test_gate_lets_through_when_no_gate_fault_is_on(spec: tuple[str, dict[str, Any]]) -> None:
    kind, fields = spec
    assert gate(model(fault(kind, **fields)), now=10.0) is None


@pytest.mark.parametrize(
    ("kinds", "winner"),
    [
        (["content_filter", "outage", "withdraw"], Outcome.MODEL_GONE),
        (["silent", "dns"], Outcome.CONNECT),
        (["rate_limit", "silent", "outage"], Outcome.SERVER),
        (["content_filter", "silent"], Outcome.TIMEOUT),
        (["content_filter", "rate_limit"], Outcome.RATE_LIMITED),
    ],
)
def test_gate_applies_faults_in_severity_order(kinds: list[str], winner: Outcome) -> None:
    faults = [fault(kind) for kind in kinds]
    assert gate(model(*faults), now=1000.0).outcome is winner


def test_partial_level_fails_that_share_of_requests() -> None:
    m = model(fault("outage", intensity=0.3))
    rng = Random(5)
    failed = sum(gate(m, rng=rng) is not None for _ in range(20_000))
    assert failed / 20_000 == pytest.approx(0.3, abs=0.015)


@pytest.mark.parametrize("fields", [{"intensity": 1.0}, {"start": 100}, {"start": 0, "end": 5}])
def test_certain_and_impossible_faults_draw_nothing(fields: dict[str, Any]) -> None:
    """Level 1 and level 0 leave the random stream untouched, so seeds stay comparable.

    (A content filter that fires draws its own timing, so it only takes part when off.)
    """
    rng = Random(3)
    before = rng.getstate()
    kinds = ["outage", "silent", "rate_limit"]
    if fields.get("intensity") != 1.0:
        kinds.append("content_filter")
    for kind in kinds:
        options = {"outcome": "connect"} if kind == "outage" else {}
        gate(model(fault(kind, **fields, **options)), rng=rng)
    assert rng.getstate() == before


# -- failure domains: which faults hit --------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "domains", "hidden", "hit"),
    [
        pytest.param({"domains": ["edge:cloudflare"]}, DOMAINS, [], True, id="shared-domain"),
        pytest.param({"domains": ["vendor:anthropic"]}, DOMAINS, [], False, id="other-domain"),
        pytest.param({"deployments": [ID]}, [], [], True, id="by-id"),
        pytest.param({"deployments": ["other@x"]}, DOMAINS, [], False, id="other-id"),
        pytest.param({"domains": ["cloud:gcp"]}, DOMAINS, ["cloud:gcp"], True, id="hidden-domain"),
        pytest.param({"domains": ["cloud:gcp"]}, DOMAINS, [], False, id="no-hidden-domain"),
        pytest.param(
            {"domains": ["cloud:gcp", "vendor:openai"]}, DOMAINS, [], True, id="any-of-several"
        ),
    ],
)
def test_a_fault_hits_through_any_domain_or_the_id(
    target: dict[str, Any], domains: list[str], hidden: list[str], hit: bool
) -> None:
    f = FAULT.validate_python({"kind": "withdraw", "target": target})
    m = model(f, domains=domains, hidden_domains=hidden)
    assert (gate(m) is not None) is hit
    assert repr(m) == f"ProviderModel({ID!r}, faults={int(hit)})"


def test_faults_through_different_domains_compose() -> None:
    """An edge capacity fault and a vendor capacity fault on one deployment multiply."""
    edge = fault("capacity", multiplier=0.5)
    vendor = FAULT.validate_python(
        {"kind": "capacity", "target": {"domains": ["vendor:openai"]}, "multiplier": 0.5}
    )
    assert model(edge, vendor, capacity=200).capacity(10.0) == 50


# -- capacity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "now", "expected"),
    [
        ([], 10.0, 200),
        ([{"multiplier": 0.5}], 10.0, 100),
        ([{"multiplier": 0.0}], 10.0, 0),
        ([{"multiplier": 0.0, "intensity": 0.25}], 10.0, 150),
        ([{"multiplier": 0.5}, {"multiplier": 0.5}], 10.0, 50),
        ([{"multiplier": 0.29}], 10.0, 58),  # rounded down, without float noise
        ([{"multiplier": 0.333}], 10.0, 66),
        ([{"multiplier": 0.0, "start": 20}], 10.0, 200),
        ([{"multiplier": 0.0, "end": 100, "shape": {"kind": "ramp"}}], 50.0, 100),
    ],
)
def test_capacity_under_capacity_faults(
    faults: list[dict[str, Any]], now: float, expected: int
) -> None:
    m = model(*(fault("capacity", **f) for f in faults), capacity=200)
    assert m.capacity(now) == expected
    assert m.queue_limit == 400


SHAPES = [
    {"start": 10, "end": 90},
    {"start": 10, "end": 90, "intensity": 0.4},
    {"start": 10, "end": 90, "shape": {"kind": "ramp", "from_level": 0.2}},
    {"start": 10, "shape": {"kind": "ramp", "over": 40}},
    {"start": 10, "end": 90, "shape": {"kind": "piecewise", "points": [[0, 0.1], [20, 0.9]]}},
    {"start": 10, "end": 90, "shape": {"kind": "oscillate", "period": 10, "settle_after": 50}},
    {"start": 10, "end": 90, "shape": {"kind": "staggered", "starts": {ID: 15}, "ends": {ID: 60}}},
    {"start": 10, "end": 90, "shape": {"kind": "staggered", "starts": {"edge:cloudflare": 30}}},
    {"start": 10, "end": 90, "shape": {"kind": "bernoulli", "slot": 5, "probability": 0.5}},
    {
        "start": 0,
        "shape": {"kind": "random", "availability": 0.5, "median_outage": 5, "p90_outage": 9},
    },
]


@pytest.mark.parametrize("fields", SHAPES, ids=lambda f: f.get("shape", {}).get("kind", "step"))
def test_fault_levels_follow_the_shared_timeline(fields: dict[str, Any]) -> None:
    """The model's short cuts agree with `level_at` at every moment and shape."""
    f = fault("capacity", multiplier=0.0, **fields)
    m = model(f, capacity=1000, seed=7)
    for now in [x * 0.5 for x in range(0, 220)]:
        level = level_at(f, now, member=ID, seed=7, fault_index=0, domains=DOMAINS)
        assert m.capacity(now) == math.floor(1000 * (1 - level) + 1e-9), now


# -- DNS: pooled connections keep working until recycled ----------------------------------


@pytest.mark.parametrize(
    ("now", "failing"),
    [(100.0, 0.0), (175.0, 0.25), (250.0, 0.5), (325.0, 0.75), (400.0, 1.0), (1000.0, 1.0)],
)
def test_dns_failures_grow_linearly_over_a_connection_lifetime(now: float, failing: float) -> None:
    m = model(fault("dns", start=100), connection_lifetime=300)
    rng = Random(11)
    failed = [gate(m, now=now, rng=rng) for _ in range(4000)]
    share = sum(answer is not None for answer in failed) / len(failed)
    assert share == pytest.approx(failing, abs=0.03)
    assert all(a.outcome is Outcome.CONNECT and a.http_status is None for a in failed if a)


def test_dns_at_half_level_fails_half_of_the_unpooled() -> None:
    m = model(fault("dns", start=0, intensity=0.5), connection_lifetime=100)
    rng = Random(2)
    share = sum(gate(m, now=50.0, rng=rng) is not None for _ in range(8000)) / 8000
    assert share == pytest.approx(0.25, abs=0.02)


def test_dns_onset_is_the_staggered_members_own_start() -> None:
    shape = {"kind": "staggered", "starts": {ID: 200}}
    m = model(fault("dns", start=0, end=1000, shape=shape), connection_lifetime=100)
    assert gate(m, now=150.0) is None  # not started for this member
    assert gate(m, now=200.0) is None  # just started: all connections pooled
    assert gate(m, now=300.0) is not None  # one lifetime later: none left


# -- rate limits -------------------------------------------------------------------------


def test_world_rpm_answers_429_with_time_to_refill() -> None:
    m = model(limits={"rpm": 60})
    assert all(gate(m, now=0.0) is None for _ in range(60))
    answer = gate(m, now=0.0)
    assert answer.outcome is Outcome.RATE_LIMITED and answer.http_status == 429
    assert answer.retry_after_s == pytest.approx(1.0)  # one request back after 1 s
    assert answer.uses_slot is False
    assert gate(m, now=1.0) is None


def test_world_tpm_retry_after_is_the_refill_time_at_least_one_second() -> None:
    m = model(limits={"tpm": 6000})
    admitted = [gate(m, now=0.0, input_tokens=500, max_output_tokens=500) for _ in range(6)]
    assert admitted == [None] * 6
    answer = gate(m, now=0.0, input_tokens=500, max_output_tokens=500)
    assert answer.retry_after_s == pytest.approx(10.0)  # 1000 tokens at 100 tokens/s
    small = gate(m, now=0.0, input_tokens=10, max_output_tokens=10)
    assert small.retry_after_s == 1.0  # 0.2 s to refill, but never below a second


def test_request_larger_than_the_bucket_gets_429_without_retry_after() -> None:
    m = model(limits={"tpm": 1000})
    answer = gate(m, input_tokens=900, max_output_tokens=200)
    assert answer.outcome is Outcome.RATE_LIMITED and answer.retry_after_s is None


def test_rate_limit_fault_with_rpm_limits_only_while_active() -> None:
    m = model(fault("rate_limit", start=10, end=20, rpm=2, retry_after="3s"))
    assert all(gate(m, now=5.0) is None for _ in range(100))
    assert [gate(m, now=10.0) is None for _ in range(3)] == [True, True, False]
    assert gate(m, now=10.0).retry_after_s == 30.0  # one request at 2 per minute
    assert gate(m, now=11.0).retry_after_s == pytest.approx(29.0)
    assert all(gate(m, now=20.0) is None for _ in range(100))


def test_rate_limit_fault_retry_after_is_at_least_its_own() -> None:
    m = model(fault("rate_limit", rpm=600, retry_after="5s"))
    for _ in range(600):
        assert gate(m, now=0.0) is None
    assert gate(m, now=0.0).retry_after_s == 5.0  # refill is 0.1 s; the fault says 5


def test_a_refused_request_is_refunded_to_limits_that_admitted_it() -> None:
    m = model(fault("rate_limit", rpm=1), limits={"tpm": 100})
    for _ in range(3):  # too large for the world's tpm: refused after the fault's rpm admitted
        assert gate(m, input_tokens=1000).retry_after_s is None
    assert gate(m, input_tokens=10, max_output_tokens=10) is None


# -- status codes per protocol ------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "status"),
    [
        ("anthropic", 529),
        ("openai", 503),
        ("azure-openai", 503),
        ("gemini", 503),
        ("bedrock", 503),
        ("mistral", 503),
    ],
)
def test_overload_is_529_for_anthropic_and_503_elsewhere(protocol: str, status: int) -> None:
    overload = model(protocol=protocol).overload_plan(10.0)
    assert overload == AttemptPlan(
        outcome=Outcome.OVERLOADED,
        http_status=status,
        ttft_s=None,
        per_token_s=0.0,
        end_s=FAST_REJECT_S,
        output_tokens=0,
        retry_after_s=None,
        uses_slot=False,
    )
    degraded = model(fault("degrade", error_rate=1.0, outcome="overloaded"), protocol=protocol)
    assert plan(degraded).http_status == status


# -- plan: service under degrade and stream faults ---------------------------------------

CONSTANT: dict[str, Any] = {  # a 1 s first token, then 0.1 s per token
    "ttft": {"quantiles": [[0, 1.0], [1, 1.0]]},
    "per_token": {"quantiles": [[0, 0.1], [1, 0.1]]},
}


def test_an_ok_answer_ends_after_its_last_token() -> None:
    answer = plan(model(**CONSTANT), output_tokens=11)
    assert answer == AttemptPlan(
        outcome=Outcome.OK,
        http_status=200,
        ttft_s=1.0,
        per_token_s=0.1,
        end_s=answer.end_s,
        output_tokens=11,
    )
    assert answer.end_s == pytest.approx(2.0)
    assert plan(model(**CONSTANT), output_tokens=0).end_s == 1.0


PLAN_CASES = [
    pytest.param(
        ("degrade", {"latency_multiplier": 3.0}), {}, (Outcome.OK, 200, 3.0, 0.3, 50), id="slower"
    ),
    pytest.param(
        ("degrade", {"latency_multiplier": 3.0, "intensity": 0.5}),
        {},
        (Outcome.OK, 200, 2.0, 0.2, 50),
        id="slower-at-half-level",
    ),
    pytest.param(
        ("degrade", {"extra_ttft": "4s", "intensity": 0.5}),
        {},
        (Outcome.OK, 200, 3.0, 0.1, 50),
        id="extra-first-token",
    ),
    pytest.param(
        ("degrade", {"error_rate": 1.0}), {}, (Outcome.SERVER, 500, None, 0.0, 0), id="errors"
    ),
    pytest.param(
        ("degrade", {"error_rate": 1.0, "outcome": "overloaded"}),
        {},
        (Outcome.OVERLOADED, 503, None, 0.0, 0),
        id="overloaded-errors",
    ),
    pytest.param(
        ("stream_cut", {"after_tokens": 10}),
        {},
        (Outcome.STREAM_CUT, 200, 1.0, 0.1, 10),
        id="cut",
    ),
    pytest.param(
        ("stream_cut", {"after_tokens": 10}),
        {"stream": False},
        (Outcome.OK, 200, 1.0, 0.1, 50),
        id="cut-needs-a-stream",
    ),
    pytest.param(
        ("stream_cut", {"after_tokens": 50}),
        {},
        (Outcome.OK, 200, 1.0, 0.1, 50),
        id="cut-after-the-answer-is-too-late",
    ),
    pytest.param(
        ("stream_cut", {"after_tokens": 0}),
        {},
        (Outcome.STREAM_CUT, 200, None, 0.1, 0),
        id="cut-before-any-token",
    ),
    pytest.param(
        ("stream_stall", {"after_tokens": 5}),
        {},
        (Outcome.STREAM_STALL, 200, 1.0, 0.1, 5),
        id="stall",
    ),
    pytest.param(
        ("stream_stall", {"start": 20}), {}, (Outcome.OK, 200, 1.0, 0.1, 50), id="stall-later"
    ),
]


@pytest.mark.parametrize(("spec", "kw", "expected"), PLAN_CASES)
def test_plan_under_each_service_fault(
    spec: tuple[str, dict[str, Any]],
    kw: dict[str, Any],
    expected: tuple[Outcome, int, float | None, float, int],
) -> None:
    kind, fields = spec
    answer = plan(model(fault(kind, **fields), **CONSTANT), **kw)
    outcome, status, ttft, per_token, tokens = expected
    assert (answer.outcome, answer.http_status, answer.output_tokens) == (outcome, status, tokens)
    assert answer.ttft_s == (None if ttft is None else pytest.approx(ttft))
    assert answer.uses_slot is True
    if answer.outcome in {Outcome.SERVER, Outcome.OVERLOADED}:
        assert answer.end_s == pytest.approx(ERROR_TTFT_FRACTION * 1.0)
    else:
        assert answer.per_token_s == pytest.approx(per_token)
        first = 1.0 if ttft is None else ttft
        assert answer.end_s == pytest.approx(first + max(0, tokens - 1) * per_token)


@pytest.mark.parametrize(("stall", "stall_s"), [({}, math.inf), ({"stall": "45s"}, 45.0)])
def test_a_stall_lasts_its_stall_or_for_good(stall: dict[str, Any], stall_s: float) -> None:
    answer = plan(model(fault("stream_stall", **stall), **CONSTANT))
    assert answer.stall_s == stall_s
    assert answer.end_s == pytest.approx(1.0 + 19 * 0.1)  # 20 tokens by default


def test_background_error_rate_fails_its_share_with_500() -> None:
    m = model(error_rate=0.1)
    rng = Random(4)
    answers = [plan(m, rng=rng) for _ in range(20_000)]
    failed = [a for a in answers if a.outcome is not Outcome.OK]
    assert len(failed) / len(answers) == pytest.approx(0.1, abs=0.01)
    assert {(a.outcome, a.http_status, a.ttft_s) for a in failed} == {(Outcome.SERVER, 500, None)}


def test_degrade_errors_scale_with_level() -> None:
    m = model(fault("degrade", error_rate=0.5, intensity=0.4))
    rng = Random(9)
    failed = sum(plan(m, rng=rng).outcome is Outcome.SERVER for _ in range(20_000))
    assert failed / 20_000 == pytest.approx(0.2, abs=0.01)


# -- determinism ---------------------------------------------------------------------------


def _run(seed: int) -> list[AttemptPlan | None]:
    faults = [
        fault("outage", intensity=0.2),
        fault("dns", start=0),
        fault(
            "degrade", error_rate=0.3, latency_multiplier=2.0, shape={"kind": "ramp", "over": 50}
        ),
        fault("stream_cut", intensity=0.3),
        fault("content_filter", intensity=0.1),
    ]
    m = model(*faults, seed=seed, limits={"rpm": 600})
    rng = Random(seed)
    out: list[AttemptPlan | None] = []
    for i in range(300):
        now = i * 0.5
        out.append(gate(m, now=now, rng=rng) or plan(m, now=now, rng=rng))
    return out


def test_one_seed_one_run() -> None:
    assert _run(1) == _run(1)
    assert _run(1) != _run(2)


# -- latency distributions ----------------------------------------------------------------


@pytest.mark.parametrize(("median", "p99"), [(0.6, 3.0), (0.015, 0.05), (1.0, 1.0)])
def test_lognormal_latency_hits_its_median_and_p99(median: float, p99: float) -> None:
    m = model(ttft={"median": median, "p99": p99}, per_token={"median": median, "p99": p99})
    rng = Random(2024)
    answers = [plan(m, rng=rng) for _ in range(20_000)]
    for values in ([a.ttft_s or 0.0 for a in answers], [a.per_token_s for a in answers]):
        cuts = statistics.quantiles(values, n=100)
        assert statistics.median(values) == pytest.approx(median, rel=0.02)
        assert cuts[98] == pytest.approx(p99, rel=0.05)


def test_quantile_table_is_read_linearly() -> None:
    table = {"quantiles": [[0.0, 0.1], [0.5, 0.2], [0.9, 1.0], [1.0, 5.0]]}
    m = model(ttft=table)
    rng = Random(8)
    values = [plan(m, rng=rng).ttft_s or 0.0 for _ in range(20_000)]
    cuts = statistics.quantiles(values, n=100)
    assert min(values) >= 0.1 and max(values) <= 5.0
    assert cuts[24] == pytest.approx(0.15, rel=0.03)
    assert cuts[49] == pytest.approx(0.2, rel=0.03)
    assert cuts[69] == pytest.approx(0.6, rel=0.03)
    assert cuts[94] == pytest.approx(3.0, rel=0.05)


def test_quantile_table_clamps_outside_its_points() -> None:
    m = model(ttft={"quantiles": [[0.25, 1.0], [0.75, 2.0]]})
    rng = Random(1)
    values = [plan(m, rng=rng).ttft_s or 0.0 for _ in range(4000)]
    assert min(values) == 1.0 and max(values) == 2.0
    assert sum(v == 1.0 for v in values) / 4000 == pytest.approx(0.25, abs=0.03)
