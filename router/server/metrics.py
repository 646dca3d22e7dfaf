"""`/metrics` in Prometheus format: read from the driver and engine at scrape time.

The hot path only bumps plain counters (`Driver.attempt_counts`, …); this collector
turns them, and the engine's own state (reasons, breakers, retry budget), into metric
families when Prometheus scrapes. Nothing is double-booked, and a gateway nobody scrapes
pays nothing. Each app gets its own `CollectorRegistry`, so several gateways (tests, a
multi-policy process) never share series.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from router.core.breaker import BreakerState
from router.server.driver import Driver

UNKNOWN_ROUTE = "(unknown)"
"""The latency label of requests naming no route of the policy."""

__all__ = [
    "BREAKER_LEVELS",
    "UNKNOWN_ROUTE",
    "GatewayCollector",
    "Metrics",
]

BREAKER_LEVELS: dict[BreakerState, float] = {
    BreakerState.CLOSED: 0.0,
    BreakerState.HALF_OPEN: 1.0,
    BreakerState.OPEN: 2.0,
}
"""Breaker state as a gauge value: 0 closed, 1 half-open, 2 open."""

_PREFIX = "blastradius_gateway"


class GatewayCollector(Collector):
    """Counters and states of one driver, as metric families."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def collect(self) -> Iterator[Metric]:
        """One snapshot, taken on the event loop's thread (the scrape handler runs there)."""
        driver = self._driver
        engine = driver.engine
        requests = CounterMetricFamily(
            f"{_PREFIX}_requests",
            "Client requests by route and how they ended",
            labels=["route", "final"],
        )
        for (route, final), count in sorted(driver.request_counts.items()):
            requests.add_metric([route, final], count)
        yield requests
        attempts = CounterMetricFamily(
            f"{_PREFIX}_attempts",
            "Upstream attempts by deployment and outcome",
            labels=["deployment", "outcome"],
        )
        for (deployment, outcome), count in sorted(driver.attempt_counts.items()):
            attempts.add_metric([deployment, outcome], count)
        yield attempts
        reasons = CounterMetricFamily(
            f"{_PREFIX}_reasons", "Engine decisions by reason", labels=["reason"]
        )
        for reason, count in sorted(engine.reasons.items()):
            reasons.add_metric([reason.value], count)
        yield reasons
        spend = CounterMetricFamily(
            f"{_PREFIX}_spend_usd",
            "Spend billed per tenant, failed attempts included",
            labels=["tenant"],
        )
        for tenant, usd in sorted(driver.spend_usd.items()):
            spend.add_metric([tenant], usd)
        yield spend
        breakers = GaugeMetricFamily(
            f"{_PREFIX}_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
            labels=["deployment"],
        )
        for listed in driver.policy.deployments:
            state = engine.breaker_state(listed.id)
            breakers.add_metric([listed.id], BREAKER_LEVELS[state])
        yield breakers
        yield GaugeMetricFamily(
            f"{_PREFIX}_retry_budget_balance",
            "Retries the fleet-wide budget would admit now",
            value=engine.budget.balance(driver.now()),
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}_requests_in_flight",
            "Client requests not yet answered",
            value=driver.in_flight,
        )


class Metrics:
    """The registry of one gateway: the collector plus a request-latency histogram."""

    def __init__(self, driver: Driver) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = GatewayCollector(driver)
        self.registry.register(self._collector)
        self.latency = Histogram(
            f"{_PREFIX}_request_seconds",
            "Time from request to answer (to the last byte for streams), by route",
            labelnames=["route"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self._latency_of: dict[str, Histogram] = {}

    def observe_latency(self, route: str, seconds: float) -> None:
        """One answered request's latency, on its route's histogram.

        `labels(...)` costs a lock and a tuple lookup per call; the children are cached
        here per route (routes are few and fixed by the policy), once per request saved.
        A name that is not a route of the policy is labelled `(unknown)`: clients choose
        `model`, and one series per typo would grow the metric (and this cache) forever.
        """
        child = self._latency_of.get(route)
        if child is None:
            known = any(r.name == route for r in self._collector._driver.policy.routes)
            label = route if known else UNKNOWN_ROUTE
            child = self.latency.labels(label)
            if known:
                self._latency_of[route] = child
        child.observe(seconds)

    def follow(self, driver: Driver) -> None:
        """Read `driver` from now on: a policy reload swapped it (its counters carry over)."""
        self._collector._driver = driver

    async def handler(self, request: web.Request) -> web.Response:
        """`GET /metrics`."""
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
