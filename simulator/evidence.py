"""`blastradius evidence`: run scenarios and write a tamper-evident evidence pack for auditors.

The composition around the pure `reports.evidence`: this module does the I/O — reading
and copying the scenario and policy files, running the simulations, asking git for the
commit and the host for its name, reading the clock, and writing the pack — so that
everything an auditor reads is built by functions tests can drive without a disk.

    blastradius evidence [SCENARIO|DIR]... --policy FILE --out DIR [--live] [--previous DIR]
                         [--set K=V]...
    blastradius evidence verify DIR

A DIR in the first form is a directory of scenario files (every `*.yaml`/`*.yml` in it
that is a scenario); no SCENARIO means the whole built-in library. argparse cannot mix
free positionals with a subcommand, so `verify` is recognised as the first positional
(a scenario file literally named `verify` can still be given as `./verify`).

`--live` adds fallback drills: each deployment and failure domain of the policy removed
for real, in front of the production gateway over HTTP (`reports.drills`). The drill
runner needs the gateway and the fakes, which this module may not import (it is not a
composition root), so `simulator/cli.py` hands it in: `add_parser(commands, drills=...)`.

Exit codes: `evidence` 0 when the pack is written and every scenario and drill passed, 1
when it is written but a scenario or a drill failed (the pack is evidence either way), 2
on bad usage or input — including a `--previous` pack that does not verify. `verify` 0
intact, 1 naming each altered, missing or added file, 2 when DIR is not a pack.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from reports.drills import merge_live
from reports.evidence import (
    CHAIN_NAME,
    MANIFEST_NAME,
    ScenarioRun,
    build_pack,
    chain_record,
    complete_matrix,
    index_html,
    manifest,
    removal_rows,
    report_markdown,
    scenario_entry,
    sha256_hex,
    subjects_of,
    verify_pack,
)
from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import Policy
from scenarios.overrides import parse_override
from scenarios.scenario_files import (
    LoadedScenario,
)
from scenarios.schema import CsvArrivals
from scenarios.yaml_source import read_yaml
from simulator.progress import Progress
from simulator.runner import (
    RunRequest,
    json_default,
    run_context,
    run_replications,
    run_title,
    write_run_dir,
)
from simulator.selection import load_requests, scenario_paths

__all__ = [
    "DrillRunner",
    "add_parser",
    "cmd_evidence",
    "cmd_verify",
    "git_commit",
    "read_files",
    "read_pack",
]

DrillRunner = Callable[[Policy, Sequence[tuple[str, str, tuple[str, ...]]]], list[dict[str, Any]]]
"""Runs the live fallback drills for these subjects (`simulator.live.run_drills`)."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
GIT_TIMEOUT_S = 5.0
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class NotAPack(Exception):
    """DIR is not a directory holding MANIFEST.sha256 (verify exits 2, not 1)."""


class _PackFiles(Mapping[str, bytes]):
    """A pack directory as `relative path → bytes`, read lazily.

    The pure checks take a mapping; reading on demand keeps a pack with large traces
    from sitting in memory all at once.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self._known = frozenset(self.paths)

    def __getitem__(self, key: str) -> bytes:
        if key not in self._known:
            raise KeyError(key)
        return (self.root / key).read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, key: object) -> bool:
        return key in self._known


def read_files(root: Path) -> Mapping[str, bytes]:
    """Every file under `root` by relative `/`-separated path, read when first asked for."""
    return _PackFiles(root)


def read_pack(root: Path) -> Mapping[str, bytes]:
    """Every file under `root` by relative path; NotAPack unless it holds MANIFEST.sha256."""
    if not root.is_dir():
        raise NotAPack(f"{root}: not a directory")
    if not (root / MANIFEST_NAME).is_file():
        raise NotAPack(f"{root}: not an evidence pack (no {MANIFEST_NAME})")
    return _PackFiles(root)


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The commit of the blastradius checkout the tool runs from, or None.

    Only when `root` is itself the top of a git work tree: an installed copy inside
    some other repository (a venv in a user's repo) must not report that repo's commit.
    Read-only (`git rev-parse`), with a timeout; any failure means None.
    """
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    top, commit = lines
    if Path(top).resolve() != root.resolve():
        return None
    return commit


