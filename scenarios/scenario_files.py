"""Reading scenario files: validation with lines, the scenario's policy, and the library.

A scenario is checked twice: on its own (pydantic, every field), then against
the policy it will run with — its routes and tenants must exist there, and every
fault must hit at least one deployment of the scenario's own policy (a typo such
as `edge:cloudfare` would otherwise silently test nothing). Faults aimed at
deployments a `--policy` override does not have are allowed: a world describes
the provider universe, a policy picks from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import FieldPath, Policy, format_path, validation_problems
from scenarios.faults import AnyFault, ContentFilter, Staggered
from scenarios.overrides import Override, apply_overrides
from scenarios.policy_files import POLICY_DIR, load_policy
from scenarios.schema import BurstArrivals, CsvArrivals, Scenario
from scenarios.yaml_source import YamlSource, read_yaml

__all__ = [
    "LIBRARY_DIR",
    "LoadedScenario",
    "find_scenario",
    "hidden_domains",
    "is_scenario_data",
    "library",
    "load_scenario",
    "resolve_policy_path",
    "targets_of",
]

LIBRARY_DIR = Path(__file__).parent / "library"


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """A validated scenario, the policy it runs with, and where both came from."""

    scenario: Scenario
    policy: Policy
    path: Path
    policy_path: Path


def is_scenario_data(data: object) -> bool:
    """Whether parsed YAML looks like a scenario (rather than a policy)."""
    return isinstance(data, dict) and bool({"traffic", "faults", "world"} & set(data))


def resolve_policy_path(name: str, scenario_path: Path) -> Path | None:
    """A shipped policy by name (`domain-aware`), or a path relative to the scenario file."""
    candidates = []
    if name.endswith((".yaml", ".yml")) or "/" in name:
        candidates.append((scenario_path.parent / name).resolve())
        candidates.append(Path(name))
    else:
        candidates.append(POLICY_DIR / f"{name}.yaml")
    return next((path for path in candidates if path.is_file()), None)


def hidden_domains(scenario: Scenario, policy: Policy) -> dict[str, tuple[str, ...]]:
    """The world's hidden domains of each policy deployment (defaults included)."""
    return {d.id: scenario.world.for_deployment(d.id).hidden_domains for d in policy.deployments}


def targets_of(fault: AnyFault, policy: Policy, hidden: dict[str, tuple[str, ...]]) -> list[str]:
    """Ids of the policy's deployments a fault hits (its domains include hidden ones)."""
    hit = []
    for deployment in policy.deployments:
        labels = set(deployment.domains) | set(hidden.get(deployment.id, ()))
        if deployment.id in fault.target.deployments or labels & set(fault.target.domains):
            hit.append(deployment.id)
    return hit


def _staggered_problems(
    fault: AnyFault,
    shape: Staggered,
    path: FieldPath,
    scenario: Scenario,
    policy: Policy,
    hidden: dict[str, tuple[str, ...]],
) -> list[tuple[FieldPath, str]]:
    """Members must be in the target, and their own windows inside the fault's window
    (which is what reports count as "during faults")."""
    problems: list[tuple[FieldPath, str]] = []
    members = set(fault.target.deployments) | set(fault.target.domains)
    members |= set(targets_of(fault, policy, hidden))
    length = (scenario.duration if fault.end is None else fault.end) - fault.start
    for key in ("starts", "ends"):
        offsets: dict[str, float] = getattr(shape, key)
        for member, offset in offsets.items():
            where = (*path, "shape", key, member)
            if member not in members:
                problems.append((where, "not a member of this fault's target"))
            if key == "starts" and offset >= length:
                problems.append((where, "starts after the fault ends"))
            if key == "ends" and offset > length:
                problems.append((where, "ends after the fault ends (offsets are from its start)"))
            if key == "ends" and offset <= shape.starts.get(member, 0.0):
                problems.append((where, "ends before this member starts"))
    return problems


