"""`blastradius validate FILE...`: exit 0 with an "ok:" line per good file, 2 otherwise.

CI runs this on every policy change and people read its output in a terminal, so
the contract (DESIGN.md) is checked as a user sees it: exit code, `file:line:
field: message` on stderr, every bad file reported in one run, and never a
Python traceback.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.policy_files import shipped_policies
from simulator.cli import main

BROKEN = """\
deployments:
  - id: gpt-4o@openai
    protocol: openai
    base_url: https://api.openai.com/v1
    model: gpt-4o
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
    region: us
routes:
  - name: default
    targets: [gpt-4o@openai, gpt-5@openai]
"""
BROKEN_ISSUE = "routes[0].targets[1]: unknown deployment 'gpt-5@openai'"


def run(capsys: pytest.CaptureFixture[str], *files: str | Path) -> tuple[int, str, str]:
    code = main(["validate", *map(str, files)])
    out, err = capsys.readouterr()
    return code, out, err


def test_shipped_policies_validate(capsys: pytest.CaptureFixture[str]) -> None:
    paths = shipped_policies()
    code, out, err = run(capsys, *paths)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"ok: {path}: policy '{path.stem}':"), line


def test_ok_line_lists_unset_secrets_without_their_values(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = next(p for p in shipped_policies() if p.stem == "naive-two-vendor")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    code, out, _ = run(capsys, path)
    assert code == 0
    assert "unset, needed to serve: ANTHROPIC_API_KEY" in out
    assert "sk-very-secret" not in out


def test_broken_file_exits_2_naming_file_line_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    code, out, err = run(capsys, path)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"error: {path}:11: {BROKEN_ISSUE}"]
    assert "Traceback" not in err


def test_every_bad_file_is_reported_in_one_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("deployments: [\n", encoding="utf-8")
    good = shipped_policies()[0]
    code, out, err = run(capsys, broken, good, garbled)
    assert code == 2
    assert out.startswith(f"ok: {good}:")
    assert f"{broken}:11: {BROKEN_ISSUE}" in err
    assert re.search(rf"^error: {re.escape(str(garbled))}:\d+: YAML syntax: ", err, re.M), err
    assert "Traceback" not in err


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run(capsys, missing)
    assert code == 2
    assert out == ""
    assert err.strip() == f"error: {missing}: no such file"


def test_directory_is_not_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path)
    assert code == 2
    assert "no such file" in err


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- a\n- b\n", id="list"),
        pytest.param("", id="empty"),
        pytest.param("name: x\n", id="unrelated-mapping"),
    ],
)
def test_neither_policy_nor_scenario_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, path)
    assert code == 2
    assert out == ""
    assert err.strip() == (
        f"error: {path}:1: neither a policy (deployments, routes) nor a scenario (traffic, faults)"
    )


def test_a_scenario_missing_its_fields_names_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("name: cloudflare-2025-11-18\nfaults: []\n", encoding="utf-8")
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert f"error: {path}:1: id: Field required" in err
    assert f"error: {path}:1: traffic: Field required" in err
    assert f"error: {path}:1: name: unknown field (check its spelling and place)" in err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(b"deployments: \xff\n", "cannot read", id="not-utf8"),
        pytest.param(b"deployments: !vault x\n", "could not determine a constructor", id="tag"),
        pytest.param(b"a: &x\n  b: *x\ndeployments: []\n", "recursive alias", id="recursion"),
    ],
)
def test_unreadable_or_hostile_input_exits_2_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: bytes, fragment: str
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(text)
    code, _, err = run(capsys, path)
    assert code == 2
    assert err.startswith(f"error: {path}")
    assert fragment in err
    assert "Traceback" not in err


def test_no_files_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def _command() -> list[str]:
    """The installed console script, or the module when the venv's bin is not on PATH."""
    script = shutil.which("blastradius") or shutil.which(
        "blastradius", path=str(Path(sys.executable).parent)
    )
    return [script] if script else [sys.executable, "-m", "simulator.cli"]


def test_console_script_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    result = subprocess.run(
        [*_command(), "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: {path}:11: {BROKEN_ISSUE}" in result.stderr
    assert result.stdout == ""
