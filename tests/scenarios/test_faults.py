"""Fault shapes over time (`level_at`) and the fault models' own validation.

The simulator and the live fakes both ask `level_at` how strongly a fault is on,
so its timeline *is* the scenario: an off-by-one at a window edge moves every
metric measured there. Each shape gets a table of (moment, expected level); the
random shapes get statistical checks on fixed seeds, which makes them exact
regression tests rather than flaky ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from router.core.policy import format_path, validation_problems
from scenarios.faults import FAULT_KINDS, AnyFault, Fault, Withdraw, level_at

FAULT = TypeAdapter(Fault)
EDGE = {"domains": ["edge:cloudflare"]}


def fault(**fields: Any) -> AnyFault:
    """An outage on edge:cloudflare unless `fields` say otherwise."""
    data: dict[str, Any] = {"kind": "outage", "target": EDGE, **fields}
    return FAULT.validate_python(data)


def levels(f: AnyFault, moments: list[float], member: str = "gpt-4o@openai") -> list[float]:
    return [level_at(f, now, member=member, seed=1, fault_index=0) for now in moments]


# -- deterministic shapes: (fault fields, [(now, expected level), ...]) --------------------

SHAPE_CASES = [
    pytest.param(
        {"start": 100, "end": 200},
        [(0, 0.0), (99.999, 0.0), (100, 1.0), (150, 1.0), (199.999, 1.0), (200, 0.0), (1e6, 0.0)],
        id="step-on-inside-the-half-open-window",
    ),
    pytest.param(
        {"start": "1m", "end": "2m", "intensity": 0.3},
        [(59, 0.0), (60, 0.3), (119, 0.3), (120, 0.0)],
        id="step-scaled-by-intensity",
    ),
    pytest.param(
        {"start": 10},
        [(9, 0.0), (10, 1.0), (1e9, 1.0)],
        id="step-open-ended-stays-on",
    ),
    pytest.param(
        {"start": 100, "end": 400, "shape": {"kind": "ramp", "from_level": 0.2, "over": 100}},
        [(99, 0.0), (100, 0.2), (150, 0.6), (200, 1.0), (399, 1.0), (400, 0.0)],
        id="ramp-over-then-holds",
    ),
    pytest.param(
        {"start": 0, "end": 100, "shape": {"kind": "ramp"}},
        [(0, 0.0), (25, 0.25), (50, 0.5), (99, 0.99), (100, 0.0)],
        id="ramp-over-the-whole-window-by-default",
    ),
    pytest.param(
        {"start": 0, "end": 100, "shape": {"kind": "ramp", "from_level": 1, "to_level": 0}},
        [(0, 1.0), (50, 0.5), (75, 0.25)],
        id="ramp-down-a-recovery",
    ),
    pytest.param(
        {
            "start": 0,
            "end": 100,
            "intensity": 0.5,
            "shape": {"kind": "ramp", "from_level": 0.0, "to_level": 1.0},
        },
        [(50, 0.25), (99, 0.495)],
        id="ramp-scaled-by-intensity",
    ),
    pytest.param(
        {"start": 0, "end": 1000, "shape": {"kind": "oscillate", "period": 60, "duty": 0.25}},
        [(0, 1.0), (14.9, 1.0), (15, 0.0), (59.9, 0.0), (60, 1.0), (74.9, 1.0), (75, 0.0)],
        id="oscillate-on-for-duty-of-each-period",
    ),
    pytest.param(
        {
            "start": 100,
            "end": 1000,
            "shape": {"kind": "oscillate", "period": "1m", "duty": 0.5, "settle_after": "5m"},
        },
        [(100, 1.0), (130, 0.0), (399, 0.0), (400, 1.0), (430, 1.0), (999, 1.0), (1000, 0.0)],
        id="oscillate-settles-into-full-failure",
    ),
    pytest.param(
        {"start": 0, "end": 100, "shape": {"kind": "oscillate", "period": 10, "duty": 1}},
        [(0, 1.0), (5, 1.0), (10, 1.0), (99, 1.0)],
        id="oscillate-full-duty-is-a-step",
    ),
]


@pytest.mark.parametrize(("fields", "timeline"), SHAPE_CASES)
def test_level_at(fields: dict[str, Any], timeline: list[tuple[float, float]]) -> None:
    f = fault(**fields)
    moments = [now for now, _ in timeline]
    assert levels(f, moments) == pytest.approx([level for _, level in timeline])


STAGGERED = fault(
    start=100,
    end=1000,
    target={"domains": ["edge:cloudflare"], "deployments": ["a", "b", "c"]},
    shape={"kind": "staggered", "starts": {"a": 0, "b": "50s"}, "ends": {"a": 200, "c": 700}},
)


@pytest.mark.parametrize(
    ("member", "timeline"),
    [
        pytest.param("a", [(99, 0.0), (100, 1.0), (299, 1.0), (300, 0.0)], id="own-end"),
        pytest.param("b", [(149, 0.0), (150, 1.0), (999, 1.0), (1000, 0.0)], id="own-start"),
        pytest.param("c", [(99, 0.0), (100, 1.0), (799, 1.0), (800, 0.0)], id="end-only"),
        pytest.param(
            "d", [(99, 0.0), (100, 1.0), (999, 1.0), (1000, 0.0)], id="unlisted-uses-window"
        ),
    ],
)
def test_staggered_members(member: str, timeline: list[tuple[float, float]]) -> None:
    moments = [now for now, _ in timeline]
    assert levels(STAGGERED, moments, member) == [level for _, level in timeline]


def test_staggered_offsets_keyed_by_domain_apply_to_its_deployments() -> None:
    """scenarios/README.md: staggered offsets are "by deployment id or domain"."""
    f = fault(
        start=0,
        end=1000,
        target={"domains": ["region:aws/us-east-1", "region:aws/us-west-2"]},
        shape={
            "kind": "staggered",
            "starts": {"region:aws/us-west-2": 300, "bedrock-west": 500},
            "ends": {"region:aws/us-east-1": 400, "region:aws/us-west-2": 800},
        },
    )

    def on(member: str, domains: tuple[str, ...], moments: tuple[float, ...]) -> list[float]:
        return [
            level_at(f, now, member=member, seed=1, fault_index=0, domains=domains)
            for now in moments
        ]

    east, west = ("vendor:aws", "region:aws/us-east-1"), ("region:aws/us-west-2",)
    assert on("bedrock-east", east, (0, 399, 400)) == [1.0, 1.0, 0.0]
    assert on("vertex-west", west, (299, 300, 799, 800)) == [0.0, 1.0, 1.0, 0.0]
    assert on("bedrock-west", west, (300, 500)) == [0.0, 1.0], "an offset keyed by the id wins"
    # Down while any of its domains is down: the earliest start and the latest end.
    assert on("multi", east + west, (0, 500, 799, 800)) == [1.0, 1.0, 1.0, 0.0]
    assert on("elsewhere", ("region:gcp/us-central1",), (0, 999)) == [1.0, 1.0], "the window"


# -- random shapes: exact on a seed, right on average --------------------------------------


def _bad_slots(f: AnyFault, slots: int, slot: float, *, seed: int, member: str = "m") -> list[bool]:
    return [
        level_at(f, (i + 0.5) * slot, member=member, seed=seed, fault_index=0) > 0
        for i in range(slots)
    ]


BERNOULLI = fault(start=0, shape={"kind": "bernoulli", "slot": "10s", "probability": 0.3})


def test_bernoulli_is_deterministic_per_seed() -> None:
    assert _bad_slots(BERNOULLI, 200, 10, seed=7) == _bad_slots(BERNOULLI, 200, 10, seed=7)
    assert _bad_slots(BERNOULLI, 200, 10, seed=7) != _bad_slots(BERNOULLI, 200, 10, seed=8)


def test_bernoulli_is_constant_within_a_slot() -> None:
    for i in range(50):
        inside = {
            level_at(BERNOULLI, 10 * i + dt, member="m", seed=3, fault_index=0)
            for dt in (0, 2.5, 9.99)
        }
        assert len(inside) == 1, f"slot {i} changed its mind: {inside}"


def test_bernoulli_fraction_of_bad_slots_matches_probability() -> None:
    bad = _bad_slots(BERNOULLI, 20_000, 10, seed=1)
    assert sum(bad) / len(bad) == pytest.approx(0.3, abs=0.02)


def test_bernoulli_slots_are_shared_by_every_member() -> None:
    """One flaky dependency: its bad slots hit every deployment behind it at once."""
    assert _bad_slots(BERNOULLI, 300, 10, seed=2, member="a") == _bad_slots(
        BERNOULLI, 300, 10, seed=2, member="b"
    )


RANDOM = fault(
    start=0,
    shape={"kind": "random", "availability": 0.8, "median_outage": "1m", "p90_outage": "3m"},
)
HORIZON = 400 * 433.0  # about 400 up/down cycles of this process (mean cycle ≈ 433 s)
SAMPLES = 3000


def _down(member: str, seed: int = 1) -> list[float]:
    return [
        level_at(RANDOM, HORIZON * i / SAMPLES, member=member, seed=seed, fault_index=0)
        for i in range(SAMPLES)
    ]


def test_random_long_run_time_down_matches_availability() -> None:
    for member in ("a", "b", "c"):
        down = _down(member)
        assert sum(down) / SAMPLES == pytest.approx(1 - 0.8, abs=0.03), member


def test_random_is_deterministic_per_seed() -> None:
    assert _down("a", seed=5)[:500] == _down("a", seed=5)[:500]
    assert _down("a", seed=5)[:500] != _down("a", seed=6)[:500]


def test_random_members_are_independent() -> None:
    a, b = _down("a"), _down("b")
    assert a != b
    p_a, p_b = sum(a) / SAMPLES, sum(b) / SAMPLES
    both = sum(x * y for x, y in zip(a, b, strict=True)) / SAMPLES
    # Identical processes would give both == p_a ≈ 0.2; independent ones p_a × p_b ≈ 0.04.
    assert both == pytest.approx(p_a * p_b, abs=0.03)


def test_random_respects_the_window_and_intensity() -> None:
    f = fault(
        start=1000,
        end=2000,
        intensity=0.5,
        shape={"kind": "random", "availability": 0.5, "median_outage": 10, "p90_outage": 10},
    )
    assert level_at(f, 999, member="a", seed=1, fault_index=0) == 0.0
    assert level_at(f, 2000, member="a", seed=1, fault_index=0) == 0.0
    inside = {level_at(f, 1000 + t, member="a", seed=1, fault_index=0) for t in range(1000)}
    assert inside == {0.0, 0.5}


# -- validation: (fault data, expected error path, message fragment) -----------------------

INVALID = [
    pytest.param(
        {"kind": "withdraw", "target": EDGE, "start": "1h", "end": "2h"},
        "end",
        "a withdrawal is for good: leave end out",
        id="withdraw-with-end",
    ),
    pytest.param(
        {"kind": "degrade", "target": EDGE},
        "",
        "degrade needs error_rate, latency_multiplier or extra_ttft",
        id="degrade-with-nothing",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "shape": {"kind": "ramp", "to_level": 1.5}},
        "shape.to_level",
        "less than or equal to 1",
        id="ramp-above-one",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "shape": {"kind": "ramp", "from_level": -0.1}},
        "shape.from_level",
        "greater than or equal to 0",
        id="ramp-below-zero",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "start": "1h", "shape": {"kind": "ramp"}},
        "",
        "an open-ended ramp needs `over`",
        id="open-ended-ramp-without-over",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "shape": {"kind": "oscillate", "period": 0}},
        "shape.period",
        "greater than 0",
        id="oscillate-period-zero",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "shape": {"kind": "oscillate", "period": "0s"}},
        "shape.period",
        "greater than 0",
        id="oscillate-period-zero-text",
    ),
    pytest.param(
        {
            "kind": "outage",
            "target": EDGE,
            "shape": {"kind": "random", "availability": 0.9, "median_outage": 60, "p90_outage": 30},
        },
        "shape",
        "p90_outage must be ≥ median_outage",
        id="random-p90-below-median",
    ),
    pytest.param(
        {
            "kind": "outage",
            "target": EDGE,
            "shape": {"kind": "random", "availability": 1, "median_outage": 1, "p90_outage": 2},
        },
        "shape.availability",
        "less than 1",
        id="random-availability-one",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "shape": {"kind": "staggered"}},
        "shape",
        "staggered needs per-member starts or ends",
        id="staggered-with-no-member",
    ),
    pytest.param(
        {
            "kind": "outage",
            "target": EDGE,
            "shape": {"kind": "bernoulli", "slot": 0, "probability": 0.5},
        },
        "shape.slot",
        "greater than 0",
        id="bernoulli-slot-zero",
    ),
    pytest.param(
        {"kind": "outage", "target": {}},
        "target",
        "a target needs at least one of domains or deployments",
        id="target-with-neither",
    ),
    pytest.param(
        {"kind": "outage", "target": {"domains": ["Edge Cloudflare"]}},
        "target.domains",
        "failure domain 'Edge Cloudflare' must look like 'kind:name'",
        id="bad-domain-label",
    ),
    pytest.param(
        {"kind": "outage", "target": {"domains": ["cloudflare"]}},
        "target.domains",
        "failure domain 'cloudflare' must look like 'kind:name' (e.g. 'edge:cloudflare')",
        id="domain-label-without-kind",
    ),
    pytest.param(
        {"kind": "explosion", "target": EDGE},
        "kind",
        "unknown kind; expected one of 'outage', 'degrade', 'capacity'",
        id="unknown-kind",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "start": "2h", "end": "1h"},
        "end",
        "end must be after start",
        id="end-before-start",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "start": "1h", "end": "1h"},
        "end",
        "end must be after start",
        id="empty-window",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "outcome": "teapot"},
        "outcome",
        "'connect', 'dns', 'server', 'overloaded' or 'edge_5xx'",
        id="unknown-outcome",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "intensity": 2},
        "intensity",
        "less than or equal to 1",
        id="intensity-above-one",
    ),
    pytest.param(
        {"kind": "outage", "target": EDGE, "outcome_code": 500},
        "outcome_code",
        "unknown field (check its spelling and place)",
        id="unknown-field",
    ),
]


@pytest.mark.parametrize(("data", "path", "message"), INVALID)
def test_invalid_fault(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FAULT.validate_python(data)
    # The loader's own translation: union tags dropped, paths as the user wrote them.
    [(where, said)] = validation_problems(caught.value, data)
    assert format_path(where) == path, said
    assert message in said


def test_every_kind_validates_with_its_defaults() -> None:
    """Each kind in FAULT_KINDS is a real member of the union, buildable from the table."""
    required: dict[str, dict[str, Any]] = {
        "degrade": {"error_rate": 0.1},
        "capacity": {"multiplier": 0.5},
    }
    for kind in FAULT_KINDS:
        f = FAULT.validate_python({"kind": kind, "target": EDGE, **required.get(kind, {})})
        assert f.kind == kind


def test_withdraw_is_open_ended() -> None:
    f = fault(kind="withdraw", start="1h")
    assert isinstance(f, Withdraw) and f.end is None
    assert levels(f, [3599, 3600, 1e9]) == [0.0, 1.0, 1.0]
