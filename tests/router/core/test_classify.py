"""Classification: which deployments may and can serve a request, before health is considered.

Residency and compliance fail closed, whatever the outage; the first filter that
leaves nothing names the refusal.
"""

from __future__ import annotations

from typing import Any

import pytest

from router.core.classify import Candidate, Classifier, permits
from router.core.policy import Policy, Tenant
from router.core.reasons import Reason

from .builders import deployment, make_policy, route


def policy() -> Policy:
    return make_policy(
        [
            deployment("us-small@openai", residency="us", context_window=8_000),
            deployment(
                "eu-big@azure",
                protocol="azure-openai",
                residency="eu",
                context_window=200_000,
                capabilities=["streaming", "tools", "vision"],
                compliance=["gdpr", "hipaa"],
            ),
            deployment(
                "eu-small@mistral",
                protocol="mistral",
                residency="eu",
                context_window=32_000,
                capabilities=["streaming"],
                compliance=["gdpr"],
            ),
            deployment("nowhere@bedrock", protocol="bedrock", residency="unknown"),
        ],
        [
            route("default", ["us-small@openai", "eu-small@mistral"], fallbacks=["eu-big@azure"]),
            route("us-only", ["us-small@openai"]),
            route("dup", ["us-small@openai", "eu-big@azure"], fallbacks=["us-small@openai"]),
            route("unknown-residency", ["nowhere@bedrock"]),
        ],
        tenants={
            "open": {},
            "eu-bank": {"residency": ["eu"]},
            "clinic": {"compliance": ["hipaa"]},
            "nowhere": {"residency": []},
        },
    )


def classify(
    route_name: str = "default", tenant: str = "open", **kwargs: Any
) -> tuple[list[str], list[str], Reason | None]:
    request: dict[str, Any] = {
        "input_tokens": 1000,
        "max_output_tokens": 500,
        "needs": frozenset(),
        "requires": frozenset(),
    }
    request.update(kwargs)
    targets, fallbacks, reason = Classifier(policy()).classify(route_name, tenant, **request)
    return [c.id for c in targets], [c.id for c in fallbacks], reason


