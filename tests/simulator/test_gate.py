"""`blastradius gate` end to end, as CI calls it, on shortened library scenarios.

The parser is built here with `simulator.gate.add_parser`, exactly as the CLI
registers it, so the flags under test are the ones users type. Runs are shortened
with `--set` (an hour at 1 request/s) to keep the file fast.
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import simulator.gate
import simulator.selection
from scenarios.scenario_files import LIBRARY_DIR
from simulator.gate import add_parser, cmd_gate

SMALL = ["--set", "traffic.arrivals.rate=1", "--set", "duration=1h"]
EDGE_STEP = "cloudflare-2025-12-05"


@pytest.fixture(autouse=True)
def _no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never append to a real CI job summary while testing."""
    monkeypatch.delenv(simulator.gate.SUMMARY_ENV, raising=False)


def gate(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="blastradius")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gate", *map(str, argv)])
    assert args.run is cmd_gate
    code: int = args.run(args)
    return code


def junit(path: Path) -> ET.Element:
    return ET.fromstring(path.read_text(encoding="utf-8"))


@pytest.fixture
def baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A baseline of the shortened edge-step scenario under domain-aware."""
    path = tmp_path / ".blastradius" / "baseline.json"
    code = gate(
        EDGE_STEP,
        "--policy",
        "domain-aware",
        "--baseline",
        path,
        "--update-baseline",
        "--out",
        tmp_path / "runs",
        *SMALL,
    )
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    return path


def test_update_baseline_writes_a_sorted_baseline_and_passes(
    baseline: Path, tmp_path: Path
) -> None:
    text = baseline.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert data["version"] == 1 and data["policy"] == "domain-aware"
    entry = data["scenarios"][EDGE_STEP]
    assert entry["score"] > 0 and entry["metrics"]["availability"] is not None
    (run_dir,) = [path for path in (tmp_path / "runs").iterdir() if path.is_dir()]
    assert (tmp_path / "runs" / "heatmap.png").read_bytes().startswith(b"\x89PNG")
    result = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert result["scenario"] == EDGE_STEP and result["passed"] is True


def test_gate_against_its_own_baseline_passes(
    baseline: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv(simulator.gate.SUMMARY_ENV, str(step_summary))
    code = gate(
        EDGE_STEP,
        "--policy",
        "domain-aware",
        "--baseline",
        baseline,
        "--junit",
        tmp_path / "gate.xml",
        "--summary",
        tmp_path / "gate.md",
        "--out",
        tmp_path / "runs",
        *SMALL,
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "✅ blastradius gate: passed" in printed and "(±0)" in printed
    summary = (tmp_path / "gate.md").read_text(encoding="utf-8")
    assert summary in printed
    assert step_summary.read_text(encoding="utf-8") == "earlier step\n" + summary + "\n"
    suite = junit(tmp_path / "gate.xml")
    assert suite.get("tests") == "1" and suite.get("failures") == "0"
    (case,) = suite.findall("testcase")
    assert case.get("name") == EDGE_STEP and case.get("classname") == "domain-aware"


def test_a_baseline_demanding_more_fails_with_regressions(
    baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(baseline.read_text(encoding="utf-8"))
    entry = data["scenarios"][EDGE_STEP]
    entry["score"] = min(100.0, entry["score"] + 10)
    entry["metrics"]["availability"] = 1.0
    entry["metrics"]["amplification_peak"] = 1.0
    baseline.write_text(json.dumps(data), encoding="utf-8")
    code = gate(
        EDGE_STEP,
        "--policy",
        "domain-aware",
        "--baseline",
        baseline,
        "--junit",
        tmp_path / "gate.xml",
        "--out",
        tmp_path / "runs",
        *SMALL,
    )
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "### Regressions" in printed and "score fell" in printed
    suite = junit(tmp_path / "gate.xml")
    assert suite.get("failures") == "1"
    failures = suite.findall("testcase/failure")
    assert {f.get("type") for f in failures} == {"regression"}
    assert any("amplification_peak rose" in (f.get("message") or "") for f in failures)


def test_broken_slos_fail_with_one_junit_failure_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = gate(
        "cloudflare-2025-11-18",
        "--policy",
        "naive-two-vendor",
        "--junit",
        tmp_path / "gate.xml",
        "--out",
        tmp_path / "runs",
        "--set",
        "traffic.arrivals.rate=0.5",
        "--set",
        "duration=4h",
    )
    printed = capsys.readouterr().out
    assert code == 1
    assert "### Broken SLOs" in printed
    (run_dir,) = [path for path in (tmp_path / "runs").iterdir() if path.is_dir()]
    assert (tmp_path / "runs" / "heatmap.png").read_bytes().startswith(b"\x89PNG")
    result: dict[str, Any] = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    broken = [slo["name"] for slo in result["slos"] if not slo["ok"]]
    assert "availability_during_faults >= 0.999" in broken
    (case,) = junit(tmp_path / "gate.xml").findall("testcase")
    failures = case.findall("failure")
    assert [f.get("type") for f in failures] == ["slo"] * len(broken)
    assert all(any(name in (f.get("message") or "") for f in failures) for name in broken)


def test_a_directory_runs_every_yaml_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "edge.yaml").write_bytes((LIBRARY_DIR / f"{EDGE_STEP}.yaml").read_bytes())
    code = gate(folder, "--policy", "domain-aware", "--out", tmp_path / "runs", *SMALL)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"`{EDGE_STEP}`" in printed


def test_the_default_library_skips_scenarios_the_policy_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (LIBRARY_DIR / f"{EDGE_STEP}.yaml").read_text(encoding="utf-8")
    other = tmp_path / "escalation-step.yaml"
    other.write_text(
        text.replace(f"id: {EDGE_STEP}", "id: escalation-step")
        .replace("policy: domain-aware", "policy: cost-cascade")
        .replace("route: default", "route: escalation"),
        encoding="utf-8",
    )
    monkeypatch.setattr(
        simulator.selection, "library", lambda: [LIBRARY_DIR / f"{EDGE_STEP}.yaml", other]
    )
    path = tmp_path / "baseline.json"
    common: list[str | Path] = ["--policy", "domain-aware", "--out", tmp_path / "runs", *SMALL]
    assert gate(*common, "--baseline", path, "--update-baseline") == 0
    printed = capsys.readouterr().out
    assert "### Skipped" in printed and "`escalation-step`: not applicable" in printed
    assert "no route 'escalation'" in printed
    assert set(json.loads(path.read_text(encoding="utf-8"))["scenarios"]) == {EDGE_STEP}

    # Once in the baseline, a scenario the policy can no longer run fails the gate.
    data = json.loads(path.read_text(encoding="utf-8"))
    data["scenarios"]["escalation-step"] = data["scenarios"][EDGE_STEP]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert gate(*common, "--baseline", path, "--junit", tmp_path / "gate.xml") == 1
    assert "could not run with this policy" in capsys.readouterr().out
    suite = junit(tmp_path / "gate.xml")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["escalation-step"].findall("failure")[0].get("type") == "regression"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-scenario", "--policy", "domain-aware"], "no such file or library scenario"),
        ([EDGE_STEP, "--policy", "domain-aware", "--baseline", "missing.json"], "no such file"),
        ([EDGE_STEP, "--policy", "domain-aware", "--update-baseline"], "needs --baseline"),
        ([EDGE_STEP, "--policy", "no-such-policy"], "no-such-policy"),
        ([EDGE_STEP, "--policy", "domain-aware", "--set", "nonsense"], "expected KEY=VALUE"),
        ([EDGE_STEP, "--policy", "domain-aware", "--set", "duration=1m"], "faults[0].start"),
        ([EDGE_STEP, "--policy", "domain-aware", "--replications", "0"], "--replications"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert gate(*argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # stopped before running anything


def test_a_broken_policy_is_named_in_library_mode_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("deployments: []\nroutes: 3\n", encoding="utf-8")
    monkeypatch.setattr(simulator.selection, "library", lambda: [LIBRARY_DIR / f"{EDGE_STEP}.yaml"])
    assert gate("--policy", policy, "--out", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert f"{policy}:2: routes" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"version": 7, "scenarios": {}}', "version"),
        ('{"version": 1, "scenarios": {"x": {"score": "high"}}}', "scenarios.x.score"),
    ],
)
def test_an_invalid_baseline_exits_2(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content, encoding="utf-8")
    code = gate(EDGE_STEP, "--policy", "domain-aware", "--baseline", path, *SMALL)
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and message in err and "Traceback" not in err
