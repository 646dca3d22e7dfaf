"""Classification: which deployments of a route may serve this request at all.

Before health or cost is considered, a request narrows its route to the
deployments that *could* serve it: the ones this tenant's data may go to
(residency and compliance, failing closed), that have the capabilities it needs
(tools, streaming, json, vision) and whose context window fits its input plus
its output allowance. The first filter that leaves nothing names the refusal.
"""

from __future__ import annotations

from router.core.policy import Deployment, Policy, Route, Tenant
from router.core.reasons import Reason

__all__ = ["Candidate", "Classifier", "permits"]


class Candidate:
    """A deployment as the hot path sees it: plain attributes, prices per token."""

    __slots__ = (
        "capabilities",
        "compliance",
        "context_window",
        "domains",
        "id",
        "index",
        "input_price",
        "output_price",
        "quality",
        "residency",
    )

    def __init__(self, index: int, deployment: Deployment) -> None:
        self.index = index
        self.id = deployment.id
        self.input_price = deployment.price.input_per_mtok / 1e6
        self.output_price = deployment.price.output_per_mtok / 1e6
        self.context_window = deployment.context_window
        self.capabilities: frozenset[str] = frozenset(deployment.capabilities)
        self.residency = deployment.residency
        self.compliance = deployment.compliance
        self.domains = deployment.domains
        self.quality = dict(deployment.quality)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for these billed tokens at this deployment's list price."""
        return input_tokens * self.input_price + output_tokens * self.output_price


def permits(tenant: Tenant | None, candidate: Candidate, requires: frozenset[str]) -> bool:
    """Whether this tenant's (and request's) data may be processed by `candidate`."""
    if tenant is not None:
        if tenant.residency is not None and candidate.residency not in tenant.residency:
            return False
        if not tenant.compliance <= candidate.compliance:
            return False
    return requires <= candidate.compliance


class _RouteTable:
    __slots__ = ("capabilities_all", "fallbacks", "min_context", "route", "targets")

    def __init__(self, route: Route, by_id: dict[str, Candidate]) -> None:
        self.route = route
        self.targets = tuple(by_id[t] for t in route.targets)
        self.fallbacks = tuple(by_id[t] for t in route.fallbacks if t not in route.targets)
        everyone = self.targets + self.fallbacks
        self.min_context = min(c.context_window for c in everyone)
        self.capabilities_all = frozenset.intersection(*(c.capabilities for c in everyone))


class Classifier:
    """Narrows a route to the candidates that may and can serve a request."""

    __slots__ = ("_routes", "_tenants", "candidates")

    def __init__(self, policy: Policy) -> None:
        self.candidates = tuple(Candidate(i, d) for i, d in enumerate(policy.deployments))
        by_id = {c.id: c for c in self.candidates}
        self._routes = {r.name: _RouteTable(r, by_id) for r in policy.routes}
        self._tenants = policy.tenants

    def route(self, name: str) -> Route | None:
        """The route behind a client's `model` name, if there is one."""
        table = self._routes.get(name)
        return None if table is None else table.route

    def classify(
        self,
        route: str,
        tenant_name: str,
        input_tokens: int,
        max_output_tokens: int,
        needs: frozenset[str],
        requires: frozenset[str],
    ) -> tuple[tuple[Candidate, ...], tuple[Candidate, ...], Reason | None]:
        """(targets, fallbacks, None) when something fits, else ((), (), reason).

        The engine calls this once per request, positionally (keywords cost more).
        """
        table = self._routes.get(route)
        if table is None:
            return (), (), Reason.UNKNOWN_ROUTE
        tenant = self._tenants.get(tenant_name)
        window = input_tokens + max_output_tokens
        constrained = requires or (
            tenant is not None and (tenant.residency is not None or tenant.compliance)
        )
        if not constrained and needs <= table.capabilities_all and window <= table.min_context:
            return table.targets, table.fallbacks, None
        targets, fallbacks = table.targets, table.fallbacks
        filters = (
            (Reason.RESIDENCY, lambda c: permits(tenant, c, requires)),
            (Reason.NO_CAPABLE_DEPLOYMENT, lambda c: needs <= c.capabilities),
            (Reason.CONTEXT_TOO_LONG, lambda c: window <= c.context_window),
        )
        for reason, keep in filters:
            targets = tuple(c for c in targets if keep(c))
            fallbacks = tuple(c for c in fallbacks if keep(c))
            if not targets and not fallbacks:
                return (), (), reason
        return targets, fallbacks, None
