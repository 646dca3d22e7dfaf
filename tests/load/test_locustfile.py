"""The Locust entry point: its completeness check, and a real headless run against the gateway."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.load.answers import complete_stream
from tests.router.server.gateway import gateway

ROOT = Path(__file__).resolve().parents[2]

_OK = 'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
_END = 'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
_DONE = "data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_OK + _END + _DONE, None),
        (_OK + _DONE, "stream ended without a finish reason (truncated)"),
        (_OK, "stream ended without a finish reason (truncated)"),
        (_OK + _END, "stream ended without [DONE]"),
        (_OK + 'data: {"error": {"message": "Overloaded"}}\n\n', "error event: Overloaded"),
        (_OK + "data: {broken\n\n", "malformed chunk"),
    ],
)
def test_only_a_complete_stream_counts_as_success(body: str, problem: str | None) -> None:
    assert complete_stream(body) == problem


def _locust(url: str, prefix: Path, *options: str) -> dict[str, str]:
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
         "-u", "4", "-r", "4", "-t", "3s", "--host", url, "--csv", str(prefix),
         "--only-summary", "--exit-code-on-error", "0", *options],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    with open(f"{prefix}_stats.csv", newline="") as stats:
        return next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")


def test_a_headless_run_against_a_healthy_gateway_has_no_failures(tmp_path: Path) -> None:
    with gateway() as served:
        total = _locust(served.url, tmp_path / "healthy", "--stream-share", "0.5")
    assert int(total["Request Count"]) > 10
    assert int(total["Failure Count"]) == 0


def test_cut_streams_with_no_fallback_are_counted_as_failures(tmp_path: Path) -> None:
    with gateway(models={"gpt@openai": "gpt-4o~stream_cut-3"}) as served:
        total = _locust(served.url, tmp_path / "cut", "--route", "solo", "--stream-share", "1")
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == int(total["Request Count"])
