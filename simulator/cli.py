"""The `blastradius` command line: the composition root that wires the parts together.

Exit codes (DESIGN.md): 0 ok; 1 a check failed; 2 bad usage or an invalid input
file, with a message naming file, line and field and never a traceback.

The simulator, reports, live runs and fakes are imported by the commands that use them,
not at the top: `blastradius serve` is the production gateway, and pandas, matplotlib and
SimPy would more than double its memory for nothing (about 130 MB instead of 50 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import Policy, missing_env
from router.server.serve import EVENT_LOOPS, LoopFactory, event_loop, run_gateway
from scenarios.durations import format_duration
from scenarios.overrides import parse_override
from scenarios.policy_files import load_policy
from scenarios.scenario_files import (
    LoadedScenario,
    find_scenario,
    is_scenario_data,
    library,
    load_scenario,
)
from scenarios.yaml_source import read_yaml
from simulator.progress import Progress

if TYPE_CHECKING:
    from fakes.server.world import FakeWorld

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


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if kind == "s":
        return format_duration(round(float(value), 1)) if value >= 1 else f"{value:.2f}s"
    if kind == "%":
        return f"{100 * value:.3f}%"
    return f"{value:.2f}"


SUMMARY = (
    ("scenario", lambda r: r["scenario"]),
    ("policy", lambda r: r["policy"]),
    ("requests", lambda r: f"{r['metrics']['requests']:.0f}"),
    ("availability", lambda r: _fmt(r["metrics"]["availability"], "%")),
    ("during faults", lambda r: _fmt(r["metrics"]["availability_during_faults"], "%")),
    ("amp peak", lambda r: _fmt(r["metrics"]["amplification_peak"])),
    ("TTD", lambda r: _fmt(r["metrics"]["ttd_s"], "s")),
    ("TTF", lambda r: _fmt(r["metrics"]["ttf_s"], "s")),
    ("TTR", lambda r: _fmt(r["metrics"]["ttr_s"], "s")),
    ("$/1k req", lambda r: _fmt(r["metrics"]["cost_per_1k_requests_usd"])),
    ("recovered", lambda r: _fmt(r["metrics"]["recovered"])),
    ("score", lambda r: f"{r['score']:.1f}"),
    ("SLOs", lambda r: f"{sum(s['ok'] for s in r['slos'])}/{len(r['slos'])}"),
)


def summary_table(results: Sequence[dict[str, Any]]) -> str:
    """The headline metrics of each run, one row per run, aligned."""
    rows = [[name for name, _ in SUMMARY]] + [[cell(r) for _, cell in SUMMARY] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Simulate each scenario; print the summary; exit 1 when an SLO or a hard check fails."""
    from simulator.runner import (
        RunRequest,
        run_context,
        run_replications,
        run_title,
        write_run_dir,
    )

    overrides = tuple(parse_override(text) for text in args.set)
    results = []
    for name in args.scenarios:
        request = RunRequest(
            scenario=find_scenario(name),
            policy=args.policy,
            overrides=overrides,
            seed=args.seed,
            replications=args.replications,
        )
        loaded = request.load()
        progress = Progress(loaded.scenario.id, loaded.scenario.duration)
        if args.live:
            result, out = _run_live(args, loaded, progress)
        else:
            result, sim, loaded = run_replications(request, progress=progress)
            seed = result["seed"]
            out = args.out / f"{loaded.scenario.id}--{loaded.policy.name}--seed{seed}"
            context = run_context(loaded)
            write_run_dir(out, result, sim, context=context, title=run_title(loaded, seed))
        progress.close()
        result["run_dir"] = str(out)
        results.append(result)
    print(summary_table(results))
    for result in results:
        for failure in result.get("hard_failures", []):
            print(f"hard failure: {result['scenario']} / {result['policy']}: {failure}")
        for slo in result["slos"]:
            if not slo["ok"]:
                print(
                    f"SLO failed: {result['scenario']} / {result['policy']}: {slo['name']} "
                    f"(observed {_fmt(slo['value'])})"
                )
        print(f"run dir: {result['run_dir']}")
        print(f"report: {Path(result['run_dir']) / 'report.html'}")
    if args.json is not None:
        payload: Any = results[0] if len(results) == 1 else {"runs": results}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return EXIT_OK if all(result["passed"] for result in results) else EXIT_FAILED


