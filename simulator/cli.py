"""The `blastradius` command line: the composition root that wires the parts together.

Exit codes (DESIGN.md): 0 ok; 1 a check failed; 2 bad usage or an invalid input
file, with a message naming file, line and field and never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import Policy, missing_env
from scenarios.durations import format_duration
from scenarios.policy_files import load_policy
from scenarios.scenario_files import LoadedScenario, is_scenario_data, library, load_scenario
from scenarios.yaml_source import read_yaml

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _describe(policy: Policy) -> str:
    routes = ", ".join(route.name for route in policy.routes)
    return (
        f"policy {policy.name!r}: {_count(len(policy.deployments), 'deployment')}, routes: {routes}"
    )


def _describe_scenario(loaded: LoadedScenario) -> str:
    scenario = loaded.scenario
    return (
        f"scenario {scenario.id!r}: {format_duration(scenario.duration)}, "
        f"{_count(len(scenario.faults), 'fault')}, {_count(len(scenario.slos), 'SLO')}, "
        f"policy {loaded.policy.name!r}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _validate_one(path: Path) -> str:
    parsed = read_yaml(path)
    data = parsed.data
    if is_scenario_data(data):
        return _describe_scenario(load_scenario(path))
    if isinstance(data, dict) and ("deployments" in data or "routes" in data):
        policy = load_policy(path)
        note = _describe(policy)
        unset = sorted({name for _, name in missing_env(data, os.environ)})
        if unset:
            note += f" (unset, needed to serve: {', '.join(unset)})"
        return note
    raise ConfigError(
        [
            ConfigIssue(
                file=str(path),
                line=1,
                field="",
                message="neither a policy (deployments, routes) nor a scenario (traffic, faults)",
            )
        ]
    )


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every file; report all problems, not just those of the first bad file."""
    status = EXIT_OK
    for name in args.files:
        path = Path(name)
        try:
            if not path.is_file():
                raise ConfigError(
                    [ConfigIssue(file=name, line=None, field="", message="no such file")]
                )
            note = _validate_one(path)
        except ConfigError as error:
            for issue in error.issues:
                print(f"error: {issue}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        except (OSError, UnicodeDecodeError) as error:
            print(f"error: {name}: cannot read: {error}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        print(f"ok: {name}: {note}")
    return status


def cmd_scenarios(args: argparse.Namespace) -> int:
    """The built-in library as a table: what a user can run by id."""
    rows = []
    for path in library():
        try:
            scenario = load_scenario(path).scenario
        except ConfigError as error:
            for issue in error.issues:
                print(f"error: {issue}", file=sys.stderr)
            return EXIT_USAGE
        kinds = sorted({fault.kind for fault in scenario.faults})
        faults = f"{len(scenario.faults)} ({', '.join(kinds)})" if kinds else "0"
        rows.append(
            (
                scenario.id,
                format_duration(scenario.duration),
                scenario.policy,
                faults,
                scenario.title,
            )
        )
    header = ("id", "duration", "policy", "faults", "title")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; one subcommand per user job in DESIGN.md."""
    parser = argparse.ArgumentParser(
        prog="blastradius",
        description="Chaos-testing and resilience simulation harness for LLM routing.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate",
        help="check policy and scenario files; exit 2 naming file, line and field on error",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(run=cmd_validate)
    listing = commands.add_parser("scenarios", help="list the built-in scenario library")
    listing.set_defaults(run=cmd_scenarios)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `blastradius` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
