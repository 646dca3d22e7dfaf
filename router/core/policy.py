"""The policy: the production router's config, and what every scenario runs against.

A policy is plain data validated once, at load time, with pydantic; the hot path
never touches pydantic again (the engine copies what it needs into slotted
objects). Every setting has a default documented here and in README.md, chosen
from the reference defaults of resilience4j, Envoy, Finagle and the Google SRE
book (reference/resilience.md, sections 2.3–2.7) and tightened where LLM calls
differ — they are long, so breakers count time to first token, not call time.

`policy_from_data` is pure: the caller reads the file and parses YAML (see
`scenarios.policy_files`), passes the environment in, and gets either a `Policy`
or a `ConfigError` listing every issue with its file, line and field path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
)

from router.core.errors import ConfigError, ConfigIssue

__all__ = [
    "AdaptiveThrottleSettings",
    "BackoffSettings",
    "BreakerSettings",
    "CascadeSettings",
    "Deployment",
    "DomainSettings",
    "FieldPath",
    "Policy",
    "Price",
    "RateLimits",
    "Resilience",
    "RetryBudgetSettings",
    "RetrySettings",
    "Route",
    "SpendCap",
    "StreamingSettings",
    "Tenant",
    "Timeouts",
    "check_domain_labels",
    "format_path",
    "missing_env",
    "policy_from_data",
    "validation_problems",
]

FieldPath = tuple[str | int, ...]
Protocol = Literal["openai", "azure-openai", "anthropic", "gemini", "bedrock", "mistral"]
Capability = Literal["tools", "streaming", "json", "vision"]
Strategy = Literal["ordered", "cheapest", "quality", "latency", "weighted", "cascade"]

_DOMAIN = re.compile(r"^[a-z][a-z0-9_-]*:[A-Za-z0-9_./@-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def check_domain_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Failure-domain labels must read `kind:name`; one rule for policies and scenarios."""
    for label in labels:
        if not _DOMAIN.match(label):
            raise ValueError(
                f"failure domain {label!r} must look like 'kind:name' (e.g. 'edge:cloudflare')"
            )
    return labels


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Price(_Model):
    """List price in USD per million tokens; cite the date it was taken in the file."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class RateLimits(_Model):
    """Requests and tokens per minute; the engine stays under them instead of paying 429s."""

    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None


class Deployment(_Model):
    """One model behind one provider endpoint in one region, and what it depends on."""

    id: str = Field(min_length=1)
    protocol: Protocol
    base_url: str = Field(min_length=1)
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    api_version: str | None = None
    price: Price
    context_window: PositiveInt
    max_output_tokens: PositiveInt | None = None
    capabilities: frozenset[Capability] = frozenset()
    region: str = Field(min_length=1)
    residency: str = "unknown"
    compliance: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()
    quality: dict[str, float] = Field(default_factory=dict)
    limits: RateLimits = RateLimits()

    @field_validator("domains")
    @classmethod
    def _domains_are_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_domain_labels(value)

    @field_validator("quality")
    @classmethod
    def _quality_in_unit_interval(cls, value: dict[str, float]) -> dict[str, float]:
        for task, score in value.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"quality score for task {task!r} must be in [0, 1], got {score}")
        return value


class CascadeSettings(_Model):
    """When a cheap answer is not good enough: the signals that escalate to the next tier."""

    escalate_on: frozenset[str] = frozenset({"refusal", "truncated", "low_confidence"})


class Route(_Model):
    """What a client names in `model`: a strategy over targets, then a fixed fallback chain."""

    name: str = Field(min_length=1)
    strategy: Strategy = "ordered"
    targets: tuple[str, ...] = Field(min_length=1)
    fallbacks: tuple[str, ...] = ()
    weights: dict[str, PositiveFloat] = Field(default_factory=dict)
    cascade: CascadeSettings = CascadeSettings()
    expected_output_tokens: PositiveInt = 500
    task: str | None = None


class Timeouts(_Model):
    """Deadlines an attempt carries; the driver enforces them and reports `timeout`."""

    connect_s: PositiveFloat = 5.0
    first_token_s: PositiveFloat = 30.0
    stream_idle_s: PositiveFloat = 30.0
    total_s: PositiveFloat = 120.0


class BackoffSettings(_Model):
    """Exponential backoff with jitter (Brooker): `full` or `decorrelated` recommended."""

    kind: Literal["full", "equal", "decorrelated", "none"] = "full"
    base_s: PositiveFloat = 0.5
    cap_s: PositiveFloat = 20.0


class RetrySettings(_Model):
    """Per-request bounds on retries and failovers; Retry-After beyond the cap fails over."""

    max_attempts_per_deployment: PositiveInt = 3
    max_failovers: int = Field(default=4, ge=0)
    backoff: BackoffSettings = BackoffSettings()
    max_retry_after_s: float = Field(default=30.0, ge=0)
    cooldown_on_retry_after: bool = True


class RetryBudgetSettings(_Model):
    """Fleet-wide retry budget (Finagle defaults: 20 % of requests, 10 retries/s, 10 s ttl)."""

    enabled: bool = True
    ratio: float = Field(default=0.2, ge=0, le=10)
    min_retries_per_s: float = Field(default=10.0, ge=0)
    ttl_s: float = Field(default=10.0, ge=1, le=60)


class AdaptiveThrottleSettings(_Model):
    """Google SRE client-side throttling: reject locally with p = (req − K·acc)/(req + 1)."""

    enabled: bool = False
    k: float = Field(default=2.0, ge=1.0)
    window_s: PositiveFloat = 120.0


class BreakerSettings(_Model):
    """Per-deployment circuit breaker; rate thresholds after `min_calls`, or a failure streak."""

    enabled: bool = True
    window: Literal["count", "time"] = "count"
    window_size: PositiveInt = 20
    min_calls: PositiveInt = 10
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    consecutive_failures: PositiveInt = 5
    slow_call_s: PositiveFloat = 30.0
    slow_call_rate: float = Field(default=1.0, gt=0, le=1)
    open_s: PositiveFloat = 30.0
    open_backoff: float = Field(default=2.0, ge=1)
    max_open_s: PositiveFloat = 300.0
    half_open_probes: PositiveInt = 3
    model_gone_open_s: PositiveFloat = 86400.0


class DomainSettings(_Model):
    """Failure-domain detector: members of one domain failing together mark it suspect."""

    enabled: bool = True
    window_s: PositiveFloat = 30.0
    min_deployments: int = Field(default=2, ge=2)
    probe_interval_s: PositiveFloat = 15.0


class StreamingSettings(_Model):
    """Streams upstream: what a break after bytes reached the client does, how long the
    first bytes are held back, and whether a client that did not ask for a stream is
    still served from one."""

    after_first_byte: Literal["error", "continue"] = "error"
    hold_tokens: int = Field(default=0, ge=0, le=4096)
    """Tokens a stream holds back before its first byte goes to the client.

    Until the first byte, a broken stream fails over invisibly (the fallback answers
    from the start); holding `hold_tokens` tokens back widens that window, for a client's
    time to first token longer by as many tokens. 0: the first token goes out at once.
    """
    plain_clients: Literal["stream", "whole"] = "stream"
    """How a non-streaming client's attempts go upstream.

    `stream` (the default): streamed like every other attempt and assembled for the
    client, so `first_token_s` and `stream_idle_s` mean exactly what they mean in the
    simulator, and a silent or stalling provider is caught the same way in both. `whole`:
    the vendor's non-streaming endpoint, its JSON answer read in one go — less CPU per
    request (no per-chunk parsing), but the response headers stand in for the first token
    and only `total_s` guards the body, so a stall shows up as `timeout` at the deadline
    rather than `stream_stall` after `stream_idle_s`, and simulated and live runs of one
    scenario may then disagree. Opt in where throughput matters more than that agreement.
    """


class Resilience(_Model):
    """Timeouts, retries, budgets, breakers and detectors, all with documented defaults."""

    timeouts: Timeouts = Timeouts()
    retries: RetrySettings = RetrySettings()
    budget: RetryBudgetSettings = RetryBudgetSettings()
    throttle: AdaptiveThrottleSettings = AdaptiveThrottleSettings()
    breaker: BreakerSettings = BreakerSettings()
    domains: DomainSettings = DomainSettings()
    streaming: StreamingSettings = StreamingSettings()
    content_filter_failover: bool = False


class SpendCap(_Model):
    """Rolling spend cap: over `soft_usd` degrade to a cheaper route, at `hard_usd` refuse."""

    window_s: PositiveFloat = 86400.0
    soft_usd: float | None = Field(default=None, ge=0)
    hard_usd: float | None = Field(default=None, ge=0)
    degrade_to: str | None = None


class Tenant(_Model):
    """A client of the gateway: its keys (as SHA-256), limits and where its data may go."""

    key_sha256: tuple[str, ...] = ()
    spend: SpendCap | None = None
    limits: RateLimits = RateLimits()
    residency: frozenset[str] | None = None
    compliance: frozenset[str] = frozenset()
    routes: frozenset[str] | None = None

    @field_validator("key_sha256")
    @classmethod
    def _hashes_are_hex(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for digest in value:
            if not _SHA256.match(digest):
                raise ValueError("key_sha256 entries must be 64 lowercase hex characters")
        return value


class Policy(_Model):
    """A whole router config: deployments, routes, resilience settings and tenants."""

    name: str = "policy"
    description: str = ""
    deployments: tuple[Deployment, ...] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)
    resilience: Resilience = Resilience()
    tenants: dict[str, Tenant] = Field(default_factory=dict)

    def deployment(self, deployment_id: str) -> Deployment:
        """The deployment with this id (KeyError when absent: a caller bug, not user input)."""
        for deployment in self.deployments:
            if deployment.id == deployment_id:
                return deployment
        raise KeyError(deployment_id)

    @cached_property
    def _key_index(self) -> tuple[dict[str, Tenant], dict[str, str]]:
        """Tenant by key digest, with the `tenants` it was built from."""
        owners = {
            digest: name for name, tenant in self.tenants.items() for digest in tenant.key_sha256
        }
        return self.tenants, owners

    def tenant_for_key(self, api_key: str) -> str | None:
        """The tenant whose key hashes to this one, if any.

        Policies store only SHA-256 digests, so a leaked policy file leaks no key. The
        lookup is by digest, one dict probe however many tenants there are: its timing
        can at most hint at a stored *digest*, and a digest does not lead back to a key.
        The index is rebuilt when `tenants` is another object than it was built from
        (`model_copy(update=...)` copies the cached index along with the fields).
        """
        tenants, owners = self._key_index
        if tenants is not self.tenants:
            del self.__dict__["_key_index"]
            tenants, owners = self._key_index
        return owners.get(hashlib.sha256(api_key.encode("utf-8")).hexdigest())

    def route(self, name: str) -> Route:
        """The route with this name (KeyError when absent)."""
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)


def format_path(path: FieldPath) -> str:
    """`("routes", 2, "targets", 0)` → `routes[2].targets[0]`, as users see it in the YAML."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _interpolate(
    data: Any, env: Mapping[str, str], path: FieldPath, missing: list[tuple[FieldPath, str]]
) -> Any:
    if isinstance(data, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append((path, name))
            return ""

        return _ENV.sub(substitute, data)
    if isinstance(data, dict):
        return {k: _interpolate(v, env, (*path, k), missing) for k, v in data.items()}
    if isinstance(data, list):
        return [_interpolate(v, env, (*path, i), missing) for i, v in enumerate(data)]
    return data


def missing_env(data: Any, env: Mapping[str, str]) -> list[tuple[FieldPath, str]]:
    """Every `${VAR}` without a default whose variable `env` lacks, with its field path."""
    missing: list[tuple[FieldPath, str]] = []
    _interpolate(data, env, (), missing)
    return missing


def _items(data: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, mapping) for each mapping in the list `data[key]`; tolerant of bad shapes."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _names(value: Any) -> list[tuple[int, str]]:
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def _cross_references(data: Any) -> list[tuple[FieldPath, str]]:
    """Checks that span fields (ids, names, references), run on the raw data.

    Working on the raw mapping rather than the validated model lets these be
    reported together with type errors elsewhere in the file.
    """
    problems: list[tuple[FieldPath, str]] = []
    ids: set[str] = set()
    for i, deployment in _items(data, "deployments"):
        deployment_id = deployment.get("id")
        if isinstance(deployment_id, str):
            if deployment_id in ids:
                problems.append(
                    (("deployments", i, "id"), f"duplicate deployment id {deployment_id!r}")
                )
            ids.add(deployment_id)
    names: set[str] = set()
    for i, route in _items(data, "routes"):
        name = route.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append((("routes", i, "name"), f"duplicate route name {name!r}"))
            names.add(name)
        targets = {t for _, t in _names(route.get("targets"))}
        for field in ("targets", "fallbacks"):
            for j, target in _names(route.get(field)):
                if target not in ids:
                    problems.append((("routes", i, field, j), f"unknown deployment {target!r}"))
        weights = route.get("weights")
        if isinstance(weights, dict):
            for target in weights:
                if target not in targets:
                    problems.append(
                        (
                            ("routes", i, "weights", target),
                            f"{target!r} is not a target of this route",
                        )
                    )
        if route.get("strategy") == "weighted" and not weights:
            problems.append((("routes", i, "weights"), "strategy 'weighted' needs weights"))
    tenants = data.get("tenants") if isinstance(data, dict) else None
    owner_of: dict[str, str] = {}
    for tenant_name, tenant in (tenants or {}).items() if isinstance(tenants, dict) else ():
        if not isinstance(tenant, dict):
            continue
        base: FieldPath = ("tenants", tenant_name)
        for j, digest in _names(tenant.get("key_sha256")):
            owner = owner_of.setdefault(digest, tenant_name)
            if owner != tenant_name:
                problems.append(
                    ((*base, "key_sha256", j), f"this key already belongs to tenant {owner!r}")
                )
        spend = tenant.get("spend")
        if isinstance(spend, dict):
            degrade_to, soft, hard = (
                spend.get("degrade_to"),
                spend.get("soft_usd"),
                spend.get("hard_usd"),
            )
            if isinstance(degrade_to, str) and degrade_to not in names:
                problems.append(((*base, "spend", "degrade_to"), f"unknown route {degrade_to!r}"))
            if soft is not None and degrade_to is None:
                problems.append(((*base, "spend", "degrade_to"), "soft_usd needs degrade_to"))
            numbers = (int, float)
            if isinstance(soft, numbers) and isinstance(hard, numbers) and soft > hard:
                problems.append(((*base, "spend", "soft_usd"), "soft_usd exceeds hard_usd"))
        for j, route_name in _names(tenant.get("routes")):
            if route_name not in names:
                problems.append(((*base, "routes", j), f"unknown route {route_name!r}"))
    return problems


def _data_path(loc: tuple[Any, ...], data: Any) -> FieldPath:
    """A pydantic error location as a path into the user's data.

    Tagged unions put the tag in the location (`faults[0].outage.outcome`); a
    user never wrote that level, so parts that are not keys of the data are dropped.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        if not isinstance(part, str | int):
            continue
        if isinstance(node, dict):
            if part not in node:
                if isinstance(part, str) and node.get("kind") == part:
                    continue
                path.append(part)
                node = None
                continue
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        path.append(part)
    return tuple(path)


def validation_problems(error: ValidationError, data: Any) -> list[tuple[FieldPath, str]]:
    """Pydantic's errors as (field path, message) pairs a user can act on."""
    details = [(_data_path(tuple(d["loc"]), data), d) for d in error.errors()]
    problems: list[tuple[FieldPath, str]] = []
    for path, detail in details:
        kind = detail["type"]
        # "at least 1 item" on a list whose items had their own errors says nothing new.
        if kind == "too_short" and any(_is_prefix(path, other) for other, _ in details):
            continue
        message = detail["msg"]
        if kind == "extra_forbidden":
            message = "unknown field (check its spelling and place)"
        elif kind in {"union_tag_invalid", "union_tag_not_found"}:
            path = (*path, "kind")
            expected = detail.get("ctx", {}).get("expected_tags", "")
            message = f"unknown kind; expected one of {expected}" if expected else message
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append((path, message))
    return problems


def _is_prefix(short: FieldPath, long: FieldPath) -> bool:
    return len(short) < len(long) and long[: len(short)] == short


def policy_from_data(
    data: Any,
    *,
    source: str,
    env: Mapping[str, str],
    line_of: Callable[[FieldPath], int | None] = lambda path: None,
    require_env: bool = False,
) -> Policy:
    """Validate parsed policy data into a `Policy`, or raise `ConfigError` naming every issue.

    `line_of` maps a field path to its line in `source` (the YAML loader knows it);
    `${VAR}` and `${VAR:-default}` are filled from `env`. An unset variable is an
    error only with `require_env` (serving needs it, validating does not): it is
    filled with "" (an `api_key` is left out), and a field that is then invalid
    names the variable in its message.
    """

    def issue(path: FieldPath, message: str) -> ConfigIssue:
        return ConfigIssue(
            file=source, line=line_of(path), field=format_path(path), message=message
        )

    if not isinstance(data, dict):
        raise ConfigError([issue((), "a policy must be a mapping with deployments and routes")])
    missing: list[tuple[FieldPath, str]] = []
    resolved = _interpolate(data, env, (), missing)
    problems: list[tuple[FieldPath, str]] = []
    unset = {path: name for path, name in missing}
    if require_env:
        problems.extend((path, f"environment variable {name} is not set") for path, name in missing)
    resolved = _drop_empty_secrets(resolved, [path for path, _ in missing])
    problems.extend(_cross_references(resolved))
    flagged = {path for path, _ in problems}
    try:
        policy = Policy.model_validate(resolved)
    except ValidationError as error:
        for path, message in validation_problems(error, resolved):
            if path in flagged:
                continue
            if path in unset:
                message = f"environment variable {unset[path]} is not set ({message})"
            problems.append((path, message))
        policy = None
    if problems:
        problems.sort(key=lambda problem: line_of(problem[0]) or 0)
        raise ConfigError([issue(path, message) for path, message in problems])
    assert policy is not None
    return policy


def _drop_empty_secrets(data: Any, missing: list[FieldPath]) -> Any:
    """Leave unset secrets out entirely so validation does not see an empty key."""
    for path in missing:
        if path and path[-1] == "api_key":
            parent: Any = data
            for part in path[:-1]:
                parent = parent[part]
            parent.pop("api_key", None)
    return data
