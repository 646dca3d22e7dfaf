"""The README's promises that code can check: its commands exist, its diagram is the table."""

from __future__ import annotations

import re
from pathlib import Path

from fakes.server.chaos import FAULT_KINDS
from router.core.breaker import mermaid_diagram

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_breaker_diagram_is_generated_from_the_transition_table() -> None:
    assert mermaid_diagram() in README


def test_quick_start_commands_are_make_targets() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    targets = re.findall(r"^make (\w+)", quick_start, flags=re.MULTILINE)
    assert targets == ["demo", "test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in targets:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_python_example_runs() -> None:
    """The engine example in the README is real code against a shipped policy."""
    core = README.split("## The router core", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", core, flags=re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    done = namespace["done"]
    assert getattr(done, "served_by", None) == "gpt-4o@openai"


def test_every_fault_directive_the_readme_lists_is_one_the_fakes_know() -> None:
    section = README.split("## Fake providers", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`~?(?:gpt-4o)?~(\w+?)(?:-[\d.]+)?`", section))
    assert len(named) >= 20
    assert named <= set(FAULT_KINDS), named - set(FAULT_KINDS)
