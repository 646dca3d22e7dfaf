"""Helpers for table-driven tests of broken config files.

A case is a valid base text with `(old, new)` edits, one of which marks the line
the error must name with `# <-`; the helpers apply the edits, find the marker and
write the file.
"""

from __future__ import annotations

from pathlib import Path

MARK = "# <-"


def edited(text: str, *edits: tuple[str, str]) -> str:
    """`text` with each `(old, new)` replaced; `old` must occur exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, f"edit target {old!r} must occur exactly once"
        text = text.replace(old, new)
    return text


def marked_line(text: str) -> int:
    """1-based line of the `# <-` marker."""
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if MARK in line]
    assert len(lines) == 1, "a case marks exactly one line"
    return lines[0]


def write(tmp_path: Path, text: str, name: str) -> Path:
    """Write `text` to `tmp_path / name` and return the path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