@pytest.mark.parametrize(
    ("route_name", "tenant", "ask", "expected"),
    [
        pytest.param(
            "default",
            "open",
            {},
            (["us-small@openai", "eu-small@mistral"], ["eu-big@azure"], None),
            id="unconstrained-keeps-everything",
        ),
        pytest.param(
            "no-such-route", "open", {}, ([], [], Reason.UNKNOWN_ROUTE), id="unknown-route"
        ),
        pytest.param(
            "default",
            "stranger",
            {},
            (["us-small@openai", "eu-small@mistral"], ["eu-big@azure"], None),
            id="unknown-tenant-has-no-constraints",
        ),
        pytest.param(
            "default",
            "eu-bank",
            {},
            (["eu-small@mistral"], ["eu-big@azure"], None),
            id="residency-filters",
        ),
        pytest.param(
            "us-only", "eu-bank", {}, ([], [], Reason.RESIDENCY), id="residency-fails-closed"
        ),
        pytest.param(
            "unknown-residency",
            "eu-bank",
            {},
            ([], [], Reason.RESIDENCY),
            id="unknown-residency-is-not-eu",
        ),
        pytest.param(
            "default", "nowhere", {}, ([], [], Reason.RESIDENCY), id="empty-residency-allows-none"
        ),
        pytest.param("default", "clinic", {}, ([], ["eu-big@azure"], None), id="tenant-compliance"),
        pytest.param(
            "us-only", "clinic", {}, ([], [], Reason.RESIDENCY), id="compliance-fails-closed"
        ),
        pytest.param(
            "default",
            "open",
            {"requires": frozenset({"gdpr"})},
            (["eu-small@mistral"], ["eu-big@azure"], None),
            id="request-requires-compliance",
        ),
        pytest.param(
            "default",
            "open",
            {"needs": frozenset({"tools"})},
            (["us-small@openai"], ["eu-big@azure"], None),
            id="capability-filters",
        ),
        pytest.param(
            "default",
            "open",
            {"needs": frozenset({"vision"})},
            ([], ["eu-big@azure"], None),
            id="only-a-fallback-can",
        ),
        pytest.param(
            "us-only",
            "open",
            {"needs": frozenset({"vision"})},
            ([], [], Reason.NO_CAPABLE_DEPLOYMENT),
            id="missing-capability",
        ),
        pytest.param(
            "default",
            "open",
            {"input_tokens": 10_000},
            (["eu-small@mistral"], ["eu-big@azure"], None),
            id="context-filters",
        ),
        pytest.param(
            "us-only",
            "open",
            {"input_tokens": 7_500, "max_output_tokens": 500},
            (["us-small@openai"], [], None),
            id="context-exactly-full-fits",
        ),
        pytest.param(
            "us-only",
            "open",
            {"input_tokens": 7_500, "max_output_tokens": 501},
            ([], [], Reason.CONTEXT_TOO_LONG),
            id="output-allowance-counts",
        ),
        pytest.param(
            "default",
            "open",
            {"input_tokens": 250_000},
            ([], [], Reason.CONTEXT_TOO_LONG),
            id="context-too-long",
        ),
        pytest.param(
            "us-only",
            "eu-bank",
            {"needs": frozenset({"vision"}), "input_tokens": 10**6},
            ([], [], Reason.RESIDENCY),
            id="residency-is-named-first",
        ),
        pytest.param(
            "us-only",
            "open",
            {"needs": frozenset({"vision"}), "input_tokens": 10**6},
            ([], [], Reason.NO_CAPABLE_DEPLOYMENT),
            id="capability-is-named-before-context",
        ),
        pytest.param(
            "dup",
            "open",
            {},
            (["us-small@openai", "eu-big@azure"], [], None),
            id="a-target-is-not-also-a-fallback",
        ),
    ],
)
def test_classify(
    route_name: str,
    tenant: str,
    ask: dict[str, Any],
    expected: tuple[list[str], list[str], Reason | None],
) -> None:
    assert classify(route_name, tenant, **ask) == expected


def test_route_lookup() -> None:
    classifier = Classifier(policy())
    found = classifier.route("us-only")
    assert found is not None and found.targets == ("us-small@openai",)
    assert classifier.route("nope") is None


def test_candidates_follow_the_policy() -> None:
    candidates = Classifier(policy()).candidates
    assert [c.index for c in candidates] == [0, 1, 2, 3]
    big = candidates[1]
    assert big.id == "eu-big@azure"
    assert big.capabilities == frozenset({"streaming", "tools", "vision"})
    assert big.compliance == frozenset({"gdpr", "hipaa"})


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "usd"),
    [(0, 0, 0.0), (1_000_000, 0, 3.0), (0, 1_000_000, 15.0), (2_000, 500, 0.0135)],
)
def test_candidate_cost_is_list_price_per_token(
    input_tokens: int, output_tokens: int, usd: float
) -> None:
    p = make_policy([deployment("x@y", price={"input_per_mtok": 3.0, "output_per_mtok": 15.0})])
    candidate = Candidate(0, p.deployments[0])
    assert candidate.cost(input_tokens, output_tokens) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("tenant", "requires", "allowed"),
    [
        (None, frozenset(), True),
        (None, frozenset({"gdpr"}), True),
        (None, frozenset({"hipaa"}), False),
        (Tenant(residency=frozenset({"eu"})), frozenset(), True),
        (Tenant(residency=frozenset({"us"})), frozenset(), False),
        (Tenant(residency=frozenset()), frozenset(), False),
        (Tenant(compliance=frozenset({"gdpr"})), frozenset(), True),
        (Tenant(compliance=frozenset({"gdpr", "soc2"})), frozenset(), False),
    ],
)
def test_permits(tenant: Tenant | None, requires: frozenset[str], allowed: bool) -> None:
    small_eu = Classifier(policy()).candidates[2]
    assert permits(tenant, small_eu, requires) is allowed
