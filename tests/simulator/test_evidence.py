"""`blastradius evidence` end to end: write a pack, verify it, tamper with it, chain two packs.

Runs are shortened (1 request/s for an hour) so a pack takes about a second. The parser is
built with `simulator.evidence.add_parser`, exactly as the CLI registers it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from simulator.evidence import add_parser, git_commit

SCENARIO = "cloudflare-2025-12-05"
SMALL = ["--set", "traffic.arrivals.rate=1", "--set", "duration=1h"]
PACK_FILES = {
    "index.html",
    "report.md",
    "evidence.json",
    "policy/domain-aware.yaml",
    f"scenarios/{SCENARIO}.yaml",
    f"runs/{SCENARIO}/results.json",
    f"runs/{SCENARIO}/attempts.csv",
    f"runs/{SCENARIO}/timeline.png",
    f"runs/{SCENARIO}/report.html",
    f"runs/{SCENARIO}/requests.csv",
    "MANIFEST.sha256",
    "CHAIN.json",
}


def cli(argv: Sequence[str]) -> int:
    """`blastradius ARGV` with the evidence command registered as simulator/cli.py does."""
    parser = argparse.ArgumentParser(prog="blastradius")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser(commands)
    args = parser.parse_args(list(argv))
    code: int = args.run(args)
    return code


def make_pack(out: Path, *extra: str) -> int:
    return cli(
        ["evidence", SCENARIO, "--policy", "domain-aware", "--out", str(out), *SMALL, *extra]
    )


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pack, built once; tests that tamper work on a copy."""
    out = tmp_path_factory.mktemp("evidence") / "pack"
    assert make_pack(out) == 0
    return out


