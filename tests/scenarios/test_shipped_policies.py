"""The policies shipped in scenarios/policies/ are examples users copy: they must be right.

Each test pins a property a file's header comment promises (shared edge in the naive
policy, independent failure domains in the domain-aware one, fail-closed residency in
the EU one), so an edit that quietly breaks the promise fails here, not in a user's
outage.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path

import pytest

from router.core.classify import Classifier
from router.core.policy import Deployment, Policy
from scenarios.policy_files import POLICY_DIR, load_policy, shipped_policies

SHIPPED = shipped_policies()
EXPECTED = {"single-vendor", "naive-two-vendor", "domain-aware", "cost-cascade", "eu-resident"}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def _load(name: str) -> Policy:
    """Load a shipped policy with an empty environment: validity must not depend on secrets."""
    return load_policy(POLICY_DIR / f"{name}.yaml", env={})


def _labels(deployment: Deployment, kind: str) -> set[str]:
    return {label for label in deployment.domains if label.startswith(f"{kind}:")}


def _chain(policy: Policy, route: str) -> list[Deployment]:
    """Targets then fallbacks, in the order an `ordered` route tries them."""
    spec = policy.route(route)
    return [policy.deployment(d) for d in (*spec.targets, *spec.fallbacks)]


def test_the_expected_policies_are_shipped() -> None:
    assert {path.stem for path in SHIPPED} >= EXPECTED
    assert sorted(SHIPPED) == SHIPPED, "shipped_policies() promises name order"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_policy_validates(path: Path) -> None:
    policy = load_policy(path, env={})
    assert policy.name == path.stem
    assert policy.description, "a shipped policy says in one line what it is"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_policy_serves_once_its_secrets_are_set(path: Path) -> None:
    """With every `${VAR}` set, `require_env=True` (what `serve` uses) loads too."""
    names = set(ENV_REF.findall(path.read_text(encoding="utf-8")))
    env = {name: f"test-{name.lower()}" for name in names}
    policy = load_policy(path, env=env, require_env=True)
    for deployment in policy.deployments:
        assert "${" not in deployment.base_url
        if deployment.api_key is not None:
            assert deployment.api_key.get_secret_value().startswith("test-")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_policy_opens_with_a_comment(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# "), "first line must be the header comment"
    header = "\n".join(line for line in lines if line.startswith("#"))
    assert "2026-11" in header, "prices must be dated"
    assert "litellm 1.110.2" in header, "prices must cite their source"
    assert "https://" in header, "prices must cite the vendor pricing page"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_prices_and_windows_are_real(path: Path) -> None:
    policy = load_policy(path, env={})
    for deployment in policy.deployments:
        assert deployment.price.input_per_mtok > 0, deployment.id
        assert deployment.price.output_per_mtok > 0, deployment.id
        assert deployment.price.output_per_mtok >= deployment.price.input_per_mtok, deployment.id
        assert deployment.context_window >= 100_000, deployment.id
        assert deployment.residency in {"us", "eu"}, deployment.id
        assert _labels(deployment, "vendor"), f"{deployment.id} names no vendor: domain"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_secrets_come_from_the_environment(path: Path) -> None:
    """A literal key in a shipped file would be copied into every user's repository."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("api_key:"):
            assert re.fullmatch(r"\s*api_key: \$\{[A-Z0-9_]+\}", line), line


def test_naive_two_vendor_shares_one_edge() -> None:
    policy = _load("naive-two-vendor")
    first, second = _chain(policy, "default")
    assert len(policy.deployments) == 2
    assert "edge:cloudflare" in set(first.domains) & set(second.domains)
    assert _labels(first, "vendor") != _labels(second, "vendor")
    resilience = policy.resilience
    assert not resilience.budget.enabled
    assert not resilience.breaker.enabled
    assert not resilience.domains.enabled
    assert resilience.retries.max_attempts_per_deployment >= 4


def test_domain_aware_default_chain_crosses_failure_domains() -> None:
    policy = _load("domain-aware")
    assert policy.routes[0].name == "default", "the benchmark runs the first route"
    chain = _chain(policy, "default")
    assert len(chain) >= 4
    for before, after in itertools.pairwise(chain):
        for kind in ("vendor", "edge"):
            shared = _labels(before, kind) & _labels(after, kind)
            assert not shared, f"{before.id} → {after.id} share {shared}"
    clouds = set().union(*(_labels(d, "cloud") for d in chain))
    assert len(clouds) >= 3, clouds


