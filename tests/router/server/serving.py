"""Test harness: `blastradius serve` as a real subprocess in front of a fake world.

`write_policy` writes the gateway test policy with every deployment pointed at the
running fakes (plus any extra routes, deployments or tenants); `serve_process` starts
`python -m simulator.cli serve` on port 0, waits for "listening on", keeps reading its
stderr in a thread (so the pipe never fills and tests can wait for log lines), and
always stops the process: SIGTERM, then SIGKILL if it does not exit.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.router.server.gateway import POLICY

SLOW_MODEL = "gpt-4o~slow_tokens-{s}"
"""The fake's directive for a stream of 12 tokens, `s` seconds apart."""


def policy_data(ready: dict[str, Any], *, slow_token_s: float | None = None) -> dict[str, Any]:
    """The gateway test policy aimed at the fakes; with `slow_token_s`, a `slow` route too."""
    data: dict[str, Any] = yaml.safe_load(POLICY)
    for deployment in data["deployments"]:
        deployment["base_url"] = ready["deployments"][deployment["id"]]["base_url"]
    if slow_token_s is not None:
        slow = dict(data["deployments"][0], id="slow@openai")
        slow["model"] = SLOW_MODEL.format(s=slow_token_s)
        data["deployments"].append(slow)
        data["routes"].append({"name": "slow", "targets": ["slow@openai"]})
    return data


def write_policy(path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as YAML to `path` (returned)."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Served:
    """A running `blastradius serve`: its process, base URL and stderr lines so far."""

    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout_s: float = 10.0) -> str:
        """The first stderr line that satisfies `predicate` (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no such log line in time; stderr so far: {self.lines}")


@contextmanager
def serve_process(policy_file: Path, *options: str) -> Iterator[Served]:
    """`blastradius serve --policy FILE --port 0 OPTIONS...`, stopped when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "serve", "--policy", str(policy_file),
         "--port", "0", *options],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    listening = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "listening on" in line:
                listening.set()
        listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert listening.wait(30) and process.poll() is None, f"serve did not start: {lines}"
        url = next(line for line in lines if "listening on" in line).rsplit(" ", 1)[-1].strip()
        yield Served(process, url, lines)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        reader.join(5)
