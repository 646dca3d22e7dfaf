"""`blastradius gate`: run scenarios against a policy and decide pass or fail for CI.

The composition around `reports.gate`: find the scenarios, run them with
`simulator.runner.run_replications`, read or write the baseline, and write the
Markdown summary and JUnit XML. Exit codes (DESIGN.md): 0 the gate passes; 1 an
SLO, a hard check or a baseline comparison fails; 2 bad usage or invalid input
(a scenario, an override, the baseline file), with a message and no traceback.

Every scenario is loaded before the first one runs, so a typo in the last file
stops the gate in a second instead of after minutes of simulation.

With no scenario named the gate runs the whole library. A library scenario the
policy cannot run (it lacks the route or tenant the scenario needs) is *skipped*
and listed, not an input error: a single policy rarely fits every shipped
scenario. It still fails the gate when the baseline has it (the policy lost the
ability to run it). Named scenarios and directories get no such leniency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from reports.gate import (
    BaselineError,
    check_baseline,
    compare,
    junit_xml,
    make_baseline,
    markdown_summary,
    merge_baselines,
    unrunnable,
    verdict,
)
from reports.plots import heatmap_png
from router.core.errors import ConfigError
from scenarios.overrides import Override, parse_override
from scenarios.policy_files import load_policy
from scenarios.scenario_files import (
    resolve_policy_path,
)
from simulator.progress import Progress
from simulator.runner import RunRequest, json_default, run_replications
from simulator.selection import load_requests, scenario_paths

__all__ = ["add_parser", "cmd_gate"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
"""GitHub Actions' job-summary file; the Markdown is appended to it when set."""


class _Usage(Exception):
    """Bad usage or input that is not a config file (a missing baseline, an empty dir)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `gate` on the CLI's subcommands (DESIGN.md's flags plus output options)."""
    gate = commands.add_parser(
        "gate",
        help="run scenarios against a policy; exit 1 on a broken SLO or a baseline regression",
        description=(
            "Run scenarios (default: the whole library) against a policy, check each "
            "scenario's SLOs and hard checks, and compare with a baseline file. "
            "Exit 0 pass, 1 fail, 2 bad usage or input."
        ),
    )
    gate.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO|DIR",
        help="a scenario file, a library id, or a directory of *.yaml (default: the library)",
    )
    gate.add_argument("--policy", required=True, help="policy file or shipped name to gate")
    gate.add_argument("--baseline", type=Path, metavar="FILE", help="baseline JSON to compare with")
    gate.add_argument(
        "--update-baseline",
        action="store_true",
        help="write the results to --baseline FILE instead of failing on regressions",
    )
    gate.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    gate.add_argument(
        "--summary",
        type=Path,
        metavar="FILE",
        help=f"write the Markdown summary here (also appended to ${SUMMARY_ENV} when set)",
    )
    gate.add_argument(
        "--out",
        type=Path,
        default=Path("runs/gate"),
        metavar="DIR",
        help="where each scenario's results.json goes (runs/gate)",
    )
    gate.add_argument("--replications", type=int, help="Monte Carlo runs per scenario")
    gate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one scenario or policy field in every scenario, e.g. duration=1h",
    )
    gate.set_defaults(run=cmd_gate)


# --------------------------------------------------------------------------- inputs


def _check_policy(policy: str, overrides: tuple[Override, ...]) -> None:
    """Load the policy once on its own (ConfigError when broken).

    Without this, in library mode a missing or broken policy would make every
    scenario look merely inapplicable, and the real cause would be lost.
    """
    path = resolve_policy_path(policy, Path.cwd() / "_") or Path(policy)
    load_policy(path, overrides=[o for o in overrides if o.for_policy])