@pytest.fixture
def pack(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "pack"
    shutil.copytree(built, copy)
    return copy


def test_the_pack_holds_every_listed_file(built: Path) -> None:
    assert files_of(built) == PACK_FILES
    listed = [
        line.split("  ", 1)[1]
        for line in (built / "MANIFEST.sha256").read_text(encoding="utf-8").splitlines()
    ]
    assert listed == sorted(PACK_FILES - {"MANIFEST.sha256", "CHAIN.json"})


def test_evidence_json_records_the_run(built: Path) -> None:
    pack = json.loads((built / "evidence.json").read_text(encoding="utf-8"))
    meta = pack["meta"]
    policy = (built / "policy/domain-aware.yaml").read_bytes()
    assert meta["engine"] == "sim" and meta["tool"] == "blastradius"
    assert meta["policy_sha256"] == hashlib.sha256(policy).hexdigest()
    assert meta["seeds"] == {SCENARIO: [1]}
    assert meta["host"] and meta["tool_version"]
    assert meta["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", meta["git_commit"])
    for key in ("started_utc", "finished_utc"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta[key])
    assert meta["previous_manifest_sha256"] is None
    (scenario,) = pack["scenarios"]
    assert scenario["passed"] is True and pack["passed"] is True
    # The SLOs as written in the file (the parsed form would say "<= 2").
    assert "amplification_peak <= 2.0" in [slo["declared"] for slo in scenario["slos"]]
    assert all(slo["ok"] for slo in scenario["slos"])
    results = json.loads((built / f"runs/{SCENARIO}/results.json").read_text(encoding="utf-8"))
    assert results["scenario"] == SCENARIO and results["engine"] == "sim"
    rows = {row["subject"]: row for row in pack["substitutability"]}
    edge = rows["edge:cloudflare"]
    assert edge["verified"] == "simulated" and edge["scenario"] == SCENARIO
    assert "claude-sonnet-4@bedrock-us-east-1" in edge["alternates"]
    assert edge["success_rate"] > 0.99 and edge["ttf_s"] is not None
    assert rows["cloud:gcp"]["verified"] == "not tested"
    copied = (built / f"scenarios/{SCENARIO}.yaml").read_text(encoding="utf-8")
    assert scenario["assumptions"].split()[:5] == ["The", "sources", "give", "28", "%"]
    assert "assumptions:" in copied


def test_report_and_page_are_for_people(built: Path) -> None:
    report = (built / "report.md").read_text(encoding="utf-8")
    page = (built / "index.html").read_text(encoding="utf-8")
    for heading in ("Substitutability matrix", "Control mapping", "Scope and limitations"):
        assert f"## {heading}" in report and heading in page
    assert "## Sign-off" in report and "<script" not in page.lower()


def test_an_intact_pack_verifies(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["evidence", "verify", str(built)]) == 0
    assert "ok:" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_sha256sum_checks_the_manifest_without_blastradius(built: Path) -> None:
    done = subprocess.run(
        ["sha256sum", "--check", "--strict", "MANIFEST.sha256"],
        cwd=built,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    chain = json.loads((built / "CHAIN.json").read_text(encoding="utf-8"))
    manifest = (built / "MANIFEST.sha256").read_bytes()
    assert chain["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()


def test_one_flipped_byte_is_named(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = pack / f"runs/{SCENARIO}/results.json"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert cli(["evidence", "verify", str(pack)]) == 1
    out = capsys.readouterr().out
    assert f"altered: runs/{SCENARIO}/results.json" in out
    assert "missing:" not in out and "added:" not in out


def test_a_deleted_file_is_named(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (pack / f"runs/{SCENARIO}/attempts.csv").unlink()
    assert cli(["evidence", "verify", str(pack)]) == 1
    assert f"missing: runs/{SCENARIO}/attempts.csv" in capsys.readouterr().out


def test_an_added_file_is_named(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (pack / "runs" / "notes.txt").write_text("added later\n", encoding="utf-8")
    assert cli(["evidence", "verify", str(pack)]) == 1
    assert "added: runs/notes.txt" in capsys.readouterr().out


def test_a_rewritten_chain_link_is_named(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = json.loads((pack / "CHAIN.json").read_text(encoding="utf-8"))
    chain["previous_manifest_sha256"] = "ab" * 32
    (pack / "CHAIN.json").write_text(json.dumps(chain), encoding="utf-8")
    assert cli(["evidence", "verify", str(pack)]) == 1
    assert "altered: CHAIN.json" in capsys.readouterr().out


def test_a_directory_that_is_not_a_pack_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    assert cli(["evidence", "verify", str(tmp_path)]) == 2
    assert cli(["evidence", "verify", str(tmp_path / "absent")]) == 2
    assert "not an evidence pack" in capsys.readouterr().err


def test_a_second_pack_links_the_first_ones_manifest(built: Path, tmp_path: Path) -> None:
    second = tmp_path / "second"
    assert make_pack(second, "--previous", str(built)) == 0
    first_hash = hashlib.sha256((built / "MANIFEST.sha256").read_bytes()).hexdigest()
    chain = json.loads((second / "CHAIN.json").read_text(encoding="utf-8"))
    assert chain["previous_manifest_sha256"] == first_hash
    meta = json.loads((second / "evidence.json").read_text(encoding="utf-8"))["meta"]
    assert meta["previous_manifest_sha256"] == first_hash
    assert cli(["evidence", "verify", str(second)]) == 0


def test_previous_pointing_at_a_tampered_pack_exits_2(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pack / "report.md").write_text("# nothing to see\n", encoding="utf-8")
    out = tmp_path / "next"
    assert make_pack(out, "--previous", str(pack)) == 2
    assert "altered: report.md" in capsys.readouterr().err
    assert not out.exists()


def test_a_directory_of_scenarios_is_accepted(tmp_path: Path) -> None:
    scenarios = tmp_path / "mine"
    scenarios.mkdir()
    library = Path(__file__).resolve().parents[2] / "scenarios" / "library"
    shutil.copy(library / f"{SCENARIO}.yaml", scenarios)
    (scenarios / "notes.yaml").write_text("just: notes\n", encoding="utf-8")
    out = tmp_path / "pack"
    argv = ["evidence", str(scenarios), "--policy", "domain-aware", "--out", str(out), *SMALL]
    assert cli(argv) == 0
    assert f"runs/{SCENARIO}/results.json" in files_of(out)


@pytest.mark.parametrize(
    "argv",
    [
        ["evidence", SCENARIO, "--out", "OUT"],  # no --policy
        ["evidence", SCENARIO, "--policy", "domain-aware"],  # no --out
        ["evidence", "verify"],  # no DIR
        ["evidence", "verify", "a", "b"],
        ["evidence", "verify", "DIR", "--policy", "domain-aware"],
        ["evidence", "no-such-scenario", "--policy", "domain-aware", "--out", "OUT"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], tmp_path: Path) -> None:
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert cli(argv) == 2
    assert not (tmp_path / "out").exists()


def test_an_existing_pack_is_never_overwritten(built: Path) -> None:
    assert make_pack(built) == 2


def test_git_commit_only_for_a_blastradius_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    commit = git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)


def test_by_default_library_scenarios_the_policy_cannot_run_are_skipped_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    library = Path(__file__).resolve().parents[2] / "scenarios" / "library"
    small_library = [library / f"{SCENARIO}.yaml", library / "model-withdrawal.yaml"]
    monkeypatch.setattr("simulator.selection.library", lambda: small_library)
    out = tmp_path / "pack"
    small = ["--set", "traffic.arrivals.rate=0.5", "--set", "duration=3h"]  # withdrawal at 2h
    assert cli(["evidence", "--policy", "domain-aware", "--out", str(out), *small]) == 0
    assert "model-withdrawal: skipped" in capsys.readouterr().out
    pack = json.loads((out / "evidence.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in pack["scenarios"]] == [SCENARIO]
    (skipped,) = pack["skipped"]
    assert skipped["scenario"] == "model-withdrawal" and "escalation" in skipped["reason"]
    assert "model-withdrawal" in (out / "report.md").read_text(encoding="utf-8")
    # Named on the command line, the same scenario is bad input instead.
    named = ["evidence", "model-withdrawal", "--policy", "domain-aware"]
    assert cli([*named, "--out", str(tmp_path / "other"), *small]) == 2


def test_an_interrupted_run_leaves_no_partial_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("simulator.evidence.run_replications", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_pack(tmp_path / "pack")
    assert list(tmp_path.iterdir()) == []