def _tool_version() -> str | None:
    try:
        return metadata.version("blastradius")
    except metadata.PackageNotFoundError:
        return None


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _slo_texts(path: Path) -> tuple[str, ...]:
    """The scenario's SLOs exactly as written in the file (the parsed form normalises)."""
    data = read_yaml(path).data
    raw = data.get("slos") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return ()
    texts = []
    for item in raw:
        if isinstance(item, str):
            texts.append(item.strip())
        elif isinstance(item, dict):
            texts.append(f"{item.get('metric')} {item.get('op')} {item.get('value')}")
        else:
            texts.append(str(item))
    return tuple(texts)


def _csv_arrivals(loaded: LoadedScenario) -> tuple[Path, str] | None:
    """A replayed arrivals CSV the scenario reads, and where its copy goes in the pack."""
    arrivals = loaded.scenario.traffic.arrivals
    if not isinstance(arrivals, CsvArrivals):
        return None
    relative = PurePosixPath(arrivals.file)
    if relative.is_absolute() or ".." in relative.parts:
        return loaded.path.parent / arrivals.file, f"scenarios/data/{relative.name}"
    return loaded.path.parent / arrivals.file, f"scenarios/{relative}"


def _add_input(inputs: dict[str, bytes], pack_path: str, data: bytes) -> None:
    """Copy a file into the pack; two different files wanting one name is an input error."""
    known = inputs.get(pack_path)
    if known is not None and known != data:
        raise ConfigError(
            [
                ConfigIssue(
                    file=pack_path,
                    line=None,
                    field="",
                    message="two different input files would share this name in the pack",
                )
            ]
        )
    inputs[pack_path] = data


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, default=json_default) + "\n").encode("utf-8")


def _write(out: Path, files: Mapping[str, bytes]) -> None:
    for relative, data in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _previous_link(previous: Path) -> str:
    """The previous pack's manifest hash, once that pack verifies; ValueError naming why not."""
    try:
        files = read_pack(previous)
        problems = verify_pack(files)
    except (NotAPack, OSError) as error:
        raise ValueError(f"--previous: {error}") from None
    if problems:
        listed = "; ".join(problems)
        raise ValueError(f"--previous {previous} does not verify: {listed}")
    return sha256_hex(files[MANIFEST_NAME])


def cmd_evidence(args: argparse.Namespace) -> int:
    """Run the scenarios with the policy and write the pack; see the module docstring."""
    if args.scenarios[:1] == ["verify"]:
        extra = args.policy or args.out or args.previous or args.set or args.live
        if len(args.scenarios) != 2 or extra:
            return _usage("usage: blastradius evidence verify DIR (no other arguments)")
        return cmd_verify(argparse.Namespace(dir=Path(args.scenarios[1])))
    if args.policy is None or args.out is None:
        return _usage("blastradius evidence needs --policy FILE and --out DIR")
    if args.live and args.drills is None:
        return _usage("--live needs the live gateway: run it through the blastradius command")
    try:
        return _evidence(args)
    except ConfigError as error:
        for issue in error.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_USAGE