def _run_live(
    args: argparse.Namespace, loaded: LoadedScenario, progress: Progress
) -> tuple[dict[str, Any], Path]:
    """One live run: the gateway against the fake world; the run dir gains the journal."""
    from simulator.live import live_context, run_live
    from simulator.runner import result_of, run_context, run_title, write_run_dir

    seed = loaded.scenario.seed if args.seed is None else args.seed
    live = run_live(
        loaded, seed=seed, speedup=args.speedup, max_rate=args.max_rate, progress=progress
    )
    context = live_context(run_context(loaded), live.speedup)
    result = result_of(loaded, live, seed, context=context, engine="live")
    result.update(
        speedup=live.speedup,
        time_unit="real seconds (scenario seconds ÷ speedup)",
        engine_reasons=live.reasons,
        providers=live.providers,
        client_outcomes=live.client_errors,
        wall_s=round(live.wall_s, 3),
    )
    out = args.out / f"{loaded.scenario.id}--{loaded.policy.name}--seed{seed}--live"
    write_run_dir(out, result, live, context=context, title=run_title(loaded, seed) + " (live)")
    with (out / "journal.jsonl").open("w", encoding="utf-8") as journal:
        for entry in live.journal:
            journal.write(json.dumps(entry) + "\n")
    return result, out


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the grid on a process pool; print the table and write sweep.csv."""
    import pandas as pd

    from reports.plots import sweep_png
    from simulator.runner import RunRequest
    from simulator.sweep import run_sweep

    base = RunRequest(
        scenario=find_scenario(args.scenario),
        policy=args.policy,
        overrides=tuple(parse_override(text) for text in args.set),
        seed=args.seed,
    )
    loaded = base.load()
    with ProcessPoolExecutor(max_workers=args.workers or os.cpu_count() or 1) as pool:
        table = run_sweep(base, args.grid, pool)
    out = args.out / f"sweep--{loaded.scenario.id}--{loaded.policy.name}"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    axes = [spec.partition("=")[0] for spec in args.grid]
    chart = sweep_png(
        table,
        axes[0],
        args.metric,
        hue=axes[1] if len(axes) > 1 else None,
        title=f"{loaded.scenario.id} — {loaded.policy.name}",
    )
    (out / "sweep.png").write_bytes(chart)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"table: {out / 'sweep.csv'}")
    print(f"chart: {out / 'sweep.png'} ({args.metric} against {axes[0]})")
    return EXIT_OK


def _add_fakes_parser(commands: Any) -> None:
    """Register the `fakes` subcommand."""
    fakes = commands.add_parser(
        "fakes",
        help="serve fake providers (every vendor's wire format), edges and the chaos control API",
    )
    fakes.add_argument("--world", required=True, type=Path, help="a scenario or policy file")
    fakes.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    fakes.add_argument("--port", type=int, default=0, help="control API port (0: any free port)")
    fakes.add_argument("--ready-file", type=Path, help="write the ready JSON here when listening")
    fakes.add_argument(
        "--speedup", type=float, default=1.0, help="replay the scenario's fault timeline X× faster"
    )
    fakes.add_argument("--seed", type=int, help="seed of every draw (default: the scenario's)")
    fakes.add_argument("--journal", type=Path, help="append the attempt journal here (JSON lines)")
    _add_loop_argument(fakes)
    fakes.set_defaults(run=cmd_fakes)


def _add_loop_argument(parser: argparse.ArgumentParser) -> None:
    """`--loop`, for the commands that serve HTTP (`fakes`, `serve`)."""
    parser.add_argument(
        "--loop",
        choices=EVENT_LOOPS,
        default="auto",
        help="the event loop: uvloop, asyncio, or auto (uvloop where installed; the default)",
    )


def _chosen_loop(args: argparse.Namespace) -> tuple[str, LoopFactory] | None:
    """The loop `--loop` names, or None (said on stderr) when it cannot be had here."""
    try:
        return event_loop(args.loop)
    except ValueError as problem:
        print(f"error: --loop {args.loop}: {problem}", file=sys.stderr)
        return None


def cmd_fakes(args: argparse.Namespace) -> int:
    """Run the world until a signal; a clean shutdown closes every listener."""
    from fakes.server.world import FakeWorld, load_world

    loop = _chosen_loop(args)
    if loop is None:
        return EXIT_USAGE
    loop_name, loop_factory = loop
    policy, scenario = load_world(args.world)
    world = FakeWorld(
        policy,
        scenario,
        host=args.host,
        port=args.port,
        speedup=args.speedup,
        seed=args.seed,
        journal_path=args.journal,
    )
    print(f"fakes: event loop {loop_name}", file=sys.stderr)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(world, args.ready_file))
    return 0


async def _serve(world: FakeWorld, ready_file: Path | None) -> None:
    from fakes.server.world import serve_world

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = asyncio.create_task(serve_world(world, ready_file, stop))
    while not world.describe()["control"] and not started.done():
        await asyncio.sleep(0.01)
    if not started.done():
        document = world.describe()
        print(f"fakes: control API at {document['control']}", file=sys.stderr)
        for key, host in document["hosts"].items():
            via = f" (edge {host['edge']} at {host['edge_url']})" if host["edge"] else ""
            print(f"fakes: {host['protocol']:<12} {key} at {host['url']}{via}", file=sys.stderr)
    await started


def _add_serve_parser(commands: Any) -> None:
    """Register the `serve` subcommand (the production gateway)."""
    serve = commands.add_parser("serve", help="run the OpenAI-compatible gateway for a policy")
    serve.add_argument("--policy", required=True, type=Path, help="the policy YAML to serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (8080; 0: any free port)")
    serve.add_argument(
        "--audit-log",
        type=Path,
        help="append every attempt and request (trace schema) here as JSON lines",
    )
    serve.add_argument(
        "--audit-prompt-key-env",
        metavar="VAR",
        help="with --audit-log: each request line carries prompt_hmac, the HMAC-SHA256 of "
        "the client's JSON body (keys sorted, compact) under the secret in $VAR",
    )
    _add_loop_argument(serve)
    serve.add_argument(
        "--drain-s",
        type=float,
        default=30.0,
        help="on SIGTERM/SIGINT, how long in-flight requests may finish (30)",
    )
    serve.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then drain in-flight requests and exit 0.

    SIGHUP reloads the policy file (an invalid one is logged and the old one kept).
    """
    prompt_key = None
    if args.audit_prompt_key_env is not None:
        if args.audit_log is None:
            print("error: --audit-prompt-key-env needs --audit-log", file=sys.stderr)
            return EXIT_USAGE
        prompt_key = os.environ.get(args.audit_prompt_key_env, "").encode()
        if not prompt_key:
            print(
                f"error: --audit-prompt-key-env: ${args.audit_prompt_key_env} is not set "
                "(or empty); it must hold the secret prompt fingerprints are keyed with",
                file=sys.stderr,
            )
            return EXIT_USAGE
    loop = _chosen_loop(args)
    if loop is None:
        return EXIT_USAGE
    loop_name, loop_factory = loop
    policy = load_policy(args.policy, require_env=True)
    # The gateway's own log (reloads, refusals) to stderr; aiohttp's access log stays off.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("serve: %(message)s"))
    gateway_log = logging.getLogger("router.server")
    gateway_log.addHandler(handler)
    gateway_log.setLevel(logging.INFO)
    gateway_log.propagate = False
    print(
        f"serve: policy {policy.name}: {len(policy.deployments)} deployments, "
        f"{len(policy.routes)} routes",
        file=sys.stderr,
    )
    if not policy.tenants:
        print("serve: no tenants configured: serving one anonymous tenant", file=sys.stderr)
    print(f"serve: event loop {loop_name}", file=sys.stderr)

    def ready(url: str) -> None:
        print(f"serve: listening on {url}", file=sys.stderr, flush=True)

    try:
        run_gateway(
            policy,
            host=args.host,
            port=args.port,
            drain_s=args.drain_s,
            policy_path=args.policy,
            audit_log=args.audit_log,
            prompt_key=prompt_key,
            loop_factory=loop_factory,
            on_ready=ready,
        )
    except ValueError as problem:
        print(f"error: {args.policy}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def sweep_columns() -> list[str]:
    """Metrics a sweep table holds (and sweep.png can plot)."""
    from simulator.sweep import COLUMNS

    return [*COLUMNS, "score"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; one subcommand per user job in DESIGN.md."""
    from simulator import evidence, gate
    from simulator.live import DEFAULT_MAX_RATE, run_drills

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
    run = commands.add_parser(
        "run", help="simulate scenarios through the router core; write results.json and a run dir"
    )
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="a file or a library id")
    run.add_argument("--policy", help="policy file or shipped name (overrides the scenario's)")
    run.add_argument("--seed", type=int, help="first seed (default: the scenario's)")
    run.add_argument("--replications", type=int, help="Monte Carlo runs (seeds seed, seed+1, ...)")
    run.add_argument("--out", type=Path, default=Path("runs"), help="where run dirs go (runs/)")
    run.add_argument("--json", type=Path, help="also write results.json here")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one scenario or policy field, e.g. traffic.arrivals.rate=50",
    )
    run.add_argument(
        "--live",
        action="store_true",
        help="run the real gateway over HTTP against the fake providers, on a real clock",
    )
    run.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="--live: play arrivals and the fault timeline X times faster (latencies stay real)",
    )
    run.add_argument(
        "--max-rate",
        type=float,
        default=DEFAULT_MAX_RATE,
        help=f"--live: refuse runs above this mean requests/s (default {DEFAULT_MAX_RATE:g})",
    )
    run.set_defaults(run=cmd_run)
    sweep = commands.add_parser("sweep", help="run a scenario over a grid of settings")
    sweep.add_argument("scenario", metavar="SCENARIO", help="a file or a library id")
    sweep.add_argument("--policy", help="policy file or shipped name")
    sweep.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="KEY=V1,V2",
        help="an axis, e.g. resilience.retries.max_attempts_per_deployment=1,2,3",
    )
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sweep.add_argument("--seed", type=int)
    sweep.add_argument("--workers", type=int, help="processes (default: cores)")
    sweep.add_argument(
        "--metric",
        default="availability_during_faults",
        choices=sweep_columns(),
        help="what sweep.png plots against the first --grid axis",
    )
    sweep.add_argument("--out", type=Path, default=Path("runs"))
    sweep.set_defaults(run=cmd_sweep)
    gate.add_parser(commands)
    evidence.add_parser(commands, drills=run_drills)
    _add_fakes_parser(commands)
    _add_serve_parser(commands)
    return parser


def _serve_only_parser() -> argparse.ArgumentParser:
    """The parser of `blastradius serve` alone, so serving imports nothing of the simulator."""
    parser = argparse.ArgumentParser(prog="blastradius")
    _add_serve_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `blastradius` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _serve_only_parser() if arguments[:1] == ["serve"] else build_parser()
    args = parser.parse_args(arguments)
    try:
        code: int = args.run(args)
    except ConfigError as error:
        for issue in error.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
