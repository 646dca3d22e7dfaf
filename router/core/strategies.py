"""Strategies put a route's candidates in the order they should be tried.

They only order: health (breakers, domains, cool-downs) is applied afterwards by
the engine, candidate by candidate, so a strategy can never route around a
compliance filter or into an open breaker. Fallbacks always follow the targets
in the order the policy lists them.

- `ordered`: as listed.
- `cheapest`: by expected cost of *this* request (its input tokens, and the
  route's expected output) at list price.
- `quality`: by the deployment's quality score for the request's task
  (`default` when the task has none), best first.
- `latency`: by an EWMA of observed time to first token; unmeasured deployments
  go first so every target gets measured.
- `weighted`: a weighted random order (Efraimidis–Spirakis keys u^(1/w)) from the
  injected RNG.
- `cascade`: cheapest first; the engine escalates to the next on a configured
  signal (see `CascadeSettings`).
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from router.core.classify import Candidate
from router.core.policy import Route

__all__ = ["STRATEGIES", "LatencyEwma", "order_candidates"]


class LatencyEwma:
    """Exponentially weighted moving average of time to first token per deployment."""

    __slots__ = ("_values", "alpha")

    def __init__(self, *, alpha: float = 0.3) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"EWMA alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._values: dict[int, float] = {}

    def observe(self, deployment: int, seconds: float) -> None:
        """Fold one observation in."""
        old = self._values.get(deployment)
        self._values[deployment] = seconds if old is None else old + self.alpha * (seconds - old)

    def estimate(self, deployment: int) -> float | None:
        """Current estimate, or None when never observed."""
        return self._values.get(deployment)


Orderer = Callable[
    [tuple[Candidate, ...], Route, "str | None", int, Random, LatencyEwma], list[Candidate]
]


def _ordered(
    targets: tuple[Candidate, ...],
    route: Route,
    task: str | None,
    tokens: int,
    rng: Random,
    latency: LatencyEwma,
) -> list[Candidate]:
    return list(targets)


def _cheapest(
    targets: tuple[Candidate, ...],
    route: Route,
    task: str | None,
    tokens: int,
    rng: Random,
    latency: LatencyEwma,
) -> list[Candidate]:
    output = route.expected_output_tokens
    return sorted(targets, key=lambda c: c.cost(tokens, output))


def _quality(
    targets: tuple[Candidate, ...],
    route: Route,
    task: str | None,
    tokens: int,
    rng: Random,
    latency: LatencyEwma,
) -> list[Candidate]:
    key = task or route.task or "default"

    def score(c: Candidate) -> float:
        return c.quality.get(key, c.quality.get("default", 0.0))

    return sorted(targets, key=score, reverse=True)


def _latency(
    targets: tuple[Candidate, ...],
    route: Route,
    task: str | None,
    tokens: int,
    rng: Random,
    latency: LatencyEwma,
) -> list[Candidate]:
    def seconds(c: Candidate) -> float:
        value = latency.estimate(c.index)
        return -1.0 if value is None else value

    return sorted(targets, key=seconds)


def _weighted(
    targets: tuple[Candidate, ...],
    route: Route,
    task: str | None,
    tokens: int,
    rng: Random,
    latency: LatencyEwma,
) -> list[Candidate]:
    weights = route.weights
    keyed = [(rng.random() ** (1.0 / weights.get(c.id, 1e-9)), c) for c in targets]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [c for _, c in keyed]


STRATEGIES: dict[str, Orderer] = {
    "ordered": _ordered,
    "cheapest": _cheapest,
    "quality": _quality,
    "latency": _latency,
    "weighted": _weighted,
    "cascade": _cheapest,
}


def order_candidates(
    targets: tuple[Candidate, ...],
    fallbacks: tuple[Candidate, ...],
    route: Route,
    task: str | None,
    input_tokens: int,
    rng: Random,
    latency: LatencyEwma,
) -> list[Candidate]:
    """The try order for one request: strategy-ordered targets, then fallbacks as listed.

    The engine calls this once per request, positionally (keywords cost more).
    """
    ordered = STRATEGIES[route.strategy](targets, route, task, input_tokens, rng, latency)
    if fallbacks:
        ordered.extend(fallbacks)
    return ordered
