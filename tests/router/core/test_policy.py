"""Policy model behaviour beyond validation errors (those are in tests/scenarios)."""

from __future__ import annotations

import hashlib

import pytest

from router.core.policy import Resilience, format_path, policy_from_data
from tests.router.core.harness import BASE_POLICY, make_policy


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("routes", 2, "targets", 0), "routes[2].targets[0]"),
        (("tenants", "acme", "spend", "hard_usd"), "tenants.acme.spend.hard_usd"),
        ((), ""),
        ((0,), "[0]"),
    ],
)
def test_field_paths_read_like_the_yaml(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_tenant_is_found_by_the_hash_of_its_key_only() -> None:
    digest = hashlib.sha256(b"sk-dev-123").hexdigest()
    policy = make_policy(tenants={"acme": {"key_sha256": [digest]}, "other": {}})
    assert policy.tenant_for_key("sk-dev-123") == "acme"
    assert policy.tenant_for_key("sk-dev-124") is None
    assert digest not in repr(policy.tenants["other"])


def test_tenant_lookup_follows_a_copy_with_other_tenants() -> None:
    """The digest index is rebuilt when `tenants` changes, and is one probe among many."""
    keys = {f"t{i}": f"sk-{i}" for i in range(500)}
    tenants = {
        name: {"key_sha256": [hashlib.sha256(key.encode()).hexdigest()]}
        for name, key in keys.items()
    }
    policy = make_policy(tenants=tenants)
    assert all(policy.tenant_for_key(key) == name for name, key in keys.items())
    moved = policy.model_copy(update={"tenants": {"solo": policy.tenants["t7"]}})
    assert moved.tenant_for_key("sk-7") == "solo"
    assert moved.tenant_for_key("sk-8") is None
    assert policy.tenant_for_key("sk-8") == "t8"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("timeouts", "total_s"), 120.0),
        (("retries", "max_attempts_per_deployment"), 3),
        (("budget", "ratio"), 0.2),
        (("budget", "min_retries_per_s"), 10.0),
        (("breaker", "open_s"), 30.0),
        (("breaker", "half_open_probes"), 3),
        (("domains", "min_deployments"), 2),
        (("streaming", "after_first_byte"), "error"),
        (("streaming", "plain_clients"), "stream"),
        (("streaming", "hold_tokens"), 0),
    ],
)
def test_documented_defaults(path: tuple[str, str], value: object) -> None:
    """The README's defaults table is what the model does."""
    section = getattr(Resilience(), path[0])
    assert getattr(section, path[1]) == value


def test_api_keys_come_from_the_environment_and_never_show_in_reprs() -> None:
    data = {**BASE_POLICY, "deployments": [dict(d) for d in BASE_POLICY["deployments"]]}
    data["deployments"][0]["api_key"] = "${KEY_A}"
    policy = policy_from_data(data, source="t", env={"KEY_A": "sk-live-secret"})
    key = policy.deployments[0].api_key
    assert key is not None and key.get_secret_value() == "sk-live-secret"
    assert "sk-live-secret" not in repr(policy)