def _semantic_problems(
    scenario: Scenario, policy: Policy, *, own_policy: bool, base: Path
) -> list[tuple[FieldPath, str]]:
    problems: list[tuple[FieldPath, str]] = []
    routes = {route.name for route in policy.routes}
    task_names = {task.name for task in scenario.traffic.tasks}
    for i, task in enumerate(scenario.traffic.tasks):
        if task.route_in(routes) is None:
            wanted = " or ".join(repr(name) for name in task.route)
            problems.append(
                (("traffic", "tasks", i, "route"), f"policy {policy.name!r} has no route {wanted}")
            )
    if policy.tenants:
        if not scenario.traffic.tenants:
            problems.append(
                (
                    ("traffic", "tenants"),
                    f"policy {policy.name!r} has tenants; traffic must name them",
                )
            )
        for tenant in scenario.traffic.tenants:
            if tenant not in policy.tenants:
                problems.append(
                    (
                        ("traffic", "tenants", tenant),
                        f"policy {policy.name!r} has no tenant {tenant!r}",
                    )
                )
    arrivals = scenario.traffic.arrivals
    if isinstance(arrivals, CsvArrivals) and not (base.parent / arrivals.file).is_file():
        problems.append((("traffic", "arrivals", "file"), f"no such file {arrivals.file!r}"))
    if isinstance(arrivals, BurstArrivals):
        for j, burst in enumerate(arrivals.bursts):
            where: FieldPath = ("traffic", "arrivals", "bursts", j)
            if burst.start >= scenario.duration:
                problems.append(((*where, "start"), "starts after the run ends"))
            if burst.task is not None and burst.task not in task_names:
                problems.append(((*where, "task"), f"no task {burst.task!r} in traffic.tasks"))
            if burst.tenant is not None and burst.tenant not in scenario.traffic.tenants:
                problems.append(
                    ((*where, "tenant"), f"no tenant {burst.tenant!r} in traffic.tenants")
                )
    hidden = hidden_domains(scenario, policy)
    for i, fault in enumerate(scenario.faults):
        path: FieldPath = ("faults", i)
        if fault.start >= scenario.duration:
            problems.append(((*path, "start"), "starts after the run ends"))
        if fault.end is not None and fault.end > scenario.duration:
            problems.append(((*path, "end"), "ends after the run ends (leave end out instead)"))
        if own_policy and not targets_of(fault, policy, hidden):
            problems.append(((*path, "target"), f"selects no deployment of policy {policy.name!r}"))
        if isinstance(fault, ContentFilter) and fault.task and fault.task not in task_names:
            problems.append(((*path, "task"), f"no task {fault.task!r} in traffic.tasks"))
        if isinstance(fault.shape, Staggered):
            problems.extend(_staggered_problems(fault, fault.shape, path, scenario, policy, hidden))
    return problems


def _raise(parsed: YamlSource, problems: list[tuple[FieldPath, str]]) -> NoReturn:
    problems.sort(key=lambda problem: parsed.line_of(problem[0]) or 0)
    raise ConfigError(
        [
            ConfigIssue(
                file=parsed.source,
                line=parsed.line_of(path),
                field=format_path(path),
                message=message,
            )
            for path, message in problems
        ]
    )


def load_scenario(
    path: str | Path,
    *,
    policy: str | Path | None = None,
    overrides: Sequence[Override] = (),
) -> LoadedScenario:
    """Load, validate and cross-check a scenario; `policy` (a path or a shipped name) overrides.

    `overrides` (`--set`) edit the scenario or, for policy keys, its policy.
    """
    path = Path(path)
    parsed = read_yaml(path)
    data = apply_overrides(
        parsed.data, [o for o in overrides if not o.for_policy], source=str(path)
    )
    if not isinstance(data, dict):
        _raise(parsed, [((), "a scenario must be a mapping (id, title, traffic, faults, ...)")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        _raise(parsed, validation_problems(error, data))
    if policy is None:
        policy_path = resolve_policy_path(scenario.policy, path)
        if policy_path is None:
            _raise(
                parsed,
                [
                    (
                        ("policy",),
                        f"no policy {scenario.policy!r} (a shipped name or a path "
                        "relative to this file)",
                    )
                ],
            )
    else:
        policy_path = resolve_policy_path(str(policy), Path.cwd() / "_") or Path(policy)
    loaded_policy = load_policy(policy_path, overrides=[o for o in overrides if o.for_policy])
    problems = _semantic_problems(scenario, loaded_policy, own_policy=policy is None, base=path)
    if problems:
        _raise(parsed, problems)
    return LoadedScenario(scenario, loaded_policy, path, policy_path)


def library() -> list[Path]:
    """The built-in scenarios, in name order."""
    return sorted(LIBRARY_DIR.glob("*.yaml"))


def find_scenario(name: str) -> Path:
    """A scenario file by path, or a library scenario by id; ConfigError when neither."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = LIBRARY_DIR / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(p.stem for p in library())
    raise ConfigError(
        [
            ConfigIssue(
                file=name,
                line=None,
                field="",
                message=f"no such file or library scenario (library: {known})",
            )
        ]
    )
