"""Small policy builders for the core unit tests.

Tests state only what they are about (a price, a residency, a capability) and
these fill in the rest, so every test still goes through `policy_from_data` —
the same validation a real policy file gets.
"""

from __future__ import annotations

from typing import Any

from router.core.classify import Candidate, Classifier
from router.core.policy import Policy, Route, policy_from_data

__all__ = ["candidates_of", "deployment", "make_policy", "route"]


def deployment(ident: str, **fields: Any) -> dict[str, Any]:
    """A valid deployment mapping named `ident`; keyword arguments override any field."""
    data: dict[str, Any] = {
        "id": ident,
        "protocol": "openai",
        "base_url": f"http://{ident.replace('@', '.')}",
        "model": ident.split("@")[0],
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "context_window": 128_000,
        "capabilities": ["streaming", "tools"],
        "region": "us-east-1",
        "residency": "us",
        "domains": [],
    }
    data.update(fields)
    return data


def route(name: str, targets: list[str], **fields: Any) -> dict[str, Any]:
    """A route mapping; keyword arguments (strategy, fallbacks, weights, …) are passed through."""
    return {"name": name, "targets": targets, **fields}


def make_policy(
    deployments: list[dict[str, Any]],
    routes: list[dict[str, Any]] | None = None,
    **top: Any,
) -> Policy:
    """Validate a policy; with no routes, one `default` route targets every deployment in order."""
    if routes is None:
        routes = [route("default", [d["id"] for d in deployments])]
    data: dict[str, Any] = {"deployments": deployments, "routes": routes, **top}
    return policy_from_data(data, source="test", env={})


def candidates_of(policy: Policy, route_name: str = "default") -> tuple[Candidate, ...]:
    """The route's targets as the hot path sees them, in listed order."""
    classifier = Classifier(policy)
    by_id = {c.id: c for c in classifier.candidates}
    the_route: Route = policy.route(route_name)
    return tuple(by_id[t] for t in the_route.targets)