def _evidence(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return _usage(f"{out}: exists and is not an empty directory (a pack is never overwritten)")
    previous_hash = None
    if args.previous is not None:
        try:
            previous_hash = _previous_link(args.previous)
        except ValueError as error:
            return _usage(str(error))
    started = _utc_now()
    overrides = tuple(parse_override(text) for text in args.set)
    # Load everything first: a bad file stops the pack before any simulation runs, and
    # the files (with the SLOs they declare) are read and kept before any result exists.
    runnable, skipped = load_requests(
        scenario_paths(args.scenarios), args.policy, overrides, lenient=not args.scenarios
    )
    requests = [request for request, _ in runnable]
    loaded_all = [loaded for _, loaded in runnable]
    if not requests:
        return _usage(f"no scenario can run with policy {args.policy!r}")
    inputs: dict[str, bytes] = {}
    policy_paths = {loaded.policy_path.resolve() for loaded in loaded_all}
    if len(policy_paths) != 1:
        return _usage("the scenarios resolved to different policy files")
    policy_path = loaded_all[0].policy_path
    policy_file = f"policy/{policy_path.name}"
    _add_input(inputs, policy_file, policy_path.read_bytes())
    ids = [loaded.scenario.id for loaded in loaded_all]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        return _usage(f"two scenario files share the id {', '.join(repeated)}")
    for loaded in loaded_all:
        _add_input(inputs, f"scenarios/{loaded.path.name}", loaded.path.read_bytes())
        csv = _csv_arrivals(loaded)
        if csv is not None:
            _add_input(inputs, csv[1], csv[0].read_bytes())

    # Staged next to --out and renamed at the end: an interrupted run never leaves a
    # half-written directory where a pack is expected, and traces go to disk as each
    # run finishes instead of piling up in memory.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        _write(staging, inputs)
        entries, rows = _run_all(staging, inputs, loaded_all, requests)
        for scenario_id, why in skipped.items():
            print(f"{scenario_id}: skipped ({why})")
        subjects = subjects_of(loaded_all[0])
        matrix = complete_matrix(subjects, rows)
        drills = _run_drills(args.drills, loaded_all[0], subjects) if args.live else None
        if drills is not None:
            matrix = merge_live(matrix, drills)
        meta = {
            "pack_id": uuid.uuid4().hex,
            "tool_version": _tool_version(),
            "git_commit": git_commit(),
            "started_utc": started,
            "finished_utc": _utc_now(),
            "host": socket.gethostname(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "arguments": {
                "scenarios": list(args.scenarios) or ["(the built-in library)"],
                "policy": str(args.policy),
                "set": list(args.set),
                **({"live": True} if args.live else {}),
            },
            "overrides": list(args.set),
            "previous_manifest_sha256": previous_hash,
        }
        pack = build_pack(
            meta=meta,
            loaded=loaded_all[0],
            scenarios=entries,
            matrix=matrix,
            inputs=inputs,
            policy_file=policy_file,
            skipped=skipped,
            live_drills=drills,
        )
        documents = {
            "evidence.json": _json_bytes(pack),
            "report.md": report_markdown(pack).encode("utf-8"),
            "index.html": index_html(pack).encode("utf-8"),
        }
        _write(staging, documents)
        manifest_text = manifest(read_files(staging))
        (staging / MANIFEST_NAME).write_text(manifest_text, encoding="utf-8", newline="\n")
        chain = chain_record(manifest_text, previous_hash)
        (staging / CHAIN_NAME).write_bytes(_json_bytes(chain))
        problems = verify_pack(read_pack(staging))
        if problems:  # the disk did not keep what was written: say so, hand nothing over
            for problem in problems:
                print(f"error: {out}: {problem}", file=sys.stderr)
            shutil.rmtree(staging)
            return EXIT_FAILED
        if out.exists():
            out.rmdir()  # checked empty above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    count = len(manifest_text.splitlines())
    print(f"evidence pack: {out} ({count} files + {MANIFEST_NAME}, {CHAIN_NAME})")
    print(f"manifest sha256: {chain['manifest_sha256']}")
    print(f"previous pack: {previous_hash or 'none (first in its chain)'}")
    if not pack["passed"]:
        if pack["summary"]["failed"]:
            print(f"FAILED scenarios: {', '.join(pack['summary']['failed'])}")
        if pack["summary"].get("live_drills_failed"):
            print(f"FAILED live drills: {', '.join(pack['summary']['live_drills_failed'])}")
        return EXIT_FAILED
    return EXIT_OK


def _run_drills(
    drills: DrillRunner,
    loaded: LoadedScenario,
    subjects: Sequence[tuple[str, str, tuple[str, ...]]],
) -> list[dict[str, Any]]:
    """The live drills of the pack's policy (overrides applied), one line printed per subject."""
    records = drills(loaded.policy, subjects)
    for drill in records:
        served = ", ".join(f"{name} ({n})" for name, n in drill["served_by"].items()) or "nobody"
        print(
            f"live drill {drill['subject']}: {drill['verdict']} "
            f"({drill['answered']}/{drill['requests']} answered; served by {served})"
        )
    return records


def _run_all(
    staging: Path,
    inputs: Mapping[str, bytes],
    loaded_all: Sequence[LoadedScenario],
    requests: Sequence[RunRequest],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Simulate each scenario and write its run files; its evidence entry and matrix rows.

    One trace is in memory at a time: everything the pack needs from it is taken
    (entry, matrix rows, files) before the next scenario runs.
    """
    entries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for request, declared in zip(requests, loaded_all, strict=True):
        progress = Progress(declared.scenario.id, declared.scenario.duration)
        result, sim, loaded = run_replications(request, progress=progress)
        progress.close()
        scenario_file = f"scenarios/{declared.path.name}"
        run_dir = f"runs/{loaded.scenario.id}"
        run = ScenarioRun(
            loaded=loaded,
            context=run_context(loaded),
            result=result,
            attempts=sim.attempts,
            requests=sim.requests,
            scenario_file=scenario_file,
            scenario_sha256=sha256_hex(inputs[scenario_file]),
            slo_texts=_slo_texts(loaded.path),
            run_dir=run_dir,
        )
        entries.append(scenario_entry(run))
        rows.extend(removal_rows(run))
        write_run_dir(
            staging / run_dir,
            result,
            sim,
            context=run.context,
            title=run_title(loaded, result["seed"]),
        )
        del run, sim
        verdict = "passed" if result["passed"] else "FAILED"
        print(f"{loaded.scenario.id}: {verdict} (score {result['score']:.1f})")
    return entries, rows


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a pack: exit 0 intact, 1 naming each altered/missing/added file, 2 not a pack."""
    root = Path(args.dir)
    try:
        files = read_pack(root)
        problems = verify_pack(files)
    except NotAPack as error:
        return _usage(str(error))
    except OSError as error:
        return _usage(f"{root}: cannot read: {error}")
    if problems:
        for problem in problems:
            print(f"{root}: {problem}")
        print(f"{root}: NOT intact ({len(problems)} problem(s))")
        return EXIT_FAILED
    chain = json.loads(files[CHAIN_NAME].decode("utf-8"))
    listed = len(files) - len({MANIFEST_NAME, CHAIN_NAME} & set(files))
    print(f"ok: {root}: {listed} files intact")
    print(f"manifest sha256: {chain['manifest_sha256']}")
    print(f"previous pack: {chain.get('previous_manifest_sha256') or 'none (first in its chain)'}")
    return EXIT_OK


def add_parser(commands: Any, *, drills: DrillRunner | None = None) -> argparse.ArgumentParser:
    """Register `evidence` (and its `verify DIR` form) on the CLI's subparsers.

    `drills` runs `--live` (the composition root passes `simulator.live.run_drills`);
    without it `--live` is refused as bad usage.
    """
    evidence: argparse.ArgumentParser = commands.add_parser(
        "evidence",
        help="run scenarios and write an auditor evidence pack; 'evidence verify DIR' checks one",
        description=(
            "blastradius evidence [SCENARIO|DIR]... --policy FILE --out DIR [--live] "
            "[--previous DIR]\n"
            "blastradius evidence verify DIR"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evidence.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO|DIR",
        help="scenario files, library ids or directories of scenarios (default: the library); "
        "or 'verify DIR'",
    )
    evidence.add_argument("--policy", metavar="FILE", help="policy file or shipped name (required)")
    evidence.add_argument(
        "--out", type=Path, metavar="DIR", help="the pack directory to create (required)"
    )
    evidence.add_argument(
        "--live",
        action="store_true",
        help="also drill every fallback over real HTTP: remove each deployment and failure "
        "domain in turn with a fault in the fake providers and send requests through the "
        "real gateway (a drill that is not answered by an alternate fails the pack)",
    )
    evidence.add_argument(
        "--previous",
        type=Path,
        metavar="DIR",
        help="the previous pack: chain this one to its manifest hash",
    )
    evidence.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one scenario or policy field in every run, e.g. traffic.arrivals.rate=50",
    )
    evidence.set_defaults(run=cmd_evidence, drills=drills)
    return evidence
