"""Faults on command: the vocabulary of HTTP/TCP-level faults and the run-time registry.

Three sources can pick a fault for one request, checked in this order:

1. the **model name** (`gpt-4o~stream_cut`) — any client triggers it with ordinary
   configuration, no control plane needed;
2. the **chaos registry**, set at run time through the control API (Toxiproxy-like:
   add, list, remove, reset; each rule targets deployments, failure domains or hosts and
   fires with a probability, its "toxicity");
3. the **scenario timeline**, through the behaviour model (`fakes.model`), in real time.

Whatever the source, the fault ends up as a `Chaos` value the provider server executes,
so a rate limit from the timeline and one from the control API are the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fakes.server.wire import ErrorKind

__all__ = [
    "FAULT_KINDS",
    "Chaos",
    "ChaosRegistry",
    "FaultRule",
    "RuleSpec",
    "chaos_from_directive",
    "spec_problems",
]

FaultKind = Literal[
    "refuse",
    "reset",
    "silent",
    "slow_first_token",
    "slow_tokens",
    "invalid_request",
    "context_length",
    "auth",
    "model_gone",
    "rate_limited",
    "quota",
    "server",
    "overloaded",
    "not_ready",
    "content_filter",
    "completion_filter",
    "mid_stream_error",
    "stream_cut",
    "stream_stall",
    "malformed",
    "no_done",
    "edge_5xx",
    "dns",
]

FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
"""Every fault the fakes can inject, as named in directives and control-API rules."""

_ERROR_KINDS = {kind.value for kind in ErrorKind} - {ErrorKind.CONTENT_FILTER.value}


@dataclass(frozen=True, slots=True)
class Chaos:
    """One fault to execute on one request, with its parameters resolved.

    `source` says where it came from (`directive`, `rule:<id>`, `scenario`), for the
    attempt journal. Times are seconds; `after_tokens` counts output tokens sent before a
    stream fault strikes; `stall_s` None stalls until the client gives up.
    """

    kind: str
    source: str
    retry_after_s: float | None = None
    delay_s: float = 0.0
    per_token_s: float = 0.0
    jitter: float = 0.0
    after_tokens: int = 2
    stall_s: float | None = None
    status: int | None = None

    def stall_or(self, cap_s: float) -> float:
        """How long a stall lasts: its own `stall_s`, else until `cap_s` (or the client leaves)."""
        return cap_s if self.stall_s is None else self.stall_s

    @property
    def error(self) -> ErrorKind | None:
        """The vendor error this fault answers with, when it is one."""
        return ErrorKind(self.kind) if self.kind in _ERROR_KINDS else None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpec(_Spec):
    """What a rule hits: deployments by id, anything carrying a domain, or a whole host."""

    deployments: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


class RuleSpec(_Spec):
    """A control-API rule as a client posts it (JSON); validated with named fields."""

    kind: FaultKind
    target: TargetSpec = TargetSpec()
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    retry_after_s: float | None = Field(default=None, ge=0.0)
    delay_s: float = Field(default=10.0, ge=0.0)
    per_token_s: float = Field(default=0.5, ge=0.0)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)
    after_tokens: int = Field(default=2, ge=0)
    stall_s: float | None = Field(default=None, ge=0.0)
    name: str = ""


def spec_problems(data: Any) -> tuple[RuleSpec | None, list[str]]:
    """Parse a posted rule; on failure, one line per problem naming the field."""
    try:
        return RuleSpec.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(body)"
            problems.append(f"{where}: {error['msg']}")
        return None, problems


@dataclass(frozen=True, slots=True)
class FaultRule:
    """A registered rule: its id, its spec, and how many requests it has hit."""

    id: str
    spec: RuleSpec
    hits: list[int] = field(default_factory=lambda: [0])

    def matches(self, deployment: str, domains: Iterable[str], host: str) -> bool:
        """True when the rule targets this deployment, any of its domains, or its host.

        A rule with an empty target hits everything (handy for "break the world").
        """
        target = self.spec.target
        if not (target.deployments or target.domains or target.hosts):
            return True
        return (
            deployment in target.deployments
            or host in target.hosts
            or not set(target.domains).isdisjoint(domains)
        )

    @property
    def at_edge(self) -> bool:
        """True for a rule on an `edge:` domain, which the edge proxy applies."""
        return any(domain.startswith("edge:") for domain in self.spec.target.domains)

    def chaos(self) -> Chaos:
        """The fault this rule injects."""
        spec = self.spec
        return Chaos(
            kind=spec.kind,
            source=f"rule:{self.id}",
            retry_after_s=spec.retry_after_s,
            delay_s=spec.delay_s,
            per_token_s=spec.per_token_s,
            jitter=spec.jitter,
            after_tokens=spec.after_tokens,
            stall_s=spec.stall_s,
        )

    def as_json(self) -> dict[str, Any]:
        """The rule as the control API lists it."""
        return {"id": self.id, "hits": self.hits[0], **self.spec.model_dump(mode="json")}


class ChaosRegistry:
    """The faults set at run time; rules are checked in the order they were added."""

    def __init__(self) -> None:
        self._rules: dict[str, FaultRule] = {}
        self._ids = itertools.count(1)

    def add(self, spec: RuleSpec) -> FaultRule:
        """Register a rule and give it an id."""
        rule = FaultRule(id=f"f{next(self._ids)}", spec=spec)
        self._rules[rule.id] = rule
        return rule

    def remove(self, rule_id: str) -> bool:
        """Drop one rule; False when there was none with that id."""
        return self._rules.pop(rule_id, None) is not None

    def reset(self) -> int:
        """Drop every rule; how many there were."""
        count = len(self._rules)
        self._rules.clear()
        return count

    def rules(self) -> list[FaultRule]:
        """The rules in the order they apply."""
        return list(self._rules.values())

    def pick(
        self,
        deployment: str,
        domains: Iterable[str],
        host: str,
        rng: Random,
        *,
        kinds: frozenset[str] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> Chaos | None:
        """The first rule that targets this request and fires (one draw per candidate rule).

        `kinds` limits the rules considered (the resolver only looks at DNS ones);
        `exclude` drops kinds handled elsewhere. Rules on an `edge:` domain are skipped:
        the edge applies them (`pick_edge`), so a request behind it is not hit twice.
        """
        labels = tuple(domains)
        for rule in self._rules.values():
            kind = rule.spec.kind
            if kind in exclude or (kinds is not None and kind not in kinds) or rule.at_edge:
                continue
            if not rule.matches(deployment, labels, host):
                continue
            probability = rule.spec.probability
            if probability >= 1.0 or (probability > 0.0 and rng.random() < probability):
                rule.hits[0] += 1
                return rule.chaos()
        return None

    def pick_edge(
        self, label: str, host: str, rng: Random, *, kinds: frozenset[str]
    ) -> Chaos | None:
        """The first rule on edge domain `label` (of a kind the edge can do) that fires."""
        for rule in self._rules.values():
            spec = rule.spec
            if spec.kind not in kinds or label not in spec.target.domains:
                continue
            if spec.target.hosts and host not in spec.target.hosts:
                continue
            if spec.probability >= 1.0 or (
                spec.probability > 0.0 and rng.random() < spec.probability
            ):
                rule.hits[0] += 1
                return rule.chaos()
        return None

    def dns_fails(
        self, deployments: Iterable[tuple[str, Iterable[str]]], host: str, rng: Random
    ) -> bool:
        """True when a `dns` rule covers `host` or any deployment behind it, and fires."""
        for rule in self._rules.values():
            if rule.spec.kind != "dns":
                continue
            hit = any(rule.matches(d, domains, host) for d, domains in deployments)
            probability = rule.spec.probability
            if hit and (probability >= 1.0 or (probability > 0.0 and rng.random() < probability)):
                rule.hits[0] += 1
                return True
        return False


_DIRECTIVE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "rate_limited": {"retry_after_s": 2.0},
    "slow_first_token": {"delay_s": 10.0},
    "slow_tokens": {"per_token_s": 0.5},
}


def chaos_from_directive(directive: str) -> Chaos | None:
    """The fault a model-name directive asks for: `stream_cut`, `stream_cut-5` (after 5
    tokens), `rate_limited-3` (Retry-After 3 s), `slow_first_token-2.5` (seconds),
    `stream_stall-4` (after 4 tokens). None when the name is not a fault kind."""
    kind, _, argument = directive.partition("-")
    if kind not in FAULT_KINDS:
        return None
    values: dict[str, Any] = dict(_DIRECTIVE_DEFAULTS.get(kind, {}))
    if argument:
        try:
            number = float(argument)
        except ValueError:
            return None
        if kind == "rate_limited":
            values["retry_after_s"] = number
        elif kind == "slow_first_token":
            values["delay_s"] = number
        elif kind == "slow_tokens":
            values["per_token_s"] = number
        else:
            values["after_tokens"] = int(number)
    return Chaos(kind=kind, source="directive", **values)