def test_domain_aware_keeps_the_dampers_on() -> None:
    resilience = _load("domain-aware").resilience
    assert resilience.budget.enabled
    assert resilience.breaker.enabled
    assert resilience.domains.enabled


@pytest.mark.parametrize("route", ["default", "triage"])
def test_domain_aware_routes_survive_a_cloudflare_outage(route: str) -> None:
    chain = _chain(_load("domain-aware"), route)
    assert any("edge:cloudflare" not in d.domains for d in chain)


def test_cost_cascade_has_the_soc_routes() -> None:
    policy = _load("cost-cascade")
    names = [route.name for route in policy.routes]
    assert names[0] == "default"
    assert {"triage", "investigation", "escalation"} <= set(names)
    assert {policy.route(name).strategy for name in names} >= {"cheapest", "cascade"}


def test_cost_cascade_tiers_get_more_expensive() -> None:
    """Triage's dearest target costs less than escalation's cheapest: the point of tiers."""
    policy = _load("cost-cascade")

    def prices(route: str) -> list[float]:
        spec = policy.route(route)
        return [policy.deployment(d).price.output_per_mtok for d in spec.targets]

    assert max(prices("triage")) < min(prices("escalation"))


def test_cost_cascade_quality_scores_cover_the_route_tasks() -> None:
    policy = _load("cost-cascade")
    for route in policy.routes:
        if route.strategy == "quality":
            assert route.task is not None
            for target in route.targets:
                assert route.task in policy.deployment(target).quality, (route.name, target)


@pytest.mark.parametrize("route", ["default", "triage", "investigation", "escalation"])
def test_cost_cascade_routes_survive_a_cloudflare_outage(route: str) -> None:
    chain = _chain(_load("cost-cascade"), route)
    assert any("edge:cloudflare" not in d.domains for d in chain)


def _reachable(policy: Policy, tenant: str, route: str) -> list[str]:
    targets, fallbacks, _reason = Classifier(policy).classify(
        route,
        tenant,
        input_tokens=1_000,
        max_output_tokens=500,
        needs=frozenset(),
        requires=frozenset(),
    )
    return [candidate.id for candidate in (*targets, *fallbacks)]


def test_eu_bank_only_ever_reaches_eu_deployments() -> None:
    policy = _load("eu-resident")
    for route in policy.routes:
        reachable = _reachable(policy, "eu-bank", route.name)
        assert reachable, f"eu-bank has no deployment at all on {route.name!r}"
        for deployment_id in reachable:
            assert policy.deployment(deployment_id).residency == "eu", (route.name, deployment_id)


def test_global_co_reaches_both_regions() -> None:
    """Guards the test above: the routes do contain US deployments the filter must drop."""
    policy = _load("eu-resident")
    residencies = {
        policy.deployment(d).residency
        for route in policy.routes
        for d in _reachable(policy, "global-co", route.name)
    }
    assert residencies == {"eu", "us"}


def test_eu_resident_tenants_and_dev_keys() -> None:
    policy = _load("eu-resident")
    eu_bank, global_co = policy.tenants["eu-bank"], policy.tenants["global-co"]
    assert eu_bank.residency == frozenset({"eu"})
    assert global_co.residency is None
    assert hashlib.sha256(b"br-dev-eu-bank-0001").hexdigest() in eu_bank.key_sha256
    assert hashlib.sha256(b"br-dev-global-co-0001").hexdigest() in global_co.key_sha256
    spend = eu_bank.spend
    assert spend is not None and spend.window_s == 86400
    assert spend.soft_usd is not None and spend.hard_usd is not None
    assert spend.soft_usd < spend.hard_usd
    assert spend.degrade_to in {route.name for route in policy.routes}
    assert eu_bank.limits.rpm and eu_bank.limits.tpm
    header = (POLICY_DIR / "eu-resident.yaml").read_text(encoding="utf-8")
    assert "br-dev-eu-bank-0001" in header and "only for local testing" in header.lower()


def test_eu_resident_has_eu_deployments_on_every_listed_platform() -> None:
    policy = _load("eu-resident")
    eu = [d for d in policy.deployments if d.residency == "eu"]
    assert {d.protocol for d in eu} >= {"azure-openai", "bedrock", "gemini", "mistral"}
    assert any(d.residency == "us" for d in policy.deployments)
