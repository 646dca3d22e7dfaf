"""Which scenarios a multi-scenario command (gate, evidence) runs, and which it skips.

Both take `SCENARIO|DIR...` arguments, default to the whole library, and must tell
a broken file (bad input, exit 2) from a library scenario that is valid with its
own policy but cannot run with the policy under test (skipped, and said so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from router.core.errors import ConfigError, ConfigIssue
from scenarios.overrides import Override
from scenarios.scenario_files import (
    LoadedScenario,
    find_scenario,
    is_scenario_data,
    library,
    load_scenario,
)
from scenarios.yaml_source import read_yaml
from simulator.runner import RunRequest

__all__ = ["load_requests", "scenario_paths", "why"]


def scenario_paths(names: Sequence[str]) -> list[Path]:
    """SCENARIO|DIR arguments → scenario files (the library when none), duplicates dropped."""
    if not names:
        return library()
    found: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            members = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            scenarios = [p for p in members if is_scenario_data(read_yaml(p).data)]
            if not scenarios:
                raise ConfigError(
                    [ConfigIssue(file=name, line=None, field="", message="no scenario files")]
                )
            found.extend(scenarios)
        else:
            found.append(find_scenario(name))
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def why(error: ConfigError) -> str:
    """One line saying why a scenario cannot run with the policy."""
    first = error.issues[0]
    text = f"{first.field}: {first.message}" if first.field else first.message
    more = len(error.issues) - 1
    return text + (f" (and {more} more)" if more else "")


def load_requests(
    paths: Sequence[Path],
    policy: str,
    overrides: tuple[Override, ...],
    *,
    replications: int | None = None,
    lenient: bool,
) -> tuple[list[tuple[RunRequest, LoadedScenario]], dict[str, str]]:
    """A run request (and its loaded scenario) per runnable scenario; skipped ids → why.

    `lenient` (the whole library): a scenario valid with its own policy but not with
    this one (a route or tenant it lacks) is skipped; a scenario named on the command
    line must run, so its error propagates (exit 2), as does a broken file. Two files
    with one scenario id are refused: their run directories would collide.
    """
    runnable: list[tuple[RunRequest, LoadedScenario]] = []
    skipped: dict[str, str] = {}
    ids: dict[str, Path] = {}
    for path in paths:
        request = RunRequest(
            scenario=path, policy=policy, overrides=overrides, replications=replications
        )
        try:
            loaded = request.load()
        except ConfigError as error:
            if not lenient:
                raise
            own = load_scenario(path, overrides=overrides)  # raises when the file is broken
            skipped[own.scenario.id] = f"not applicable to this policy: {why(error)}"
            continue
        scenario_id = loaded.scenario.id
        if scenario_id in ids:
            message = f"scenario id {scenario_id!r} is also used by {ids[scenario_id]}"
            raise ConfigError([ConfigIssue(file=str(path), line=None, field="id", message=message)])
        ids[scenario_id] = path
        runnable.append((request, loaded))
    return runnable, skipped
