"""Strategies only order a route's candidates; fallbacks always follow, as listed.

Each strategy gets a table of small cases; `weighted` also gets a frequency check,
since its promise ("roughly proportional to weights") is statistical.
"""

from __future__ import annotations

import typing
from collections import Counter
from random import Random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.classify import Candidate, Classifier
from router.core.policy import Policy, Route
from router.core.strategies import STRATEGIES, LatencyEwma, order_candidates

from .builders import deployment, make_policy, route


def priced(ident: str, input_per_mtok: float, output_per_mtok: float, **fields: Any) -> Any:
    return deployment(
        ident,
        price={"input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok},
        **fields,
    )


DEPLOYMENTS = [
    # cheap to read, dear to write
    priced("reader@a", 0.5, 20.0, quality={"code": 0.9, "default": 0.5}),
    # dear to read, cheap to write
    priced("writer@b", 5.0, 1.0, quality={"default": 0.8}),
    priced("middle@c", 2.0, 4.0, quality={"code": 0.7, "chat": 0.95}),
    priced("backup@d", 9.0, 9.0),
    priced("spare@e", 0.1, 0.1),
]
IDS = [d["id"] for d in DEPLOYMENTS]


def setup(
    strategy: str, **fields: Any
) -> tuple[Policy, Route, tuple[Candidate, ...], tuple[Candidate, ...]]:
    p = make_policy(
        DEPLOYMENTS,
        [
            route(
                "r",
                IDS[:3],
                strategy=strategy,
                fallbacks=["backup@d", "spare@e"],
                **fields,
            )
        ],
    )
    by_id = {c.id: c for c in Classifier(p).candidates}
    the_route = p.route("r")
    return (
        p,
        the_route,
        tuple(by_id[i] for i in the_route.targets),
        tuple(by_id[i] for i in the_route.fallbacks),
    )


def order(
    strategy: str,
    *,
    task: str | None = None,
    input_tokens: int = 1000,
    seed: int = 0,
    latency: LatencyEwma | None = None,
    route_task: str | None = None,
    **fields: Any,
) -> list[str]:
    """The try order for one request; `fields` and `route_task` configure the route."""
    if route_task is not None:
        fields["task"] = route_task
    _, the_route, targets, fallbacks = setup(strategy, **fields)
    ordered = order_candidates(
        targets,
        fallbacks,
        the_route,
        task=task,
        input_tokens=input_tokens,
        rng=Random(seed),
        latency=latency or LatencyEwma(),
    )
    return [c.id for c in ordered]


def test_every_configurable_strategy_has_an_orderer() -> None:
    strategy_field = Route.model_fields["strategy"].annotation
    assert set(typing.get_args(strategy_field)) == set(STRATEGIES)


def test_ordered_keeps_the_listed_order() -> None:
    assert order("ordered") == IDS


@pytest.mark.parametrize(
    ("input_tokens", "expected_output_tokens", "first_three"),
    [
        # long prompt, short answer: reading price dominates
        (100_000, 10, ["reader@a", "middle@c", "writer@b"]),
        # short prompt, long answer: writing price dominates
        (10, 10_000, ["writer@b", "middle@c", "reader@a"]),
        # 1000 in, 500 out: a = 0.0105, b = 0.0055, c = 0.004
        (1000, 500, ["middle@c", "writer@b", "reader@a"]),
    ],
)
def test_cheapest_orders_by_expected_cost_of_this_request(
    input_tokens: int, expected_output_tokens: int, first_three: list[str]
) -> None:
    got = order(
        "cheapest", input_tokens=input_tokens, expected_output_tokens=expected_output_tokens
    )
    assert got == [*first_three, "backup@d", "spare@e"]


def test_cascade_starts_cheapest() -> None:
    assert order("cascade") == order("cheapest")


@pytest.mark.parametrize(
    ("task", "route_task", "first_three"),
    [
        ("code", None, ["reader@a", "writer@b", "middle@c"]),  # 0.9, default 0.8, 0.7
        ("chat", None, ["middle@c", "writer@b", "reader@a"]),  # 0.95, default 0.8, default 0.5
        (None, None, ["writer@b", "reader@a", "middle@c"]),  # default 0.8, 0.5, none → 0
        ("poetry", None, ["writer@b", "reader@a", "middle@c"]),  # unknown task: defaults
        (None, "chat", ["middle@c", "writer@b", "reader@a"]),  # the route's task
        ("code", "chat", ["reader@a", "writer@b", "middle@c"]),  # the request's task wins
    ],
)
def test_quality_orders_by_task_score_with_default_fallback(
    task: str | None, route_task: str | None, first_three: list[str]
) -> None:
    assert order("quality", task=task, route_task=route_task)[:3] == first_three


def test_latency_puts_unmeasured_first_then_lowest_ewma() -> None:
    ewma = LatencyEwma(alpha=0.5)
    ewma.observe(0, 2.0)  # reader@a
    ewma.observe(1, 0.5)  # writer@b; middle@c never measured
    assert order("latency", latency=ewma)[:3] == ["middle@c", "writer@b", "reader@a"]
    ewma.observe(2, 1.0)
    assert order("latency", latency=ewma)[:3] == ["writer@b", "middle@c", "reader@a"]


def test_latency_with_nothing_measured_keeps_the_listed_order() -> None:
    assert order("latency") == IDS


@pytest.mark.parametrize(
    ("observations", "estimate"),
    [([], None), ([1.0], 1.0), ([1.0, 3.0], 1.5), ([1.0, 3.0, 3.0], 1.875)],
)
def test_ewma_arithmetic(observations: list[float], estimate: float | None) -> None:
    ewma = LatencyEwma(alpha=0.25)
    for seconds in observations:
        ewma.observe(7, seconds)
    assert ewma.estimate(7) == estimate
    assert ewma.estimate(8) is None


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5, float("nan")])
def test_ewma_rejects_bad_alpha_and_names_it(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha") as error:
        LatencyEwma(alpha=alpha)
    assert str(alpha) in str(error.value)


WEIGHTS = {"reader@a": 6.0, "writer@b": 3.0, "middle@c": 1.0}


@given(seed=st.integers(0, 2**32))
def test_weighted_is_deterministic_per_seed(seed: int) -> None:
    first = order("weighted", seed=seed, weights=WEIGHTS)
    assert first == order("weighted", seed=seed, weights=WEIGHTS)
    assert sorted(first[:3]) == sorted(IDS[:3])


def test_weighted_first_choice_is_proportional_to_weight() -> None:
    _, the_route, targets, _ = setup("weighted", weights=WEIGHTS)
    rng, ewma = Random(42), LatencyEwma()
    draws = 20_000
    firsts = Counter(
        order_candidates(targets, (), the_route, task=None, input_tokens=1, rng=rng, latency=ewma)[
            0
        ].id
        for _ in range(draws)
    )
    total = sum(WEIGHTS.values())
    for ident, weight in WEIGHTS.items():
        assert firsts[ident] / draws == pytest.approx(weight / total, abs=0.015)


def test_an_unweighted_target_goes_last() -> None:
    weights = {"reader@a": 1.0, "writer@b": 1.0}
    for seed in range(200):
        assert order("weighted", seed=seed, weights=weights)[2] == "middle@c"


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@given(
    seed=st.integers(0, 2**32),
    input_tokens=st.integers(0, 10**6),
    task=st.sampled_from([None, "code", "chat"]),
)
def test_fallbacks_always_follow_targets_in_listed_order(
    strategy: str, seed: int, input_tokens: int, task: str | None
) -> None:
    fields: dict[str, Any] = {"weights": WEIGHTS} if strategy == "weighted" else {}
    ewma = LatencyEwma()
    ewma.observe(seed % 3, 1.0)
    got = order(strategy, task=task, input_tokens=input_tokens, seed=seed, latency=ewma, **fields)
    assert sorted(got[:3]) == sorted(IDS[:3])
    assert got[3:] == ["backup@d", "spare@e"]