def _read_baseline(path: Path) -> dict[str, Any]:
    """The baseline in `path`, checked; _Usage with a clear message when absent or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Usage(f"baseline {path}: no such file (create it with --update-baseline)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise _Usage(f"baseline {path}: cannot read: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Usage(
            f"baseline {path}:{error.lineno}: not valid JSON: {error.msg} "
            "(re-create it with --update-baseline)"
        ) from None
    try:
        return check_baseline(data)
    except BaselineError as error:
        raise _Usage(f"baseline {path}: {error}") from None


# --------------------------------------------------------------------------- outputs


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _run_one(request: RunRequest, out: Path) -> dict[str, Any]:
    """Simulate one scenario; its results.json goes to `out/<id>--<policy>--seed<N>/`."""
    loaded = request.load()
    progress = Progress(loaded.scenario.id, loaded.scenario.duration)
    result, _sim, loaded = run_replications(request, progress=progress)
    progress.close()
    run_dir = out / f"{loaded.scenario.id}--{loaded.policy.name}--seed{result['seed']}"
    result["run_dir"] = str(run_dir)
    _write(
        run_dir / "results.json",
        json.dumps(result, indent=2, default=json_default) + "\n",
    )
    return result


# --------------------------------------------------------------------------- the command


def cmd_gate(args: argparse.Namespace) -> int:
    """Run the gate; print the Markdown summary; return the exit code (0, 1 or 2)."""
    try:
        return _gate(args)
    except ConfigError as error:
        for issue in error.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_USAGE
    except _Usage as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _gate(args: argparse.Namespace) -> int:
    if args.update_baseline and args.baseline is None:
        raise _Usage("--update-baseline needs --baseline FILE (where to write it)")
    if args.replications is not None and args.replications < 1:
        raise _Usage("--replications must be at least 1")
    overrides = tuple(parse_override(text) for text in args.set)
    _check_policy(args.policy, overrides)
    named = list(args.scenarios)
    runnable, skipped = load_requests(
        scenario_paths(named),
        args.policy,
        overrides,
        replications=args.replications,
        lenient=not named,
    )
    requests = [request for request, _ in runnable]
    if not requests:
        raise _Usage(f"no scenario can run with policy {args.policy!r}")

    baseline: dict[str, Any] | None = None
    notes: list[str] = []
    if args.baseline is not None:
        if not args.update_baseline:
            baseline = _read_baseline(args.baseline)
        elif args.baseline.is_file():
            try:
                baseline = _read_baseline(args.baseline)
            except _Usage as error:
                notes.append(f"The previous baseline was unreadable and is replaced ({error}).")

    results = [_run_one(request, args.out) for request in requests]
    policy_name = str(results[0]["policy"]) if results else str(args.policy)

    if args.update_baseline:
        regressions = []
        fresh = make_baseline(results)
        if baseline is not None and named and baseline.get("policy") == fresh["policy"]:
            fresh = merge_baselines(baseline, fresh)
        _write(args.baseline, json.dumps(fresh, indent=2, sort_keys=True) + "\n")
        notes.append(
            f"Baseline written to `{args.baseline}` ({len(fresh['scenarios'])} scenario(s)); "
            "deltas are against the previous baseline and do not fail the gate."
        )
    elif baseline is not None:
        regressions = compare(results, baseline) + unrunnable(skipped, baseline)
        if baseline.get("policy") and baseline.get("policy") != policy_name:
            notes.append(
                f"The baseline was recorded with policy `{baseline['policy']}`, "
                f"not `{policy_name}`."
            )
    else:
        regressions = []

    passed = verdict(results, regressions)
    summary = markdown_summary(results, baseline, regressions, skipped=skipped, notes=notes)
    print(summary, end="")
    if args.summary is not None:
        _write(args.summary, summary)
    step_summary = os.environ.get(SUMMARY_ENV)
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary + "\n")
    if args.junit is not None:
        _write(args.junit, junit_xml(results, regressions, skipped=skipped, policy=policy_name))
    if results:
        scores = pd.DataFrame(
            {policy_name: {result["scenario"]: result["score"] for result in results}}
        )
        heatmap = heatmap_png(scores, title=f"resilience score — {policy_name}")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "heatmap.png").write_bytes(heatmap)
        print(f"heatmap: {args.out / 'heatmap.png'}")
    print(f"run dirs: {args.out}")
    return EXIT_OK if passed else EXIT_FAILED
