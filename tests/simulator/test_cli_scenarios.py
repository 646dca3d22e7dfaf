"""`blastradius scenarios` and `blastradius validate` on scenario files, as a user sees them.

`scenarios` is how a user finds what to run by id, so its table must list every
library file with its id, duration and policy; `validate` is what a scenario author
and CI run, so a good library validates with exit 0 and a broken scenario exits 2
with `file:line: field: message` on stderr and never a traceback (DESIGN.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scenarios.scenario_files
from scenarios.durations import format_duration
from scenarios.scenario_files import library, load_scenario
from simulator.cli import main

SCENARIO = """\
id: {id}
title: {title}
description: A small scenario for the CLI tests.
sources: ["Made up for the test"]
duration: {duration}
policy: {policy}
traffic:
  arrivals: {{kind: poisson, rate: 5}}
faults:
{faults}"""

TWO_FAULTS = """\
  - kind: outage
    target: {domains: ["edge:cloudflare"]}
    start: 10m
    end: 1h
  - kind: degrade
    target: {deployments: [gpt-4o@openai]}
    start: 1h
    error_rate: 0.1
"""

BROKEN = SCENARIO.format(
    id="broken",
    title="Broken",
    duration="2h",
    policy="domain-aware",
    faults='  - kind: outage\n    target: {domains: ["edge:cloudfare"]}\n',
)
BROKEN_ISSUE = "11: faults[0].target: selects no deployment of policy 'domain-aware'"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# -- blastradius scenarios ----------------------------------------------------------------


def test_scenarios_lists_every_library_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scenarios")
    assert code == 0, err
    assert err == ""
    header, *rows = out.splitlines()
    assert header.split()[:5] == ["id", "duration", "policy", "faults", "title"]
    assert len(rows) == len(library())
    for path, row in zip(library(), rows, strict=True):
        scenario = load_scenario(path).scenario
        assert row.split()[:3] == [scenario.id, format_duration(scenario.duration), scenario.policy]
        assert row.endswith(scenario.title)


def test_scenarios_table_is_aligned(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns padded to their widest cell, two spaces apart; the title runs on."""
    monkeypatch.setattr(scenarios.scenario_files, "LIBRARY_DIR", tmp_path)
    write(
        tmp_path,
        "alpha.yaml",
        SCENARIO.format(
            id="alpha", title="Alpha title", duration="2h", policy="domain-aware", faults=TWO_FAULTS
        ),
    )
    write(
        tmp_path,
        "b.yaml",
        SCENARIO.format(id="b", title="Bee", duration=90, policy="naive-two-vendor", faults=" []"),
    )
    code, out, _ = run(capsys, "scenarios")
    assert code == 0
    assert out.splitlines() == [
        "id     duration  policy            faults               title",
        "alpha  2h        domain-aware      2 (degrade, outage)  Alpha title",
        "b      1m30s     naive-two-vendor  0                    Bee",
    ]


def test_scenarios_with_a_broken_library_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scenarios.scenario_files, "LIBRARY_DIR", tmp_path)
    path = write(tmp_path, "broken.yaml", BROKEN)
    code, out, err = run(capsys, "scenarios")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"error: {path}:{BROKEN_ISSUE}"]


# -- blastradius validate on scenarios ----------------------------------------------------


def test_library_validates(capsys: pytest.CaptureFixture[str]) -> None:
    paths = library()
    code, out, err = run(capsys, "validate", *paths)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"ok: {path}: scenario '{path.stem}': "), line


def test_ok_line_describes_the_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "alpha.yaml",
        SCENARIO.format(
            id="alpha", title="Alpha", duration="2h", policy="domain-aware", faults=TWO_FAULTS
        ),
    )
    code, out, _ = run(capsys, "validate", path)
    assert code == 0
    assert out.startswith(f"ok: {path}: scenario 'alpha': 2h, 2 faults, 0 SLOs,")
    assert out.rstrip().endswith("policy 'domain-aware'")


def test_broken_scenario_exits_2_naming_file_line_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    code, out, err = run(capsys, "validate", path)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"error: {path}:{BROKEN_ISSUE}"]
    assert "Traceback" not in err


def test_broken_scenario_among_good_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every file is checked in one run: the good ones still get their ok line."""
    broken = write(tmp_path, "broken.yaml", BROKEN)
    good = library()[0]
    code, out, err = run(capsys, "validate", good, broken)
    assert code == 2
    assert out.startswith(f"ok: {good}: scenario '{good.stem}'")
    assert err.splitlines() == [f"error: {broken}:{BROKEN_ISSUE}"]


def test_schema_errors_are_reported_with_lines_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = SCENARIO.format(
        id="Bad", title="x", duration="2 hours", policy="domain-aware", faults=" []"
    )
    path = write(tmp_path, "bad.yaml", text)
    code, _, err = run(capsys, "validate", path)
    assert code == 2
    assert f"error: {path}:1: id: id must be lowercase letters, digits and dashes" in err
    assert f"error: {path}:5: duration: '2 hours' is not a duration" in err
    assert "Traceback" not in err


def _command() -> list[str]:
    """The installed console script, or the module when the venv's bin is not on PATH."""
    script = shutil.which("blastradius") or shutil.which(
        "blastradius", path=str(Path(sys.executable).parent)
    )
    return [script] if script else [sys.executable, "-m", "simulator.cli"]


def test_console_script_on_a_broken_scenario(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    result = subprocess.run(
        [*_command(), "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"error: {path}:{BROKEN_ISSUE}"]
    assert result.stdout == ""


def test_console_script_lists_the_library() -> None:
    result = subprocess.run(
        [*_command(), "scenarios"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    ids = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert ids == [path.stem for path in library()]
